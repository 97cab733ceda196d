/**
 * Malformed and hostile requests for the server, as plain descriptions (method, URL, headers, body) that
 * both Fastify's `inject` (test/server/hostile.test.ts) and a real socket (bench/hostile.ts) can send:
 * truncated and corrupted JPEGs, random bytes, PNG headers claiming huge sizes, decompression bombs
 * (PNG and gzip), wrong content types, broken and oversized multipart, bad JSON and base64, huge URLs
 * and headers, unknown routes and methods. Each case has a kind (for tables) and a unique name.
 */
import { deflateSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { mulberry32 } from '../pipeline/evaluate/stats.js';
import { BOUNDARY, multipartParts, type BodyPart } from './serve-kit.js';

/** One hostile request. `socketOnly` cases only mean something through Node's HTTP parser (not inject). */
export interface HostileRequest {
  kind: string;
  name: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: Buffer | string;
  socketOnly?: boolean;
  /** The server answers and then closes the connection (header overflow, body over the limit): send it on its own socket. */
  closesSocket?: boolean;
}

/** Valid images the hostile cases are cut from. */
export interface HostileSeeds { jpeg: Buffer; progressive: Buffer; png: Buffer; smuggled: Buffer }

/**
 * A real width x height JPEG whose frame header hides from a marker walk that reads `FF 00` as a
 * segment: `FF 00 L L` right after SOI is 4 bytes of garbage to libjpeg (skipped with a warning), but
 * read as a segment of length L it jumps over the real frame header into an APP15 body holding a fake
 * 16x16 SOF and SOS. A server trusting such a walk decodes width x height pixels past its pixel limit.
 */
export async function smuggledJpeg(width: number, height: number): Promise<Buffer> {
  const real = await sharp({ create: { width, height, channels: 3, background: { r: 127, g: 127, b: 127 } } }).jpeg({ quality: 50 }).toBuffer();
  let i = 2;
  while (real[i + 1] !== 0xda) i += 2 + real.readUInt16BE(i + 2);
  const headers = real.subarray(2, i);
  const fakeSof = [0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01];
  const fakeSos = [0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00];
  const body = Buffer.from([...fakeSof, ...fakeSos]);
  const app15 = Buffer.concat([Buffer.from([0xff, 0xef, 0, 0]), body]);
  app15.writeUInt16BE(body.length + 2, 2);
  const L = 2 + headers.length + 4;
  return Buffer.concat([real.subarray(0, 2), Buffer.from([0xff, 0x00, L >> 8, L & 0xff]), headers, app15, real.subarray(i)]);
}

/**
 * Seed images: `jpeg` (default a 300x200 solid-colour JPEG; pass a real photo for realism), the same as a
 * progressive JPEG, and a 64x64 PNG.
 */
export async function hostileSeeds(jpeg?: Buffer): Promise<HostileSeeds> {
  const base = jpeg ?? await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 90, g: 160, b: 200 } } }).jpeg().toBuffer();
  const progressive = await sharp(base).jpeg({ progressive: true }).toBuffer();
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
  return { jpeg: base, progressive, png, smuggled: await smuggledJpeg(5000, 5000) };
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * A well-formed PNG whose header claims width x height (8-bit RGB), followed by `rows` real rows of
 * zero pixels, deflated: a few bytes that would decode to width*height*3 bytes of pixels.
 */
export function pngClaiming(width: number, height: number, rows: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  const raw = Buffer.alloc(Math.min(rows, height) * (1 + width * 3)); // filter byte 0 + zero pixels
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}

/**
 * A gzip stream (concatenated members, which gunzip accepts) that inflates to `mib` MiB of `fill`
 * bytes while being about 1 KB per MiB on the wire: a decompression bomb for servers that inflate bodies.
 */
export function gzipBomb(mib: number, fill = 0x20): Buffer {
  const member = gzipSync(Buffer.alloc(1 << 20, fill), { level: 9 });
  return Buffer.concat(Array.from({ length: mib }, () => member));
}

/** `n` pseudo-random bytes from a seeded PRNG (the same bytes for the same seed). */
export function randomBytes(n: number, seed: number): Buffer {
  const rnd = mulberry32(seed);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
}

/**
 * The hostile request list. `bodyLimit` is the server's body limit (the "over the limit" body is 1 MiB
 * more). Names are unique and stable, so tests can assert the status of a named case.
 */
