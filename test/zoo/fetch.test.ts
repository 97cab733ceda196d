import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ErrorCode, isFaceoptError } from '../../pipeline/errors.js';
import { FETCH_RECORD, fetchPack, type FetchOptions } from '../../pipeline/zoo/fetch.js';
import { resolveModelArg } from '../../pipeline/zoo/resolve.js';
import { verifyPacks } from '../../pipeline/zoo/verify.js';
import { buildZip, closedPort, sendBytes, serve, sha256, tempDir, testZoo, type TestServer } from './helpers.js';

const det = Buffer.from('fake detector bytes '.repeat(5000));
const rec = Buffer.alloc(200_000);
for (let i = 0, x = 1; i < rec.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; rec[i] = x >>> 24; } // incompressible
const goodZip = buildZip([{ name: 'tinypack/' }, { name: 'tinypack/det.onnx', data: det }, { name: 'tinypack/rec.onnx', data: rec }]);
const files = [{ name: 'det.onnx', data: det, role: 'detector' }, { name: 'rec.onnx', data: rec }];

async function codeOf(p: Promise<unknown>): Promise<{ code: ErrorCode; message: string }> {
  const e = await p.then(() => null, (err: unknown) => err);
  if (!isFaceoptError(e)) throw new Error(`expected a FaceoptError, got ${String(e)}`);
  return { code: e.code, message: e.message };
}

