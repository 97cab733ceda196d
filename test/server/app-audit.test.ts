/**
 * The app factory and the routes, where a mutation audit of the request layer found them unchecked: the
 * API key's scheme is case-insensitive, metrics name the route pattern (never the raw URL), a declared
 * identity encoding is taken in any case, 100 Continue at exactly the body limit and never for HTTP/1.0,
 * a 405 for a URL with a query string, `Connection: close` on answers given while closing, a timeout
 * counted in the metrics, the model-info verdict label, the start-up warning of a report note,
 * /v1/models while loading, /health's uptime, /v1/extract's cache header and failed model runs, and
 * /v1/verify's strict threshold, cache header and two `file` parts. Synthetic backend
 * (test/server/helpers.ts).
 */
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FaceoptError } from '../../pipeline/errors.js';
import { cosineSimilarity } from '../../pipeline/faces/similarity.js';
import { buildApp, inferenceLayout, type FaceoptApp } from '../../server/app.js';
import { resolveServerConfig } from '../../server/config.js';
import { FakeBackend, fakeApp, fakeModels, listenLoopback, multipart, solidImage, waitFor } from './helpers.js';

const apps: FaceoptApp[] = [];
afterEach(async () => { await Promise.all(apps.splice(0).map((a) => a.close())); });

async function served(...args: Parameters<typeof fakeApp>): Promise<FaceoptApp> {
  const { app } = await fakeApp(...args);
  apps.push(app);
  return app;
}

const jpeg = (url: string, payload: Buffer, headers: Record<string, string> = {}) => ({ method: 'POST' as const, url, payload, headers: { 'content-type': 'image/jpeg', ...headers } });

/** Write `head` (and nothing else) on a fresh connection; resolves with what came back once it has a status line, or after `ms`. */
function rawRequest(port: number, head: string, ms = 5000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = net.connect(port, '127.0.0.1', () => s.write(head));
    const done = () => { clearTimeout(timer); s.destroy(); resolve(got); };
    s.on('data', (d) => { got += d.toString('latin1'); if (got.includes('\r\n')) done(); });
    s.on('error', () => undefined);
    const timer = setTimeout(done, ms);
  });
}

describe('hooks', () => {
  it('the API key\'s "Bearer" scheme is taken in any case (RFC 9110: schemes are case-insensitive)', async () => {
    const app = await served({ apiKey: 'open-sesame' });
    const red = await solidImage([200, 30, 30]);
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const r = await app.inject(jpeg('/v1/embed', red, { authorization: `${scheme} open-sesame` }));
      expect(r.statusCode, scheme).toBe(200);
    }
    expect((await app.inject(jpeg('/v1/embed', red, { authorization: 'bearer other' }))).statusCode).toBe(401);
  });

  it('a declared identity Content-Encoding is taken in any case; another is refused', async () => {
    const app = await served();
    const red = await solidImage([200, 30, 30]);
    expect((await app.inject(jpeg('/v1/embed', red, { 'content-encoding': 'Identity' }))).statusCode).toBe(200);
    const gz = await app.inject(jpeg('/v1/embed', red, { 'content-encoding': 'GZIP' }));
    expect(gz.statusCode).toBe(415);
    expect(gz.json().error.code).toBe('FACEOPT_ERR_UNSUPPORTED_ENCODING');
  });

  it('Expect: 100-continue: a body declared at exactly the limit is invited; an HTTP/1.0 client is never sent 100', async () => {
    // a short deadline: the bodies never come, and close() waits out the requests' timeout
    const app = await served({ bodyLimit: 50_000, timeoutMs: 300 });
    const port = await listenLoopback(app);
    const head = (version: string, length: number) => `POST /v1/embed HTTP/${version}\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`;
    expect(await rawRequest(port, head('1.1', 50_000))).toMatch(/^HTTP\/1\.1 100 Continue\r\n/);
    expect(await rawRequest(port, head('1.1', 50_001))).toMatch(/^HTTP\/1\.1 413/);
    // HTTP/1.0 has no 100 Continue: the server waits for the body (nothing comes back meanwhile)
    expect(await rawRequest(port, head('1.0', 1000), 700)).not.toMatch(/100 Continue/);
  });

  it('metrics count a request under its route pattern, never the raw URL with its query', async () => {
    const app = await served();
    expect((await app.inject(jpeg('/v1/detect?threshold=0.5', await solidImage([200, 30, 30])))).statusCode).toBe(200);
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/^faceopt_http_requests_total\{route="\/v1\/detect",method="POST",status="200"\} 1$/m);
    expect(text).not.toContain('threshold=0.5');
  });

  it('a known endpoint called with the wrong method and a query string is still a 405, not a 404', async () => {
    const app = await served();
    const r = await app.inject({ method: 'GET', url: '/v1/detect?threshold=0.5' });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('POST');
    expect(r.json().error.message).toBe('/v1/detect does not take GET. Use POST.');
  });
});