export function hostileRequests(seeds: HostileSeeds, opts: { bodyLimit: number }): HostileRequest[] {
  const { jpeg, progressive, png, smuggled } = seeds;
  const out: HostileRequest[] = [];
  const raw = (kind: string, name: string, payload: Buffer | string, type = 'image/jpeg', url = '/v1/embed', extra: Partial<HostileRequest> = {}) => {
    out.push({ kind, name, method: 'POST', url, headers: type ? { 'content-type': type } : {}, payload, ...extra });
  };
  const form = (kind: string, name: string, url: string, parts: BodyPart[]) => raw(kind, name, multipartParts(parts), `multipart/form-data; boundary=${BOUNDARY}`, url);
  const get = (kind: string, name: string, method: string, url: string, headers: Record<string, string> = {}, socketOnly = false, closesSocket = socketOnly) => {
    out.push({ kind, name, method, url, headers, ...(socketOnly ? { socketOnly } : {}), ...(closesSocket ? { closesSocket } : {}) });
  };

  for (const cut of [1, 2, 3, 10, 100, Math.floor(jpeg.length / 2), jpeg.length - 2]) raw('truncated JPEG', `JPEG truncated at ${cut}`, jpeg.subarray(0, cut));
  for (const cut of [20, Math.floor(progressive.length / 2)]) raw('truncated JPEG', `progressive JPEG truncated at ${cut}`, progressive.subarray(0, cut));
  form('truncated JPEG', 'multipart /embed: JPEG truncated at half', '/embed', [{ name: 'file', data: jpeg.subarray(0, Math.floor(jpeg.length / 2)) }]);

  const flipped = Buffer.from(jpeg);
  for (let i = 200; i < flipped.length; i += 37) flipped[i] ^= 0xff;
  raw('corrupt image', 'JPEG with corrupted entropy data', flipped);
  raw('corrupt image', 'JPEG magic + random bytes', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(4000, 7)]));
  raw('corrupt image', 'PNG truncated after the header', png.subarray(0, 40), 'image/png');
  raw('corrupt image', 'empty body', Buffer.alloc(0));
  raw('corrupt image', 'random bytes', Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256)));
  for (const seed of [1, 2, 3]) raw('corrupt image', `random bytes as image/jpeg (seed ${seed})`, randomBytes(2000 * seed, seed));
  form('corrupt image', 'multipart /embed: random bytes as image/jpeg', '/embed', [{ name: 'file', data: randomBytes(3000, 11) }]);

  raw('decompression bomb', 'PNG header claiming 100000 x 100000', pngClaiming(100_000, 100_000, 1), 'image/png');
  raw('decompression bomb', 'PNG header claiming 50000 x 50000', pngClaiming(50_000, 50_000, 1), 'image/png');
  raw('decompression bomb', 'PNG bomb: 3000 x 3000 zeros in a few KB', pngClaiming(3000, 3000, 3000), 'image/png');
  raw('decompression bomb', 'PNG header claiming 0 x 0', pngClaiming(0, 0, 0), 'image/png');
  raw('decompression bomb', 'JPEG of 5000 x 5000 claiming 16 x 16 past FF 00 stuffing', smuggled, 'image/jpeg');
  form('decompression bomb', 'multipart /embed: PNG claiming 50000 x 50000', '/embed', [{ name: 'file', data: pngClaiming(50_000, 50_000, 1), type: 'image/png' }]);
  const bomb = gzipBomb(512);
  raw('decompression bomb', 'gzip bomb (512 MiB) as JSON to /v1/extract', bomb, 'application/json', '/v1/extract', { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
  raw('decompression bomb', 'gzip bomb (512 MiB) as image/jpeg', bomb, 'image/jpeg', '/v1/embed', { headers: { 'content-type': 'image/jpeg', 'content-encoding': 'gzip' } });

  raw('wrong type', 'GIF', Buffer.from('GIF89a\x01\x00\x01\x00\x80\x00\x00', 'latin1'), 'application/octet-stream');
  raw('wrong type', 'SVG with a script', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 'image/svg+xml');
  raw('wrong type', 'SVG declared as JPEG', '<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>');
  raw('wrong type', 'zip declared as PNG', Buffer.from('PK\x03\x04\x14\x00\x00\x00', 'latin1'), 'image/png');
  raw('wrong type', 'text/html', '<html></html>', 'text/html');
  raw('wrong type', 'text/plain JPEG bytes', jpeg, 'text/plain');
  raw('wrong type', 'application/xml', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', 'application/xml');
  raw('wrong type', 'form-urlencoded', 'file=abc&threshold=0.5', 'application/x-www-form-urlencoded', '/embed');
  raw('wrong type', 'no content type', 'abc', '');
  form('wrong type', 'multipart file declared text/plain', '/embed', [{ name: 'file', data: jpeg, type: 'text/plain' }]);

  raw('over the limit', 'body over the limit', Buffer.alloc(opts.bodyLimit + (1 << 20), 1), 'image/jpeg', '/v1/embed', { closesSocket: true });

  raw('bad JSON', 'malformed JSON', '{"image": "abc', 'application/json');
  raw('bad JSON', 'malformed JSON on /v1/extract', '{"images": {"data": ["aGVsbG8="', 'application/json', '/v1/extract');
  raw('bad JSON', 'deeply nested JSON', `${'['.repeat(5000)}${']'.repeat(5000)}`, 'application/json');
  raw('bad JSON', 'JSON image is a number', '{"image": 12345}', 'application/json');
  raw('bad JSON', 'JSON with prototype pollution', '{"image": "aGVsbG8=", "__proto__": {"x": 1}}', 'application/json');
  raw('bad JSON', 'extract: 10000 base64 entries', JSON.stringify({ images: { data: Array(10_000).fill('aGVsbG8=') } }), 'application/json', '/v1/extract');
  raw('bad JSON', 'verify JSON missing b', JSON.stringify({ a: jpeg.toString('base64') }), 'application/json', '/v1/verify');
  raw('bad JSON', 'extract: base64 garbage', JSON.stringify({ images: { data: ['%%%not base64!!!', '\u0000\u0001'] } }), 'application/json', '/v1/extract');
  raw('bad JSON', 'embed: base64 garbage', JSON.stringify({ image: '$$$$' }), 'application/json');
  raw('bad JSON', 'extract: base64 of random bytes', JSON.stringify({ images: { data: [randomBytes(3000, 5).toString('base64')] } }), 'application/json', '/v1/extract');
  raw('bad JSON', 'extract: base64 of a truncated JPEG', JSON.stringify({ images: { data: [jpeg.subarray(0, 200).toString('base64')] } }), 'application/json', '/v1/extract');
  raw('bad JSON', 'extract: images is a string', JSON.stringify({ images: 'x' }), 'application/json', '/v1/extract');

  raw('bad multipart', 'multipart without boundary', 'xxxx', 'multipart/form-data', '/embed');
  raw('bad multipart', 'multipart cut in the middle', '--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff', 'multipart/form-data; boundary=b', '/embed');
  raw('bad multipart', 'multipart with a garbage header', '--b\r\nthis is not a header\r\n\r\nxx\r\n--b--\r\n', 'multipart/form-data; boundary=b', '/embed');
  form('bad multipart', 'multipart with 40 files', '/v1/extract', Array.from({ length: 40 }, () => ({ name: 'file', data: png, type: 'image/png' })));
  form('bad multipart', 'multipart with 10 files to /embed', '/embed', Array.from({ length: 10 }, () => ({ name: 'file', data: png, type: 'image/png' })));
  form('bad multipart', 'multipart with a 500-char field name', '/embed', [{ name: 'x'.repeat(500), data: png, type: 'image/png' }]);
  form('bad multipart', 'multipart missing the file field', '/embed', [{ name: 'threshold', data: '0.5' }]);
  form('bad multipart', 'multipart file in the wrong field', '/embed', [{ name: 'photo', data: png, type: 'image/png' }]);
  form('bad multipart', 'multipart with 100 text fields', '/embed', Array.from({ length: 100 }, (_, i) => ({ name: `f${i}`, data: 'v' })));

  out.push({ kind: 'bad URL/header', name: 'huge query string', method: 'POST', url: `/v1/embed?threshold=${'9'.repeat(10_000)}`, payload: jpeg, headers: { 'content-type': 'image/jpeg' } });
  out.push({ kind: 'bad URL/header', name: 'query array', method: 'POST', url: '/v1/embed?threshold=0.1&threshold=0.2', payload: jpeg, headers: { 'content-type': 'image/jpeg' } });
  get('bad URL/header', 'path traversal URL', 'GET', '/../../etc/passwd');
  get('bad URL/header', 'long URL', 'GET', `/${'a'.repeat(20_000)}`, {}, false, true);
  get('bad URL/header', '64 KB cookie', 'GET', '/v1/models', { cookie: `s=${'c'.repeat(64 * 1024)}` }, true);
  get('bad URL/header', '100 x 1 KB headers', 'GET', '/v1/models', Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-junk-${i}`, 'j'.repeat(1024)])), true);
  get('bad URL/header', 'unknown HTTP method', 'FOO', '/embed', {}, true);

  get('bad route/method', 'GET /embed', 'GET', '/embed');
  get('bad route/method', 'GET /v1/extract', 'GET', '/v1/extract');
  get('bad route/method', 'PUT /v1/models', 'PUT', '/v1/models');
  get('bad route/method', 'DELETE /health', 'DELETE', '/health');
  get('bad route/method', 'PATCH /metrics', 'PATCH', '/metrics');
  get('bad route/method', 'POST /v2/embed', 'POST', '/v2/embed');
  get('bad route/method', 'GET /v1/models/../../secret', 'GET', '/v1/models/%2e%2e/%2e%2e/secret');
  return out;
}