/** Only the pack folder may remain in the models folder: no zip, no temp folder, no half pack. */
function leftovers(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('fetchPack against a local HTTP server', () => {
  let server: TestServer;
  let tooShort: Buffer;

  beforeAll(async () => {
    tooShort = goodZip.subarray(0, 1000);
    server = await serve({
      '/good.zip': sendBytes(goodZip),
      '/redirect.zip': (_q, s) => { s.writeHead(302, { location: '/hop2.zip' }); s.end(); },
      '/hop2.zip': (_q, s) => { s.writeHead(301, { location: `${server.url}/good.zip` }); s.end(); },
      '/loop.zip': (_q, s) => { s.writeHead(302, { location: '/loop.zip' }); s.end(); },
      '/other.zip': sendBytes(buildZip([{ name: 'det.onnx', data: det }, { name: 'rec.onnx', data: Buffer.alloc(200_000, 8) }])),
      '/short.zip': (_q, s) => { s.writeHead(200, { 'content-length': goodZip.length }); s.write(tooShort, () => s.socket?.end()); },
      '/stall.zip': () => { /* never answers */ },
    });
  });
  afterAll(async () => server.close());

  const zooFor = (zip: Buffer | null, fileList = files) => testZoo({ url: `${server.url}/good.zip`, zip, files: fileList });
  const opts = (extra: Partial<FetchOptions> = {}): FetchOptions => ({ modelsDir: tempDir(), zoo: zooFor(goodZip), progress: null, ...extra });

  it('downloads, verifies and unpacks a pack, stripping its top folder', async () => {
    const o = opts();
    const r = await fetchPack('tinypack', o);
    const dir = path.join(o.modelsDir!, 'tinypack');
    expect(r.status).toBe('fetched');
    expect(r.bytes).toBe(goodZip.length);
    expect(r.zipSha256).toBe(sha256(goodZip));
    expect(r.files.map((f) => [f.file, f.status])).toEqual([['det.onnx', 'ok'], ['rec.onnx', 'ok']]);
    expect(readFileSync(path.join(dir, 'rec.onnx')).equals(rec)).toBe(true);
    expect(leftovers(o.modelsDir!)).toEqual(['tinypack']);
    const record = JSON.parse(readFileSync(path.join(dir, FETCH_RECORD), 'utf8'));
    expect(record.files.map((f: { sha256: string }) => f.sha256)).toEqual([sha256(det), sha256(rec)]);
    // the fetched files resolve as PACK/FILE and verify clean
    expect(resolveModelArg('tinypack/rec', { modelsDir: o.modelsDir, zoo: o.zoo })).toBe(path.join(dir, 'rec.onnx'));
    const [check] = await verifyPacks(o.zoo!, o.modelsDir!, 'tinypack');
    expect(check!.files.every((f) => f.status === 'ok')).toBe(true);
  });

  it('follows redirects (relative and absolute) and reports progress', async () => {
    const seen: string[] = [];
    const sink = { isTTY: false, write: (c: string) => { seen.push(c); return true; } };
    const r = await fetchPack('tinypack', opts({ url: `${server.url}/redirect.zip`, progress: sink }));
    expect(r.status).toBe('fetched');
    expect(server.hits.filter((h) => h === '/hop2.zip').length).toBeGreaterThan(0);
    expect(seen.at(-1)).toMatch(/^tinypack\.zip: 100% \(0\.\d MB in \d+\.\d s\)\n$/);
  });

  it('skips a pack that is already present and intact, and refetches with force', async () => {
    const o = opts();
    await fetchPack('tinypack', o);
    const before = server.hits.length;
    expect((await fetchPack('tinypack', o)).status).toBe('already-present');
    expect(server.hits.length).toBe(before);
    expect((await fetchPack('tinypack', { ...o, force: true })).status).toBe('fetched');
    expect(leftovers(o.modelsDir!)).toEqual(['tinypack']);
  });

  it('a wrong zip checksum is FACEOPT_ERR_CHECKSUM and leaves nothing behind', async () => {
    const bad = testZoo({ url: `${server.url}/good.zip`, zip: null, files });
    const zoo = { ...bad, packs: [{ ...bad.packs[0]!, zip: { ...bad.packs[0]!.zip, sha256: 'f'.repeat(64) } }] };
    const o = opts({ zoo });
    const got = await codeOf(fetchPack('tinypack', o));
    expect(got.code).toBe('FACEOPT_ERR_CHECKSUM');
    expect(got.message).toContain(sha256(goodZip));
    expect(got.message).toContain('f'.repeat(64));
    expect(leftovers(o.modelsDir!)).toEqual([]);
  });

  it('a model file that differs from the manifest is FACEOPT_ERR_CHECKSUM, even inside a good zip', async () => {
    const o = opts({ url: `${server.url}/other.zip`, zoo: zooFor(null) });
    const got = await codeOf(fetchPack('tinypack', o));
    expect(got.code).toBe('FACEOPT_ERR_CHECKSUM');
    expect(got.message).toContain('tinypack/rec.onnx');
    expect(leftovers(o.modelsDir!)).toEqual([]);
  });

  it('a failed fetch keeps the previous copy of the pack untouched', async () => {
    const o = opts();
    await fetchPack('tinypack', o);
    const got = await codeOf(fetchPack('tinypack', { ...o, force: true, url: `${server.url}/other.zip` }));
    expect(got.code).toBe('FACEOPT_ERR_CHECKSUM');
    expect(readFileSync(path.join(o.modelsDir!, 'tinypack', 'rec.onnx')).equals(rec)).toBe(true);
    expect(leftovers(o.modelsDir!)).toEqual(['tinypack']);
  });

  it('a zip without a listed file is FACEOPT_ERR_MODEL_TRUNCATED naming the file', async () => {
    const o = opts({ zoo: zooFor(goodZip, [...files, { name: 'extra.onnx', data: Buffer.from('e') }]) });
    const got = await codeOf(fetchPack('tinypack', o));
    expect(got.code).toBe('FACEOPT_ERR_MODEL_TRUNCATED');
    expect(got.message).toContain('no extra.onnx');
    expect(leftovers(o.modelsDir!)).toEqual([]);
  });

  const downloadFailures: [string, string, string][] = [
    ['HTTP 404', '/nothing-here.zip', 'HTTP 404'],
    ['a redirect loop', '/loop.zip', 'more than 5 redirects'],
    ['a body cut short', '/short.zip', `after 1000 of ${goodZip.length} bytes`],
  ];
  for (const [what, route, reason] of downloadFailures) {
    it(`${what} is FACEOPT_ERR_DOWNLOAD and leaves nothing behind`, async () => {
      const o = opts({ url: `${server.url}${route}` });
      const got = await codeOf(fetchPack('tinypack', o));
      expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
      expect(got.message).toContain(reason);
      expect(leftovers(o.modelsDir!)).toEqual([]);
    });
  }

  it('an unreachable host fails fast with FACEOPT_ERR_DOWNLOAD saying where to put the files by hand', async () => {
    const port = await closedPort();
    const o = opts({ url: `http://127.0.0.1:${port}/buffalo_l.zip` });
    const t0 = performance.now();
    const got = await codeOf(fetchPack('tinypack', o));
    const ms = performance.now() - t0;
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(got.message).toContain('refused');
    expect(got.message).toContain(path.join(o.modelsDir!, 'tinypack'));
    expect(got.message).toContain('models/README.md');
    expect(ms).toBeLessThan(3000);
    expect(leftovers(o.modelsDir!)).toEqual([]);
  });

  it('a server that never answers hits the connect deadline', async () => {
    const o = opts({ url: `${server.url}/stall.zip`, connectTimeoutMs: 300 });
    const t0 = performance.now();
    const got = await codeOf(fetchPack('tinypack', o));
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(got.message).toContain('within 0.3 s');
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('a host name that does not resolve is FACEOPT_ERR_DOWNLOAD', async () => {
    const got = await codeOf(fetchPack('tinypack', opts({ url: 'http://faceopt-no-such-host.invalid/x.zip', connectTimeoutMs: 5000 })));
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(got.message).toMatch(/not found \(DNS\)|DNS lookup|within 5 s/);
  });

  it('an unknown pack is FACEOPT_ERR_UNKNOWN_PACK before any download', async () => {
    const before = server.hits.length;
    const got = await codeOf(fetchPack('buffalo_xl', opts()));
    expect(got.code).toBe('FACEOPT_ERR_UNKNOWN_PACK');
    expect(got.message).toContain('tinypack');
    expect(server.hits.length).toBe(before);
  });
});
