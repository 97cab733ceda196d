/**
 * Hostile and malformed requests (truncated JPEGs, decompression bombs, PNG headers claiming huge sizes,
 * wrong types, broken multipart, deep or huge JSON, odd headers) through inject over the synthetic
 * backend, which decodes with the real sharp path: every answer is a coded 4xx, never a 5xx, and the
 * server still answers normally afterwards.
 */
import { deflateSync } from 'node:zlib';
import type { InjectOptions } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaceoptApp } from '../../server/app.js';
import { FakeBackend, fakeApp, multipart, solidImage } from './helpers.js';

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A PNG whose header claims width x height; `rows` real zero rows of deflated data follow. */
function pngClaiming(width: number, height: number, rows: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  const raw = Buffer.alloc(Math.min(rows, height) * (1 + width * 3)); // filter byte 0 + zero pixels
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

let app: FaceoptApp;
let jpeg: Buffer;
let progressive: Buffer;
let png: Buffer;

beforeAll(async () => {
  ({ app } = await fakeApp({ bodyLimit: 2 * 1024 * 1024, maxPixels: 4_000_000, cache: { memoryEntries: 0 } }, new FakeBackend({ maxPixels: 4_000_000 })));
  jpeg = await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 90, g: 160, b: 200 } } }).jpeg().toBuffer();
  progressive = await sharp(jpeg).jpeg({ progressive: true }).toBuffer();
  png = await solidImage([10, 200, 30], 64, 'png');
});
afterAll(async () => { await app?.close(); });

type Req = InjectOptions;

async function hostileRequests(): Promise<[string, Req][]> {
  const raw = (name: string, payload: Buffer | string, type = 'image/jpeg', url = '/v1/embed'): [string, Req] => [name, { method: 'POST', url, payload, headers: { 'content-type': type } }];
  const out: [string, Req][] = [];
  for (const cut of [1, 2, 3, 10, 100, Math.floor(jpeg.length / 2), jpeg.length - 2]) out.push(raw(`JPEG truncated at ${cut}`, jpeg.subarray(0, cut)));
  for (const cut of [20, Math.floor(progressive.length / 2)]) out.push(raw(`progressive JPEG truncated at ${cut}`, progressive.subarray(0, cut)));
  const flipped = Buffer.from(jpeg);
  for (let i = 200; i < flipped.length; i += 37) flipped[i] ^= 0xff;
  out.push(raw('JPEG with corrupted entropy data', flipped));
  out.push(raw('PNG header claiming 100000 x 100000', pngClaiming(100_000, 100_000, 1), 'image/png'));
  out.push(raw('PNG bomb: 3000 x 3000 zeros in a few KB', pngClaiming(3000, 3000, 3000), 'image/png'));
  out.push(raw('PNG header claiming 0 x 0', pngClaiming(0, 0, 0), 'image/png'));
  out.push(raw('PNG truncated after the header', png.subarray(0, 40), 'image/png'));
  out.push(raw('empty body', Buffer.alloc(0)));
  out.push(raw('random bytes', Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256))));
  out.push(raw('GIF', Buffer.from('GIF89a\x01\x00\x01\x00\x80\x00\x00', 'latin1'), 'application/octet-stream'));
  out.push(raw('SVG with a script', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 'image/svg+xml'));
  out.push(raw('SVG declared as JPEG', '<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>'));
  out.push(raw('zip declared as PNG', Buffer.from('PK\x03\x04\x14\x00\x00\x00', 'latin1'), 'image/png'));
  out.push(raw('text/html', '<html></html>', 'text/html'));
  out.push(raw('no content type', 'abc', ''));
  out.push(raw('body over the limit', Buffer.alloc(3 * 1024 * 1024, 1)));
  out.push(raw('malformed JSON', '{"image": "abc', 'application/json'));
  out.push(raw('deeply nested JSON', `${'['.repeat(5000)}${']'.repeat(5000)}`, 'application/json'));
  out.push(raw('JSON image is a number', '{"image": 12345}', 'application/json'));
  out.push(raw('JSON with prototype pollution', '{"image": "aGVsbG8=", "__proto__": {"x": 1}}', 'application/json'));
  out.push(raw('extract: 10000 base64 entries', JSON.stringify({ images: { data: Array(10_000).fill('aGVsbG8=') } }), 'application/json', '/v1/extract'));
  out.push(raw('verify JSON missing b', JSON.stringify({ a: jpeg.toString('base64') }), 'application/json', '/v1/verify'));
  out.push(raw('multipart without boundary', 'xxxx', 'multipart/form-data', '/embed'));
  out.push(raw('multipart cut in the middle', '--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff', 'multipart/form-data; boundary=b', '/embed'));
  out.push(raw('multipart with a garbage header', '--b\r\nthis is not a header\r\n\r\nxx\r\n--b--\r\n', 'multipart/form-data; boundary=b', '/embed'));
  const many = await multipart(Array.from({ length: 40 }, () => ({ name: 'file', data: png, type: 'image/png' })));
  out.push(['multipart with 40 files', { method: 'POST', url: '/v1/extract', ...many }]);
  const weird = await multipart([{ name: 'x'.repeat(500), data: png, type: 'image/png' }]);
  out.push(['multipart with a 500-char field name', { method: 'POST', url: '/embed', ...weird }]);
  out.push(['huge query string', { method: 'POST', url: `/v1/embed?threshold=${'9'.repeat(10_000)}`, payload: jpeg, headers: { 'content-type': 'image/jpeg' } }]);
  out.push(['query array', { method: 'POST', url: '/v1/embed?threshold=0.1&threshold=0.2', payload: jpeg, headers: { 'content-type': 'image/jpeg' } }]);
  out.push(['path traversal URL', { method: 'GET', url: '/../../etc/passwd' }]);
  out.push(['long URL', { method: 'GET', url: `/${'a'.repeat(20_000)}` }]);
  return out;
}

describe('hostile inputs', () => {
  it('each gets a coded 4xx, never a 5xx', async () => {
    const reqs = await hostileRequests();
    const seen: Record<string, number> = {};
    for (const [name, req] of reqs) {
      const res = await app.inject(req);
      seen[name] = res.statusCode;
      expect.soft(res.statusCode, `${name}: ${res.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
      expect.soft(res.statusCode, `${name}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
      expect.soft(res.json().error.code, name).toMatch(/^FACEOPT_ERR_/);
    }
    expect(seen['PNG header claiming 100000 x 100000']).toBe(413);
    expect(seen['PNG bomb: 3000 x 3000 zeros in a few KB']).toBe(413);
    expect(seen['body over the limit']).toBe(413);
    expect(seen['JPEG truncated at 100']).toBe(400);
    expect(seen['SVG with a script']).toBe(415);
  });

  it('10 rounds of every hostile request: still 0 5xx, then a normal photo is answered', async () => {
    const reqs = await hostileRequests();
    let fivexx = 0;
    let total = 0;
    for (let round = 0; round < 10; round++) {
      const res = await Promise.all(reqs.map(([, r]) => app.inject(r)));
      for (const r of res) { total++; if (r.statusCode >= 500) fivexx++; }
    }
    expect(total).toBe(reqs.length * 10);
    expect(fivexx).toBe(0);
    const ok = await app.inject({ method: 'POST', url: '/v1/embed', payload: jpeg, headers: { 'content-type': 'image/jpeg' } });
    expect(ok.statusCode).toBe(200);
    expect(app.faceopt.service.admission.inflight).toBe(0);
  });
});
