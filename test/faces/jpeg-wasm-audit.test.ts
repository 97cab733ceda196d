/**
 * wasmJpegEligible rule by rule, on a plain JPEG made by sharp with one thing changed in its markers:
 * each rule of the module comment (frame kind, precision, components, size, EXIF, Adobe, markers
 * before the scan) turns eligibility off on its own, and what the rules allow stays eligible.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../pipeline/faces/decode.js';
import { decodeJpegWasm, wasmJpegDecoder, wasmJpegEligible } from '../../pipeline/faces/jpeg-wasm.js';
import { beforeSof, exifApp1, jpegFrom, jpegSegments, segment, sofAt, tiff, withoutApp } from '../helpers/image-bytes.js';

const plain = async (w = 40, h = 24) =>
  withoutApp(await sharp({ create: { width: w, height: h, channels: 3, background: '#3a7' } }).jpeg().toBuffer());
const ORIENT = 0x0112;

describe('wasmJpegEligible', () => {
  it('a plain JPEG is eligible, and so is one with an EXIF block without an orientation entry', async () => {
    const b = await plain();
    expect(wasmJpegEligible(b)).toBe(true);
    const noOrientation = beforeSof(b, exifApp1(tiff(true, [[0x010f, 3, 1]])));
    expect(wasmJpegEligible(noOrientation)).toBe(true);
    expect(await decodeJpegWasm(noOrientation)).not.toBeNull();
  });

  it('one EXIF block at most, even when each says orientation 1', async () => {
    const one = exifApp1(tiff(true, [[ORIENT, 3, 1]]));
    const b = await plain();
    expect(wasmJpegEligible(beforeSof(b, one))).toBe(true);
    expect(wasmJpegEligible(beforeSof(b, one, one))).toBe(false);
    // and before the frame header only, even when it says 1
    const { segments, rest } = jpegSegments(b);
    expect(wasmJpegEligible(jpegFrom([...segments, one], rest))).toBe(false);
  });

  it('an Adobe (APP14) marker is left to sharp', async () => {
    const adobe = segment(0xee, [...Buffer.from('Adobe', 'latin1'), 0, 100, 0, 0, 0, 0, 1]);
    expect(wasmJpegEligible(beforeSof(await plain(), adobe))).toBe(false);
  });

  it('a TEM or RST marker before the scan is left to sharp', async () => {
    const b = await plain();
    expect(wasmJpegEligible(beforeSof(b, Buffer.from([0xff, 0x01])))).toBe(false);
    expect(wasmJpegEligible(beforeSof(b, Buffer.from([0xff, 0xd3])))).toBe(false);
  });

  it('a scan without a frame header before it is not eligible', async () => {
    const { segments, rest } = jpegSegments(await plain());
    expect(wasmJpegEligible(jpegFrom(segments.filter((s) => s[1] !== 0xc0), rest))).toBe(false);
  });

  it('frame header rules: SOF3 (lossless), 12-bit precision, a length that does not fit its components, height 0', async () => {
    const b = await plain();
    const sof = sofAt(b);
    expect(b[sof + 1]).toBe(0xc0);
    const edit = (f: (x: Buffer) => void) => { const x = Buffer.from(b); f(x); return x; };
    expect(wasmJpegEligible(edit((x) => { x[sof + 1] = 0xc1; }))).toBe(true); // extended Huffman is allowed
    expect(wasmJpegEligible(edit((x) => { x[sof + 1] = 0xc3; }))).toBe(false);
    expect(wasmJpegEligible(edit((x) => { x[sof + 4] = 12; }))).toBe(false);
    expect(wasmJpegEligible(edit((x) => { x.writeUInt16BE(0, sof + 5); }))).toBe(false);
    // a 3-component frame whose segment is one component longer (the extra bytes pad the segment)
    const { segments, rest } = jpegSegments(b);
    const frame = segments.find((s) => s[1] === 0xc0)!;
    const padded = segment(0xc0, Buffer.concat([frame.subarray(4), Buffer.from([4, 0x11, 0])]));
    expect(wasmJpegEligible(jpegFrom(segments.map((s) => (s === frame ? padded : s)), rest))).toBe(false);
  });
});

describe('decodeJpegWasm after a file libjpeg warned about', () => {
  it('the next clean file still decodes here, to sharp\'s pixels', async () => {
    const px = Buffer.alloc(48 * 32 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 7919) % 251;
    const good = await sharp(px, { raw: { width: 48, height: 32, channels: 3 } }).jpeg().toBuffer();
    // the entropy-coded data cut short before EOI: libjpeg warns (premature end of data segment)
    const sos = good.indexOf(Buffer.from([0xff, 0xda]));
    const noisy = Buffer.concat([good.subarray(0, sos + 2 + good.readUInt16BE(sos + 2) + 200), Buffer.from([0xff, 0xd9])]);
    expect(wasmJpegEligible(noisy)).toBe(true);
    expect(await decodeJpegWasm(noisy)).toBeNull();
    const img = await decodeJpegWasm(good);
    expect(img).not.toBeNull();
    expect(Buffer.compare(Buffer.from(img!.data), Buffer.from((await decodeImage(good, { decoder: 'sharp' })).data))).toBe(0);
  });
});

describe('decoder instance renewal', () => {
  const noise = (side: number) => {
    const px = Buffer.alloc(side * side * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 7919) % 251;
    return sharp(px, { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
  };

  it('an instance is replaced after its 8th error exit, not before', async () => {
    // a Huffman table whose code counts overflow: an error exit that leaves the heap as it was
    const bogus = Buffer.from(await noise(64));
    const dht = bogus.indexOf(Buffer.from([0xff, 0xc4]));
    bogus.fill(0xff, dht + 5, dht + 21);
    // start from a fresh instance: earlier decodes may have taken some exits already
    const first = await wasmJpegDecoder();
    for (let k = 0; k < 8 && (await wasmJpegDecoder()) === first; k++) await decodeJpegWasm(bogus);
    const fresh = await wasmJpegDecoder();
    expect(fresh).not.toBeNull();
    for (let k = 0; k < 7; k++) expect(await decodeJpegWasm(bogus)).toBeNull();
    expect(await wasmJpegDecoder()).toBe(fresh);
    expect(await decodeJpegWasm(bogus)).toBeNull();
    expect(await wasmJpegDecoder()).not.toBe(fresh);
  });
});
