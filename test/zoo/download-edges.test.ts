/**
 * Mutation-audit tests of downloadToFile (pipeline/zoo/download.ts) and of what fetchPack does around it,
 * against a throwaway HTTP server on 127.0.0.1: redirect rules and limit, statuses other than 200,
 * partial files, protocols, the connect and idle deadlines, and the provenance record.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ErrorCode, isFaceoptError } from '../../pipeline/errors.js';
import { downloadToFile } from '../../pipeline/zoo/download.js';
import { FETCH_RECORD, fetchPack, type FetchOptions } from '../../pipeline/zoo/fetch.js';
import { buildZip, sha256, serve, tempDir, testZoo, type TestServer } from './helpers.js';

async function failure(p: Promise<unknown>): Promise<{ code: ErrorCode; message: string }> {
  const e = await p.then(() => null, (err: unknown) => err);
  if (!isFaceoptError(e)) throw new Error(`expected a FaceoptError, got ${String(e)}`);
  return { code: e.code, message: e.message };
}

const body = Buffer.from('model pack bytes '.repeat(400));

describe('downloadToFile', () => {
  let server: TestServer;

  beforeAll(async () => {
    const routes: Parameters<typeof serve>[0] = {
      '/file.bin': (_q, s) => { s.writeHead(200, { 'content-length': body.length }); s.end(body); },
      '/no-location': (_q, s) => { s.writeHead(302); s.end(); },
      '/partial': (_q, s) => { s.writeHead(206, { 'content-length': body.length }); s.end(body); },
      '/no-content': (_q, s) => { s.writeHead(204); s.end(); },
      '/r307': (_q, s) => { s.writeHead(307, { location: '/r308' }); s.end(); },
      '/r308': (_q, s) => { s.writeHead(308, { location: '/file.bin' }); s.end(); },
      '/to-file-url': (_q, s) => { s.writeHead(302, { location: 'file:///etc/passwd' }); s.end(); },
      '/short': (_q, s) => { s.writeHead(200, { 'content-length': body.length }); s.write(body.subarray(0, 100), () => s.socket?.destroy()); },
      // headers at once, the body only after 600 ms: longer than the connect deadline below, shorter than the idle one
      '/slow-body': (_q, s) => { s.writeHead(200, { 'content-length': body.length }); s.flushHeaders(); setTimeout(() => s.end(body), 1500); },
      // headers and a first piece, then nothing
      '/stall-body': (_q, s) => { s.writeHead(200, { 'content-length': body.length }); s.write(body.subarray(0, 10)); },
    };
    // a chain of redirects: /chain/N answers 302 to /chain/N-1, /chain/0 is the file
    for (let n = 1; n <= 7; n++) routes[`/chain/${n}`] = (_q, s) => { s.writeHead(302, { location: `/chain/${n - 1}` }); s.end(); };
    routes['/chain/0'] = routes['/file.bin']!;
    server = await serve(routes);
  });
  afterAll(async () => server.close());

  const dest = () => path.join(tempDir(), 'x.zip.tmp');

  it('follows exactly maxRedirects (5) hops and refuses a sixth', async () => {
    const ok = dest();
    const r = await downloadToFile(`${server.url}/chain/5`, ok);
    expect(r.sha256).toBe(sha256(body));
    expect(r.finalUrl).toBe(`${server.url}/chain/0`);
    const bad = dest();
    const got = await failure(downloadToFile(`${server.url}/chain/6`, bad));
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(got.message).toContain('more than 5 redirects');
    expect(existsSync(bad)).toBe(false);
  });

  it('follows 307 and 308 redirects', async () => {
    const file = dest();
    const r = await downloadToFile(`${server.url}/r307`, file);
    expect(r.finalUrl).toBe(`${server.url}/file.bin`);
    expect(readFileSync(file).equals(body)).toBe(true);
  });

  it('a redirect without a Location header is an HTTP error, not a crash', async () => {
    const got = await failure(downloadToFile(`${server.url}/no-location`, dest()));
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(got.message).toContain('HTTP 302');
  });

  it('only 200 is a download: 206 and 204 are refused and write nothing', async () => {
    for (const [route, status] of [['/partial', 'HTTP 206'], ['/no-content', 'HTTP 204']] as const) {
      const file = dest();
      const got = await failure(downloadToFile(`${server.url}${route}`, file));
      expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
      expect(got.message).toContain(status);
      expect(existsSync(file)).toBe(false);
    }
  });

  it('a body cut short removes the partial file', async () => {
    const file = dest();
    const got = await failure(downloadToFile(`${server.url}/short`, file));
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(got.message).toContain(`of ${body.length} bytes`);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses protocols other than http and https, also as a redirect target', async () => {
    const got = await failure(downloadToFile('ftp://127.0.0.1/x.zip', dest()));
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(got.message).toContain('unsupported protocol ftp:');
    const redirected = await failure(downloadToFile(`${server.url}/to-file-url`, dest()));
    expect(redirected.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(redirected.message).toContain('unsupported protocol file:');
  });

  it('the connect deadline ends once the headers are in: a slow body still arrives', async () => {
    const file = dest();
    const r = await downloadToFile(`${server.url}/slow-body`, file, { connectTimeoutMs: 500, idleTimeoutMs: 10_000 });
    expect(r.bytes).toBe(body.length);
    expect(readFileSync(file).equals(body)).toBe(true);
  });

  it('a body that stops arriving hits the idle deadline and leaves no file', { timeout: 10_000 }, async () => {
    // without the deadline this download never ends (the test's own timeout fails it)
    const file = dest();
    const got = await failure(downloadToFile(`${server.url}/stall-body`, file, { connectTimeoutMs: 5000, idleTimeoutMs: 200 }));
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(got.message).toContain(`stopped after 10 of ${body.length} bytes`);
    expect(existsSync(file)).toBe(false);
  });
});

describe('fetchPack: what it keeps and what it removes', () => {
  const det = Buffer.from('detector '.repeat(3000));
  const rec = Buffer.from('recognizer '.repeat(3000));
  const zip = buildZip([{ name: 'tinypack/' }, { name: 'tinypack/det.onnx', data: det }, { name: 'tinypack/rec.onnx', data: rec }]);
  const files = [{ name: 'det.onnx', data: det, role: 'detector' }, { name: 'rec.onnx', data: rec }];
  let server: TestServer;

  beforeAll(async () => {
    server = await serve({
      '/pack.zip': (_q, s) => { s.writeHead(200, { 'content-length': zip.length }); s.end(zip); },
      '/moved.zip': (_q, s) => { s.writeHead(302, { location: '/pack.zip' }); s.end(); },
      '/longer.zip': (_q, s) => { const b = Buffer.concat([zip, Buffer.alloc(10)]); s.writeHead(200, { 'content-length': b.length }); s.end(b); },
    });
  });
  afterAll(async () => server.close());

  const opts = (extra: Partial<FetchOptions> = {}): FetchOptions => ({
    modelsDir: tempDir(), zoo: testZoo({ url: `${server.url}/pack.zip`, zip, files }), progress: null, ...extra,
  });

  it('records the URL asked for and the one that answered after redirects', async () => {
    const o = opts({ url: `${server.url}/moved.zip` });
    await fetchPack('tinypack', o);
    const record = JSON.parse(readFileSync(path.join(o.modelsDir!, 'tinypack', FETCH_RECORD), 'utf8'));
    expect([record.url, record.finalUrl, record.zipBytes, record.zipSha256]).toEqual([`${server.url}/moved.zip`, `${server.url}/pack.zip`, zip.length, sha256(zip)]);
  });

  it('refetches a present pack whose file was altered without changing its size', async () => {
    const o = opts();
    await fetchPack('tinypack', o);
    const file = path.join(o.modelsDir!, 'tinypack', 'rec.onnx');
    writeFileSync(file, Buffer.from(rec).fill(0x41, 0, 5)); // same size, other bytes
    const r = await fetchPack('tinypack', o);
    expect(r.status).toBe('fetched');
    expect(readFileSync(file).equals(rec)).toBe(true);
  });

  it('refetches a present pack when one file is damaged and the other intact', async () => {
    const o = opts();
    await fetchPack('tinypack', o);
    writeFileSync(path.join(o.modelsDir!, 'tinypack', 'det.onnx'), 'cut');
    expect((await fetchPack('tinypack', o)).status).toBe('fetched');
    expect(readFileSync(path.join(o.modelsDir!, 'tinypack', 'det.onnx')).equals(det)).toBe(true);
  });

  it('a zip of another size is refused on its size when the manifest publishes no sha256', async () => {
    const base = testZoo({ url: `${server.url}/pack.zip`, zip, files });
    const zoo = { ...base, packs: [{ ...base.packs[0]!, zip: { ...base.packs[0]!.zip, sha256: null } }] };
    const o = opts({ zoo, url: `${server.url}/longer.zip` });
    const got = await failure(fetchPack('tinypack', o));
    expect(got.code).toBe('FACEOPT_ERR_CHECKSUM');
    expect(got.message).toContain(`(${zip.length} bytes)`);
    expect(readdirSync(o.modelsDir!)).toEqual([]);
  });

  it('a zip of the published size but another sha256 is refused', async () => {
    const base = testZoo({ url: `${server.url}/pack.zip`, zip, files });
    const zoo = { ...base, packs: [{ ...base.packs[0]!, zip: { ...base.packs[0]!.zip, sha256: 'e'.repeat(64) } }] };
    const o = opts({ zoo });
    const got = await failure(fetchPack('tinypack', o));
    expect(got.code).toBe('FACEOPT_ERR_CHECKSUM');
    expect(got.message).toContain('e'.repeat(64));
    expect(readdirSync(o.modelsDir!)).toEqual([]);
  });

  it('a forced refetch leaves only the new pack folder: the old copy is removed', async () => {
    const o = opts();
    await fetchPack('tinypack', o);
    writeFileSync(path.join(o.modelsDir!, 'tinypack', 'mine.txt'), 'from the old copy');
    expect((await fetchPack('tinypack', { ...o, force: true })).status).toBe('fetched');
    expect(readdirSync(o.modelsDir!)).toEqual(['tinypack']);
    expect(existsSync(path.join(o.modelsDir!, 'tinypack', 'mine.txt'))).toBe(false);
  });

  it('a failed fetch removes the models folders it made, and only those', async () => {
    const root = tempDir();
    mkdirSync(path.join(root, 'kept'));
    const modelsDir = path.join(root, 'kept', 'new', 'models');
    const got = await failure(fetchPack('tinypack', opts({ modelsDir, url: `${server.url}/missing.zip` })));
    expect(got.code).toBe('FACEOPT_ERR_DOWNLOAD');
    expect(readdirSync(root)).toEqual(['kept']);
    expect(readdirSync(path.join(root, 'kept'))).toEqual([]);
  });

  it('a file of the wrong size inside the zip is refused', async () => {
    const other = buildZip([{ name: 'det.onnx', data: det }, { name: 'rec.onnx', data: Buffer.concat([rec, Buffer.from('x')]) }]);
    const s2 = await serve({ '/o.zip': (_q, s) => { s.writeHead(200, { 'content-length': other.length }); s.end(other); } });
    try {
      const o = opts({ zoo: testZoo({ url: `${s2.url}/o.zip`, zip: null, files }) });
      const got = await failure(fetchPack('tinypack', o));
      expect(got.code).toBe('FACEOPT_ERR_CHECKSUM');
      expect(got.message).toContain(`(${rec.length + 1} bytes)`);
      expect(readdirSync(o.modelsDir!)).toEqual([]);
    } finally {
      await s2.close();
    }
  });
});
