/**
 * readImageHeader and the TIFF orientation reader bound by bound, on hand-made bytes: every segment
 * libjpeg walks before a frame header, EXIF entries at the edge of their structure, PNG chunks around
 * eXIf, and the WebP chunk walk and its frame-header checks. Where sharp reads the file, the header
 * must be sharp's; where the bytes lie, the answer is null (the caller falls back to sharp).
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { containerFormat, jpegMarkers, readImageHeader, tiffOrientation, tiffOrientationTag } from '../../pipeline/faces/image-header.js';
import {
  beforeSof, exifApp1, jpegFrom, jpegSegments, PNG_SIGNATURE, pngChunk, pngChunks, riffChunk, segment, sofAt, tiff, webpChunks, webpFrom, withoutApp,
} from '../helpers/image-bytes.js';

const W = 37, H = 23;
const solid = () => sharp({ create: { width: W, height: H, channels: 3, background: '#567' } });

async function sharpSays(b: Uint8Array) {
  const m = await sharp(b).metadata();
  return { format: m.format, width: m.width, height: m.height, orientation: m.orientation ?? 1 };
}

/** readImageHeader gives a header, and it is sharp's. */
async function agrees(b: Buffer, orientation?: number) {
  const h = readImageHeader(b);
  expect(h).not.toBeNull();
  expect(h).toEqual(await sharpSays(b));
  if (orientation !== undefined) expect(h!.orientation).toBe(orientation);
}

const ORIENT = 0x0112;

describe('tiffOrientationTag bounds', () => {
  it('an entry cut short by the end of the bytes is not read past them (the end is clamped to the bytes)', () => {
    const t = tiff(true, [[ORIENT, 3, 6]]);
    expect(tiffOrientationTag(t, 0, t.length)).toBe(6);
    // the value's first byte is there, its second is not: the end given is beyond the bytes
    const cut = t.subarray(0, 19);
    expect(tiffOrientationTag(cut, 0, 100)).toBeNull();
    expect(tiffOrientation(cut, 0, 100)).toBe(1);
  });

  it('an entry ending exactly at the end of the structure is read', () => {
    const t = tiff(false, [[ORIENT, 3, 6]], { nextIfd: false });
    expect(t.length).toBe(22);
    expect(tiffOrientationTag(t, 0, 22)).toBe(6);
    expect(tiffOrientationTag(t, 0, 21)).toBeNull();
  });

  it('needs the II/MM byte order and the magic 42', () => {
    expect(tiffOrientationTag(tiff(false, [[ORIENT, 3, 6]], { order: 'XX' }), 0, 26)).toBeNull();
    expect(tiffOrientationTag(tiff(true, [[ORIENT, 3, 6]], { magic: 43 }), 0, 26)).toBeNull();
    expect(tiffOrientationTag(tiff(false, [[ORIENT, 3, 6]], { magic: 43 }), 0, 26)).toBeNull();
  });

  it('finds the orientation entry after other entries; absent gives null; 0 reads as 1', () => {
    expect(tiffOrientationTag(tiff(true, [[0x010f, 3, 1], [0x0110, 3, 2], [ORIENT, 3, 7]]), 0, 100)).toBe(7);
    expect(tiffOrientationTag(tiff(true, [[0x010f, 3, 1]]), 0, 100)).toBeNull();
    expect(tiffOrientationTag(tiff(true, [[ORIENT, 3, 0]]), 0, 100)).toBe(0);
    expect(tiffOrientation(tiff(true, [[ORIENT, 3, 0]]), 0, 100)).toBe(1);
  });
});