describe('answers while closing and at deadlines', () => {
  it('an answer to a request in flight when closing begins says Connection: close', async () => {
    const app = await served({}, new FakeBackend({ embedDelayMs: 400 }));
    const port = await listenLoopback(app);
    const red = await solidImage([200, 30, 30]);
    let got = '';
    const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from(`POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${red.length}\r\n\r\n`), red])));
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => s.on('close', () => resolve()));
    await waitFor(() => app.faceopt.service.admission.inflight === 1, 5000, 'the request to be admitted');
    const closed = app.close();
    await ended;
    await closed;
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    expect(got.split('\r\n\r\n')[0]).toMatch(/\r\nconnection: close\r\n/i);
  });

  it('a request that outlives its deadline is counted once as a timeout rejection', async () => {
    const app = await served({ timeoutMs: 100 }, new FakeBackend({ embedDelayMs: 400 }));
    const res = await app.inject(jpeg('/v1/embed', await solidImage([200, 30, 30])));
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('FACEOPT_ERR_TIMEOUT');
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/^faceopt_requests_rejected_total\{reason="timeout"\} 1$/m);
  });
});

describe('start-up', () => {
  it('model info says "fail" for a variant served with a failed verdict, and each report note is logged as a warning', async () => {
    const base = fakeModels();
    const models = {
      ...base,
      recognizer: { ...base.recognizer, sizeBytes: 4242, verdict: { pass: false, reasons: ['lfw dropped'] }, reportNote: 'a note about the recognizer report' },
    };
    const lines: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const app = await buildApp({ logLevel: 'warn' }, { models, backend: async () => new FakeBackend(), logStream: stream });
    apps.push(app);
    await app.faceoptReady;
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/^faceopt_model_info\{role="recognizer",[^}]*verdict="fail"[^}]*\} 1$/m);
    expect(text).toMatch(/^faceopt_model_info\{role="detector",[^}]*verdict="unverified"[^}]*\} 1$/m);
    const warned = lines.map((l) => JSON.parse(l) as { level: number; msg: string; role?: string }).find((l) => l.msg === 'a note about the recognizer report');
    expect(warned).toMatchObject({ level: 40, role: 'recognizer' });
    const m = (await app.inject({ url: '/v1/models' })).json();
    expect(m.recognizer).toMatchObject({ file: 'recognizer.onnx', sizeBytes: 4242, verdict: 'fail', reasons: ['lfw dropped'], reportNote: 'a note about the recognizer report' });
  });

  it('the inference layout line says "no batching" for batches of 1 and "memory cache off" when its byte budget is 0', () => {
    const config = resolveServerConfig({ batch: { maxBatch: 1 }, cache: { memoryEntries: 100, memoryBytes: 0 }, inferenceThread: true, lanes: 1, intraOpThreads: 1 });
    const line = inferenceLayout(config);
    expect(line).toContain('; no batching;');
    expect(line).toMatch(/; memory cache off$/);
    const batched = inferenceLayout(resolveServerConfig({ batch: { maxBatch: 8 }, cache: { memoryEntries: 100, memoryBytes: 1000 }, inferenceThread: true, lanes: 2, intraOpThreads: 1 }));
    expect(batched).toContain('2 lanes x 1 thread');
    expect(batched).toContain('batches of at most 8 crops');
    expect(batched).toMatch(/; memory cache 100$/);
  });
});

