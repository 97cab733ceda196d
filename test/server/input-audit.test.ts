/**
 * Reading requests (server/input.ts), where a mutation audit of the request layer found it unchecked:
 * magic-byte edges, base64 padding, a declared type in capitals, a multipart body of exactly
 * --body-limit bytes, a lenient route keeping a bad multipart file to its own entry, and empty option
 * values. Synthetic backend (test/server/helpers.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FaceoptApp } from '../../server/app.js';
import { checkImageBytes, fromBase64, sniffFormat } from '../../server/input.js';
import { fakeApp, multipart, solidImage } from './helpers.js';

let app: FaceoptApp | undefined;
afterEach(async () => { await app?.close(); app = undefined; });

describe('bytes and base64', () => {
  it('sniffs a 12-byte ISO-BMFF head (HEIF/AVIF) and big-endian TIFF', () => {
    expect(sniffFormat(Buffer.from('\0\0\0\x0cftypheic', 'latin1'))).toBe('heif/avif/mp4');
    expect(sniffFormat(Buffer.from('\0\0\0\x0cftypheic'.slice(0, 11), 'latin1'))).toBeNull();
    expect(sniffFormat(Buffer.from('MM\0*\0\0\0\x08', 'latin1'))).toBe('tiff');
    expect(sniffFormat(Buffer.from('II*\0\x08\0\0\0', 'latin1'))).toBe('tiff');
  });

  it('checkImageBytes takes a declared type in any case, with parameters', async () => {
    const img = { field: 'file', source: 'face.jpg', bytes: await solidImage([200, 30, 30]) };
    expect(() => checkImageBytes(img, 'Image/JPEG; q=1')).not.toThrow();
    expect(() => checkImageBytes(img, 'Application/PDF')).toThrow('application/pdf');
  });

  it('base64 takes at most two padding characters', () => {
    expect(fromBase64('aGk=', 'image').toString()).toBe('hi');
    expect(fromBase64('aA==', 'image').toString()).toBe('h');
    expect(() => fromBase64('aA===', 'image')).toThrow('Expected a base64 string for image but received characters outside base64');
  });
});

describe('multipart', () => {
  it('a body of exactly --body-limit bytes is read (the limit is inclusive)', async () => {
    const limit = 8192;
    const jpeg = await solidImage([200, 30, 30]);
    const body = (pad: number) => multipart([{ name: 'file', data: Buffer.concat([jpeg, Buffer.alloc(pad, 7)]) }]); // a JPEG with trailing bytes
    const { payload, headers } = await body(limit - (await body(0)).payload.length);
    expect(payload.length).toBe(limit);
    ({ app } = await fakeApp({ bodyLimit: limit }));
    const res = await app.inject({ method: 'POST', url: '/v1/embed', payload, headers });
    expect(res.statusCode, res.body).toBe(200);
    const over = await body(limit + 1 - (await body(0)).payload.length);
    expect((await app.inject({ method: 'POST', url: '/v1/embed', payload: over.payload, headers: over.headers })).statusCode).toBe(413);
  });

  it('/v1/extract: a multipart file that is not an image is its own entry; the others are answered', async () => {
    ({ app } = await fakeApp());
    const red = await solidImage([200, 30, 30]);
    const res = await app.inject({ method: 'POST', url: '/v1/extract', ...(await multipart([{ name: 'file', data: red }, { name: 'file', data: Buffer.from('%PDF-1.7 not a photo'), filename: 'doc.jpg' }])) });
    expect(res.statusCode, res.body).toBe(200);
    const [ok, bad] = res.json().images;
    expect(ok).toMatchObject({ status: 'ok', width: 64, height: 64 });
    expect(bad).toMatchObject({ status: 'error', error: { code: 'FACEOPT_ERR_UNSUPPORTED_MEDIA' } });
  });

});

describe('options', () => {
  it('an empty option value counts as not given, in the query string and in a form field', async () => {
    ({ app } = await fakeApp({ detThreshold: 0.95 }));
    const red = await solidImage([200, 30, 30]);
    // the server threshold (0.95) finds no synthetic face (score 0.9); an empty value must not change it
    const q = await app.inject({ method: 'POST', url: '/v1/detect?threshold=', payload: red, headers: { 'content-type': 'image/jpeg' } });
    expect(q.statusCode, q.body).toBe(200);
    expect(q.json().faces).toEqual([]);
    const f = await app.inject({ method: 'POST', url: '/v1/detect', ...(await multipart([{ name: 'file', data: red }, { name: 'threshold', data: '' }])) });
    expect(f.statusCode, f.body).toBe(200);
    expect(f.json().faces).toEqual([]);
  });
});