describe('JPEG: the segments libjpeg walks before the frame header', () => {
  const base = async () => withoutApp(await solid().jpeg().toBuffer());

  it.each([
    ['a DAC segment (0xCC, not a frame header)', () => segment(0xcc)],
    ['a DRI segment (0xDD)', () => segment(0xdd, [0, 0])],
    ['a COM segment (0xFE)', () => segment(0xfe, Buffer.from('a comment'))],
    ['fill bytes before a marker', () => Buffer.from([0xff, 0xff, 0xff, 0xfe, 0x00, 0x03, 0x41])],
    ['a TEM marker (0x01, no length)', () => Buffer.from([0xff, 0x01])],
    ['an RST7 marker (0xD7, no length)', () => Buffer.from([0xff, 0xd7])],
  ])('%s: same header as sharp', async (_n, extra) => {
    await agrees(beforeSof(await base(), extra()), 1);
  });

  it('Huffman tables (DHT, 0xC4) before the frame header are not a frame header', async () => {
    const { segments, rest } = jpegSegments(await base());
    const dht = segments.filter((s) => s[1] === 0xc4);
    expect(dht.length).toBeGreaterThan(0);
    await agrees(jpegFrom([...dht, ...segments.filter((s) => s[1] !== 0xc4)], rest), 1);
  });

  it('the first EXIF block is the one read, as libvips reads it; an orientation entry that after other entries still counts', async () => {
    const o = (v: number) => exifApp1(tiff(true, [[ORIENT, 3, v]]));
    await agrees(beforeSof(await base(), o(6), o(3)), 6);
    await agrees(beforeSof(await base(), exifApp1(tiff(false, [[0x010f, 3, 0], [ORIENT, 3, 8]]))), 8);
  });

  it('an EXIF block whose orientation entry ends exactly at the end of the segment', async () => {
    await agrees(beforeSof(await base(), exifApp1(tiff(true, [[ORIENT, 3, 6]], { nextIfd: false }))), 6);
  });

  it('bytes that are not a marker end the walk: a frame header behind them is not read (libjpeg skips them to the real one)', async () => {
    const fake = Buffer.from([0x00, 0xc0, 0x00, 0x11, 8, 0, 16, 0, 16, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    const file = beforeSof(await base(), fake);
    expect((await sharpSays(file)).width).toBe(W);
    expect(readImageHeader(file)).toBeNull();
  });

  it('a file that ends right after its frame header still has that header', async () => {
    const full = await base();
    const sof = sofAt(full);
    const cut = full.subarray(0, sof + 2 + full.readUInt16BE(sof + 2));
    expect(readImageHeader(cut)).toEqual({ format: 'jpeg', width: W, height: H, orientation: 1 });
  });

  it('a frame header with height 0 (DNL) or too short to hold its size gives null', async () => {
    const full = await base();
    const sof = sofAt(full);
    const dnl = Buffer.from(full);
    dnl.writeUInt16BE(0, sof + 5);
    expect(readImageHeader(dnl)).toBeNull();
    // SOF0 of length 7 (its width's low byte would be the next segment's first byte)
    const short = beforeSof(full, Buffer.from([0xff, 0xc0, 0x00, 0x07, 8, 0, 16, 0, 16]));
    expect(readImageHeader(short)).toBeNull();
  });
});

describe('containerFormat', () => {
  it('needs all of each magic: FF D8 FF, the PNG signature, RIFF....WEBP', () => {
    expect(containerFormat(Buffer.from([0xff, 0xd8, 0xff]))).toBe('jpeg');
    expect(containerFormat(Buffer.from([0xff, 0xd8, 0x00, 0xe0]))).toBeNull();
    expect(containerFormat(Buffer.from([0xff, 0xd8]))).toBeNull();
    expect(containerFormat(PNG_SIGNATURE)).toBe('png');
    expect(containerFormat(PNG_SIGNATURE.subarray(0, 7))).toBeNull();
    expect(containerFormat(Buffer.from('RIFF\x10\0\0\0WEBP', 'latin1'))).toBe('webp');
    expect(containerFormat(Buffer.from('RIFF\x10\0\0\0WAVE', 'latin1'))).toBeNull();
  });
});

describe('jpegMarkers', () => {
  const walk = (b: Uint8Array) => [...jpegMarkers(b)].map((m) => [m.marker, m.length]);

  it('ends after SOS and after EOI, whatever follows', async () => {
    const full = await solid().jpeg().toBuffer();
    const markers = walk(full);
    expect(markers[markers.length - 1]).toEqual([0xda, full.readUInt16BE(full.indexOf(Buffer.from([0xff, 0xda])) + 2)]);
    expect(walk(Buffer.from([0xff, 0xd8, 0xff, 0xd9, 0xff, 0xfe, 0x00, 0x03, 0x41, 0, 0]))).toEqual([[0xd9, 0]]);
  });

  it('a segment length under 2 ends the walk there', () => {
    for (const len of [0, 1]) {
      expect(walk(Buffer.from([0xff, 0xd8, 0xff, 0xfe, 0x00, len, 0xff, 0xfe, 0x00, 0x02, 0, 0]))).toEqual([[-1, 0]]);
    }
  });
});

describe('PNG chunks', () => {
  const chunks = async () => pngChunks(await solid().png().toBuffer());

  it('eXIf behind another chunk is found; eXIf after the image data is not read (sharp does not either)', async () => {
    const [ihdr, ...rest] = await chunks();
    const exif = pngChunk('eXIf', tiff(false, [[ORIENT, 3, 6]]));
    await agrees(Buffer.concat([PNG_SIGNATURE, ihdr!, pngChunk('tEXt', Buffer.from('k\0v')), exif, ...rest]), 6);
    await agrees(Buffer.concat([PNG_SIGNATURE, ihdr!, ...rest.slice(0, -1), exif, rest[rest.length - 1]!]), 1);
  });

  it('an IHDR whose length is not 13, or with a zero width, gives null', async () => {
    const [ihdr, ...rest] = await chunks();
    const long = Buffer.concat([ihdr!.subarray(8, 21), Buffer.from([0])]);
    expect(readImageHeader(Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', long), ...rest]))).toBeNull();
    const zero = Buffer.from(ihdr!.subarray(8, 21));
    zero.writeUInt32BE(0, 0);
    expect(readImageHeader(Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', zero), ...rest]))).toBeNull();
  });
});

describe('WebP', () => {
  it('VP8: the 14-bit size without its scale bits; a bad start code, zero width or 29 bytes give null', async () => {
    const vp8 = await solid().webp().toBuffer();
    expect(vp8.toString('latin1', 12, 16)).toBe('VP8 ');
    const scaled = Buffer.from(vp8);
    scaled[27]! |= 0x40; // horizontal scale bits
    await agrees(scaled);
    const badStart = Buffer.from(vp8);
    badStart[24] = 0x02;
    expect(readImageHeader(badStart)).toBeNull();
    const zero = Buffer.from(vp8);
    zero.writeUInt16LE(0, 26);
    expect(readImageHeader(zero)).toBeNull();
    expect(readImageHeader(vp8.subarray(0, 29))).toBeNull();
    expect(readImageHeader(vp8.subarray(0, 30))).toEqual({ format: 'webp', width: W, height: H, orientation: 1 });
  });

  it('VP8L without its signature byte gives null', async () => {
    const vp8l = Buffer.from(await solid().webp({ lossless: true }).toBuffer());
    expect(vp8l.toString('latin1', 12, 16)).toBe('VP8L');
    vp8l[20] = 0x2e;
    expect(readImageHeader(vp8l)).toBeNull();
  });

  it('VP8X EXIF: read only when the EXIF flag is set, with or without the Exif prefix, past odd-sized chunks', async () => {
    const ch = webpChunks(await solid().webp().withMetadata({ orientation: 5 }).toBuffer());
    const kind = (c: Buffer) => c.toString('latin1', 0, 4);
    expect(ch.map(kind)).toContain('EXIF');
    await agrees(webpFrom(ch), 5);
    const noFlag = Buffer.from(ch[0]!);
    noFlag[8]! &= ~0x08;
    await agrees(webpFrom([noFlag, ...ch.slice(1)]), 1);
    const exif = ch.find((c) => kind(c) === 'EXIF')!;
    const payload = exif.subarray(8, 8 + exif.readUInt32LE(4));
    expect(payload.toString('latin1', 0, 6)).toBe('Exif\0\0');
    const bare = ch.map((c) => (kind(c) === 'EXIF' ? riffChunk('EXIF', payload.subarray(6)) : c));
    await agrees(webpFrom(bare), 5);
    await agrees(webpFrom([ch[0]!, riffChunk('ABCD', Buffer.from([1, 2, 3])), ...ch.slice(1)]), 5);
  });
});