describe('meta routes', () => {
  it('/v1/models says ready: false while the models load; /health\'s uptime counts from start', async () => {
    const app = await served({}, new FakeBackend({ warmDelayMs: 300 }), false);
    const loading = (await app.inject({ url: '/v1/models' })).json();
    expect(loading.ready).toBe(false);
    expect(loading.inference.lanes).toBe(0);
    expect(loading.cache).toBeDefined();
    const health = (await app.inject({ url: '/health' })).json();
    expect(health.uptimeS).toBeGreaterThanOrEqual(0);
    expect(health.uptimeS).toBeLessThan(600);
    await app.faceoptReady;
    expect((await app.inject({ url: '/v1/models' })).json().ready).toBe(true);
  });
});

describe('/v1/extract', () => {
  it('x-faceopt-cache: miss, then partial when some photos were cached, then hit', async () => {
    const app = await served();
    const [a, b] = await Promise.all([solidImage([200, 30, 30]), solidImage([30, 200, 30])]);
    const extract = async (...imgs: Buffer[]) => (await app.inject({ method: 'POST', url: '/v1/extract', payload: { images: imgs.map((i) => i.toString('base64')) } })).headers['x-faceopt-cache'];
    expect(await extract(a)).toBe('miss');
    expect(await extract(a, b)).toBe('partial');
    expect(await extract(b, a)).toBe('hit');
  });

  it('a failed model run fails the whole request (500), even beside a photo that was answered', async () => {
    const failing = new FaceoptError('FACEOPT_ERR_INFERENCE', { model: '(inference thread)', reason: 'the inference thread exited (code 1)' });
    const app = await served({}, new FakeBackend({ embedError: failing }));
    const [black, red] = await Promise.all([solidImage([0, 0, 0]), solidImage([200, 30, 30])]); // black: no face, nothing to embed
    const r = await app.inject({ method: 'POST', url: '/v1/extract', payload: { images: [black.toString('base64'), red.toString('base64')] } });
    expect(r.statusCode, r.body).toBe(500);
    expect(r.json().error.code).toBe('FACEOPT_ERR_INFERENCE');
  });

  it('refuses an empty list and an images object with other keys than data', async () => {
    const app = await served();
    const red = (await solidImage([200, 30, 30])).toString('base64');
    const empty = await app.inject({ method: 'POST', url: '/v1/extract', payload: { images: [] } });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.message).toBe('Expected at least one base64 image for body field images but received an empty list.');
    const extra = await app.inject({ method: 'POST', url: '/v1/extract', payload: { images: { data: [red], format: 'jpeg' } } });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error.message).toBe('Expected a list of base64 images, or {"data": [...]} for body field images but received images.format.');
  });
});

describe('/v1/verify', () => {
  it('a cosine exactly at the threshold is not a match (strictly above, as the evaluation counts one)', async () => {
    const probe = await served({ cache: { memoryEntries: 0 } });
    const [red, orange] = await Promise.all([solidImage([200, 30, 30]), solidImage([200, 120, 30])]);
    const embedding = async (img: Buffer) => (await probe.inject(jpeg('/v1/embed', img))).json().embedding as number[];
    const at = cosineSimilarity(await embedding(red), await embedding(orange));
    const app = await buildApp({ logLevel: 'silent' }, { models: { ...fakeModels(), matchThreshold: { value: at, source: 'flag' } }, backend: async () => new FakeBackend() });
    apps.push(app);
    await app.faceoptReady;
    const r = await app.inject({ method: 'POST', url: '/v1/verify', payload: { a: red.toString('base64'), b: orange.toString('base64') } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ threshold: at, thresholdSource: 'flag', same: false });
  });

  it('x-faceopt-cache is partial when only b was cached', async () => {
    const app = await served();
    const [red, blue] = await Promise.all([solidImage([200, 30, 30]), solidImage([30, 30, 200])]);
    expect((await app.inject(jpeg('/v1/embed', blue))).headers['x-faceopt-cache']).toBe('miss');
    const r = await app.inject({ method: 'POST', url: '/v1/verify', payload: { a: red.toString('base64'), b: blue.toString('base64') } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['x-faceopt-cache']).toBe('partial');
  });

  it('two "file" parts are a and b in upload order', async () => {
    const app = await served();
    const [red, blue] = await Promise.all([solidImage([200, 30, 30], 64), solidImage([30, 30, 200], 96)]);
    const r = await app.inject({ method: 'POST', url: '/v1/verify', ...(await multipart([{ name: 'file', data: red }, { name: 'file', data: blue }])) });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().a.box).toEqual([16, 16, 48, 48]);
    expect(r.json().b.box).toEqual([24, 24, 72, 72]);
  });
});
