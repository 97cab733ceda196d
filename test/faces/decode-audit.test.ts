/**
 * decodeImage's edges: the reasons it gives for empty input and folders, and the orientation it reports
 * when the JavaScript header reader declines a file and sharp's reader supplies the header.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeImage, skipUnreadable, UnreadablePhotos, unreadableWarning } from '../../pipeline/faces/decode.js';
import { FaceoptError } from '../../pipeline/errors.js';
import { readImageHeader } from '../../pipeline/faces/image-header.js';
import { beforeSof, exifApp1, tiff, withoutApp } from '../helpers/image-bytes.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-decode-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('unreadable photos in batch jobs', () => {
  it('skipUnreadable skips bad and too-large images when told where, and throws anything else', async () => {
    const told: string[] = [];
    const onUnreadable = (image: string, reason: string) => { told.push(`${image}: ${reason}`); };
    expect(await skipUnreadable(() => decodeImage(new Uint8Array(0)), 'a.jpg', onUnreadable)).toBeNull();
    const big = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#000' } }).png().toBuffer();
    expect(await skipUnreadable(() => decodeImage(big, { maxPixels: 100 }), 'b.png', onUnreadable)).toBeNull();
    expect(told).toEqual(['a.jpg: it is empty', expect.stringMatching(/^b\.png: /)]);
    await expect(skipUnreadable(() => decodeImage(new Uint8Array(0)), 'a.jpg', undefined)).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_IMAGE' });
    await expect(skipUnreadable(() => decodeImage(path.join(dir, 'missing.jpg')), 'c.jpg', onUnreadable)).rejects.toMatchObject({ code: 'FACEOPT_ERR_FILE_NOT_FOUND' });
    await expect(skipUnreadable(() => Promise.reject(new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: 'x' })), 'd.jpg', onUnreadable)).rejects.toBeInstanceOf(FaceoptError);
    expect(told).toHaveLength(2);
  });

  it('the warning names three, counts the rest, and says photo/photos and was/were right', () => {
    const m = (n: number) => new Map(Array.from({ length: n }, (_, k) => [`p${k}.jpg`, `r${k}`] as [string, string]));
    expect(unreadableWarning(m(1), 'query')).toBe('1 query photo could not be read and was left out: p0.jpg (r0)');
    expect(unreadableWarning(m(1), 'query', 5)).toBe('1 of 5 query photos could not be read and was left out: p0.jpg (r0)');
    expect(unreadableWarning(m(3), 'gallery')).toBe('3 gallery photos could not be read and were left out: p0.jpg (r0), p1.jpg (r1), p2.jpg (r2)');
    expect(unreadableWarning(m(5), 'gallery', 9)).toBe('5 of 9 gallery photos could not be read and were left out: p0.jpg (r0), p1.jpg (r1), p2.jpg (r2) and 2 more');
  });

  it('UnreadablePhotos keeps the first reason per name, and warns only when told something', () => {
    const u = new UnreadablePhotos((image) => path.basename(image));
    expect(u.warning('query')).toBeNull();
    u.onUnreadable('/x/a.jpg', 'first');
    u.onUnreadable('/y/a.jpg', 'second');
    expect([...u.photos]).toEqual([['a.jpg', 'first']]);
    expect(u.warning('query')).toBe('1 query photo could not be read and was left out: a.jpg (first)');
  });
});

describe('decodeImage reasons', () => {
  it('empty bytes: "it is empty"', async () => {
    await expect(decodeImage(new Uint8Array(0), { source: 'up' })).rejects.toMatchObject({
      code: 'FACEOPT_ERR_BAD_IMAGE', params: { source: 'up', reason: 'it is empty' },
    });
  });

  it('a folder: told to pass the image files in it', async () => {
    await expect(decodeImage(dir)).rejects.toMatchObject({
      code: 'FACEOPT_ERR_BAD_IMAGE', params: { source: dir, reason: 'it is a folder; pass the image files in it' },
    });
  });
});

describe('decodeImage when only sharp can read the header', () => {
  it('reports the EXIF orientation sharp read, and the pixels are rotated', async () => {
    const base = withoutApp(await sharp({ create: { width: 40, height: 24, channels: 3, background: '#c44' } }).jpeg().toBuffer());
    // two stray bytes after the EXIF block: libjpeg skips them with a warning, the JavaScript walk stops
    const file = beforeSof(base, exifApp1(tiff(true, [[0x0112, 3, 6]])), Buffer.from([0x00, 0x00]));
    expect(readImageHeader(file)).toBeNull();
    const img = await decodeImage(file);
    expect([img.width, img.height, img.orientation, img.format]).toEqual([24, 40, 6, 'jpeg']);
  });
});
