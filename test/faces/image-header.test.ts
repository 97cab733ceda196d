/**
 * The JavaScript header reader against sharp's: the same format, size and EXIF orientation for every
 * format and container variant made in code and for real photos; malformed, truncated and mutated bytes
 * give null or a header, never an exception; decodeImage falls back to sharp where it declines.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../pipeline/faces/decode.js';
import { readImageHeader, tiffOrientation } from '../../pipeline/faces/image-header.js';
import { wasmJpegEligible } from '../../pipeline/faces/jpeg-wasm.js';
import { smuggledJpeg } from '../../bench/hostile-cases.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { describeShared, shared } from '../helpers/shared.js';

const W = 37, H = 23;
const raw = (channels: 3 | 4 = 3) => sharp(Buffer.alloc(W * H * channels, 90), { raw: { width: W, height: H, channels } });

/** What sharp's own header reader says, in readImageHeader's terms. */
async function sharpSays(b: Uint8Array) {
  const m = await sharp(b).metadata();
  return { format: m.format, width: m.width, height: m.height, orientation: m.orientation ?? 1 };
}

describe('readImageHeader', () => {
  it.each([
    ['baseline JPEG', () => raw().jpeg().toBuffer()],
    ['progressive JPEG', () => raw().jpeg({ progressive: true }).toBuffer()],
    ['grayscale JPEG', () => raw().greyscale().jpeg().toBuffer()],
    ['JPEG with EXIF orientation 6', () => raw().jpeg().withMetadata({ orientation: 6 }).toBuffer()],
    ['JPEG with EXIF orientation 3', () => raw().jpeg().withMetadata({ orientation: 3 }).toBuffer()],
    ['PNG', () => raw().png().toBuffer()],
    ['PNG with alpha', () => raw(4).png().toBuffer()],
    ['PNG with EXIF orientation 8', () => raw().png().withMetadata({ orientation: 8 }).toBuffer()],
    ['lossy WebP (VP8)', () => raw().webp().toBuffer()],
    ['lossless WebP (VP8L)', () => raw().webp({ lossless: true }).toBuffer()],
    ['WebP with alpha (VP8X)', () => raw(4).webp().toBuffer()],
    ['WebP with EXIF orientation 5 (VP8X)', () => raw().webp().withMetadata({ orientation: 5 }).toBuffer()],
  ])('%s: same format, size and orientation as sharp', async (_name, make) => {
    const b = await make();
    const h = readImageHeader(b);
    expect(h).not.toBeNull();
    expect(h).toEqual(await sharpSays(b));
  });

  it('declines other formats, empty and cut-short headers', async () => {
    const jpeg = await raw().jpeg().toBuffer();
    const png = await raw().png().toBuffer();
    const webp = await raw().webp().toBuffer();
    expect(readImageHeader(new Uint8Array(0))).toBeNull();
    expect(readImageHeader(await raw().gif().toBuffer())).toBeNull();
    expect(readImageHeader(await raw().tiff().toBuffer())).toBeNull();
    expect(readImageHeader(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull();
    expect(readImageHeader(jpeg.subarray(0, 20))).toBeNull(); // before the frame header
    expect(readImageHeader(png.subarray(0, 30))).toBeNull();
    expect(readImageHeader(webp.subarray(0, 20))).toBeNull();
  });

  it('never throws on truncated or mutated bytes (a header it returns has positive sizes)', async () => {
    const files = [await raw().jpeg().withMetadata({ orientation: 6 }).toBuffer(), await raw(4).png().toBuffer(), await raw(4).webp().toBuffer(), await raw().webp({ lossless: true }).toBuffer()];
    let s = 12345;
    const rand = () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s; };
    for (const f of files) {
      for (let cut = 0; cut < Math.min(f.length, 400); cut++) {
        const h = readImageHeader(f.subarray(0, cut));
        if (h) expect(h.width * h.height).toBeGreaterThan(0);
      }
      for (let k = 0; k < 2000; k++) {
        const m = Buffer.from(f);
        for (let j = 0; j < 4; j++) m[2 + (rand() % Math.min(m.length - 2, 300))] = rand() & 255;
        const h = readImageHeader(m);
        if (h) {
          expect(h.width * h.height).toBeGreaterThan(0);
          expect(h.orientation).toBeGreaterThanOrEqual(1);
          expect(h.orientation).toBeLessThanOrEqual(8);
        }
      }
    }
  });

  it('EXIF: big- and little-endian TIFF, orientation outside 1-8 or of the wrong type reads as 1', () => {
    const tiff = (little: boolean, type: number, value: number) => {
      const b = Buffer.alloc(26);
      b.write(little ? 'II' : 'MM', 0, 'latin1');
      const w16 = (v: number, at: number) => (little ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
      const w32 = (v: number, at: number) => (little ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
      w16(42, 2); w32(8, 4); w16(1, 8); // one IFD0 entry
      w16(0x0112, 10); w16(type, 12); w32(1, 14); w16(value, 18);
      return b;
    };
    expect(tiffOrientation(tiff(true, 3, 6), 0, 26)).toBe(6);
    expect(tiffOrientation(tiff(false, 3, 8), 0, 26)).toBe(8);
    expect(tiffOrientation(tiff(true, 3, 9), 0, 26)).toBe(1);
    expect(tiffOrientation(tiff(true, 4, 6), 0, 26)).toBe(1);
    expect(tiffOrientation(tiff(true, 3, 6), 0, 20)).toBe(1); // entry cut short
  });
});

describe('decodeImage without a readable header', () => {
  it('a JPEG whose frame header comes after a broken segment falls back to sharp and is refused as a bad image', async () => {
    const jpeg = Buffer.from(await raw().jpeg().toBuffer());
    jpeg[2] = 0x00; // the first marker is no longer a marker
    expect(readImageHeader(jpeg)).toBeNull();
    const err = await decodeImage(jpeg).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_IMAGE')).toBe(true);
  });
});

describe('a frame header smuggled past the marker walk', () => {
  it('is not read: the header is sharp\'s (the real size), the wasm path declines, the pixel limit holds', async () => {
    const file = await smuggledJpeg(1200, 1000);
    expect((await sharp(file).metadata()).width).toBe(1200); // libjpeg reads the real frame
    const h = readImageHeader(file);
    expect(h === null || (h.width === 1200 && h.height === 1000)).toBe(true);
    expect(wasmJpegEligible(file)).toBe(false);
    const err = await decodeImage(file, { maxPixels: 1_000_000 }).catch((e) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_IMAGE_TOO_LARGE'), String(err)).toBe(true);
    expect(err.message).toContain('1200000');
    const img = await decodeImage(file, { maxPixels: 2_000_000 });
    expect([img.width, img.height]).toEqual([1200, 1000]);
  });

  it('marker codes libjpeg does not read as segments end the walk (0x00, reserved, JPGn)', async () => {
    const real = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).jpeg().toBuffer();
    for (const code of [0x00, 0x02, 0xbf, 0xde, 0xf0]) {
      const file = Buffer.concat([real.subarray(0, 2), Buffer.from([0xff, code, 0x00, 0x04, 0x00, 0x00]), real.subarray(2)]);
      expect(readImageHeader(file), code.toString(16)).toBeNull();
      expect(wasmJpegEligible(file), code.toString(16)).toBe(false);
    }
  });
});

describeShared('readImageHeader on real photos', () => {
  it('agrees with sharp on every group photo, chip and 300 LFW photos', async () => {
    const groups = readdirSync(shared('faces', 'groups')).filter((f) => f.endsWith('.jpg')).map((f) => shared('faces', 'groups', f));
    const chipsDir = shared('faces', 'chips');
    const chips = readdirSync(chipsDir, { recursive: true }).map(String).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).map((f) => path.join(chipsDir, f));
    const lfw = readFileSync(shared('faces', 'lfw', 'calibration.txt'), 'utf8').trim().split('\n').map((f) => shared('faces', 'lfw', f));
    const files = [...groups, ...chips, ...lfw];
    expect(files.length).toBeGreaterThan(300);
    for (const f of files) {
      const b = readFileSync(f);
      expect(readImageHeader(b), f).toEqual(await sharpSays(b));
    }
  });
});
