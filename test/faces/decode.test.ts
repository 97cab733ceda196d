/**
 * Photo decoding on images made in code with sharp: every accepted format and pixel layout comes out
 * as 8-bit RGB with the right pixels, EXIF orientation is applied, and bad input gets coded errors.
 */
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../pipeline/faces/decode.js';
import { PNG_SIGNATURE, pngChunk } from '../helpers/image-bytes.js';

const W = 40;
const H = 24;
/** Left half red, right half blue, with a green top-left 4x4 marker (to see orientation). */
function pattern(): Buffer {
  const px = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      if (x < 4 && y < 4) px.set([0, 255, 0], o);
      else if (x < W / 2) px.set([255, 0, 0], o);
      else px.set([0, 0, 255], o);
    }
  }
  return px;
}
/** A ~140-byte PNG claiming a huge size (one zero row of data): what a decompression bomb's header looks like. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(width * 3 + 1))), pngChunk('IEND')]);
}
const raw = () => sharp(pattern(), { raw: { width: W, height: H, channels: 3 } });
const at = (d: { width: number; data: Uint8Array }, x: number, y: number) => Array.from(d.data.subarray((y * d.width + x) * 3, (y * d.width + x) * 3 + 3));
const near = (a: number[], b: number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]) <= tol);

describe('decodeImage', () => {
  it.each([
    ['baseline JPEG', () => raw().jpeg({ quality: 95 }).toBuffer(), 'jpeg', 40],
    ['progressive JPEG', () => raw().jpeg({ quality: 95, progressive: true }).toBuffer(), 'jpeg', 40],
    ['PNG', () => raw().png().toBuffer(), 'png', 0],
    ['lossless WebP', () => raw().webp({ lossless: true }).toBuffer(), 'webp', 0],
  ])('%s decodes to RGB with the right colours', async (_name, make, format, tol) => {
    const img = await decodeImage(await make());
    expect(img.format).toBe(format);
    expect([img.width, img.height]).toEqual([W, H]);
    expect(img.data.length).toBe(W * H * 3);
    expect(near(at(img, 10, 12), [255, 0, 0], tol)).toBe(true);
    expect(near(at(img, 30, 12), [0, 0, 255], tol)).toBe(true);
  });

  it('PNG with alpha drops the alpha channel (as imread does) and keeps the colour', async () => {
    const rgba = Buffer.alloc(W * H * 4);
    for (let i = 0; i < W * H; i++) rgba.set([10, 200, 30, i % 2 ? 0 : 128], i * 4);
    const img = await decodeImage(await sharp(rgba, { raw: { width: W, height: H, channels: 4 } }).png().toBuffer());
    expect(img.data.length).toBe(W * H * 3);
    expect(at(img, 1, 0)).toEqual([10, 200, 30]);
  });

  it('grayscale PNG becomes three equal channels', async () => {
    const gray = Buffer.alloc(W * H, 77);
    const img = await decodeImage(await sharp(gray, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer());
    expect(img.data.length).toBe(W * H * 3);
    expect(at(img, 5, 5)).toEqual([77, 77, 77]);
  });

  it('16-bit PNG becomes 8-bit', async () => {
    const deep = await raw().toColourspace('rgb16').png().toBuffer();
    expect((await sharp(deep).metadata()).depth).toBe('ushort');
    const img = await decodeImage(deep);
    expect(img.data).toBeInstanceOf(Uint8Array);
    expect(img.data.length).toBe(W * H * 3);
    expect(near(at(img, 10, 12), [255, 0, 0], 1)).toBe(true);
    expect(near(at(img, 30, 12), [0, 0, 255], 1)).toBe(true);
  });

  it('applies EXIF orientation 6 (rotate 90° clockwise)', async () => {
    const jpeg = await raw().jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(jpeg);
    expect(img.orientation).toBe(6);
    expect([img.width, img.height]).toEqual([H, W]);
    // the top-left green marker is now at the top-right, red (left half) is now on top
    expect(near(at(img, H - 2, 1), [0, 255, 0], 40)).toBe(true);
    expect(near(at(img, 12, 10), [255, 0, 0], 40)).toBe(true);
    expect(near(at(img, 12, 30), [0, 0, 255], 40)).toBe(true);
  });

  it('reads files by path', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-decode-'));
    const file = path.join(dir, 'x.png');
    writeFileSync(file, await raw().png().toBuffer());
    const img = await decodeImage(file);
    rmSync(dir, { recursive: true });
    expect(at(img, 0, 0)).toEqual([0, 255, 0]);
  });

  it.each([
    ['random bytes', Buffer.from('this is not an image at all, just text'), 'FACEOPT_ERR_BAD_IMAGE'],
    ['empty input', Buffer.alloc(0), 'FACEOPT_ERR_BAD_IMAGE'],
    ['a JPEG header then garbage', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(64, 7)]), 'FACEOPT_ERR_BAD_IMAGE'],
  ])('%s gives a coded error', async (_n, bytes, code) => {
    await expect(decodeImage(bytes, { source: 'upload' })).rejects.toMatchObject({ code });
  });

  it('a JPEG cut short (upload interrupted) is refused, not half-decoded', async () => {
    const big = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#808080' }, limitInputPixels: false })
      .composite([{ input: pattern(), raw: { width: W, height: H, channels: 3 }, top: 10, left: 10 }])
      .jpeg({ quality: 90, progressive: true })
      .toBuffer();
    await expect(decodeImage(big)).resolves.toMatchObject({ width: 300, height: 200 });
    await expect(decodeImage(big.subarray(0, Math.floor(big.length * 0.6)))).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_IMAGE' });
  });

  it('refuses formats other than JPEG/PNG/WebP (SVG) with a coded error', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    await expect(decodeImage(svg)).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_IMAGE' });
  });

  it('a missing file gives FACEOPT_ERR_FILE_NOT_FOUND', async () => {
    await expect(decodeImage('/nonexistent/photo.jpg')).rejects.toMatchObject({ code: 'FACEOPT_ERR_FILE_NOT_FOUND' });
  });

  it('a folder given as an image says so', async () => {
    const os = await import('node:os');
    await expect(decodeImage(os.tmpdir())).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_IMAGE', message: expect.stringContaining('it is a folder') });
  });

  it('enforces the pixel limit from the header, naming the sizes', async () => {
    const png = await raw().png().toBuffer();
    await expect(decodeImage(png, { maxPixels: W * H - 1, source: 'big.png' })).rejects.toMatchObject({
      code: 'FACEOPT_ERR_IMAGE_TOO_LARGE',
      params: { source: 'big.png', pixels: W * H, limit: W * H - 1 },
    });
    await expect(decodeImage(png, { maxPixels: W * H })).resolves.toMatchObject({ width: W, height: H });
    // a 100-byte PNG claiming 20000 x 20000 (400 MP) is refused by the default 40 MP limit before decoding
    await expect(decodeImage(pngHeaderOnly(20000, 20000))).rejects.toMatchObject({ code: 'FACEOPT_ERR_IMAGE_TOO_LARGE', params: { pixels: 400_000_000, limit: 40_000_000 } });
  });

  it('rejects a bad pixel limit argument', async () => {
    await expect(decodeImage(Buffer.alloc(1), { maxPixels: 0 })).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT' });
  });
});
