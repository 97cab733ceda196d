/**
 * Every endpoint and every error code through inject, over the synthetic backend (real sharp decoding,
 * fake faces): shapes of the answers, options, auth, limits, content types, readiness, internal errors
 * without stack traces, and the coded JSON body of each failure.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaceoptApp } from '../../server/app.js';
import { FaceoptError } from '../../pipeline/errors.js';
import { FakeBackend, fakeApp, multipart, solidImage } from './helpers.js';
import { AggregatorRegistry } from 'prom-client';
import { createMetrics } from '../../server/metrics.js';
import { withClusterAggregators } from '../../server/cluster.js';

let app: FaceoptApp;
let red: Buffer;
let black: Buffer;

beforeAll(async () => {
  ({ app } = await fakeApp({ bodyLimit: 64 * 1024, maxImagesPerRequest: 3 }));
  red = await solidImage([200, 30, 30]);
  black = await solidImage([0, 0, 0]);
});
afterAll(async () => { await app?.close(); });

function errorOf(res: { json: () => unknown }): { code: string; message: string } {
  return (res.json() as { error: { code: string; message: string } }).error;
}

describe('service routes', () => {
  it('GET /health and /ready answer 200 once warm', async () => {
    const h = await app.inject({ url: '/health' });
    expect(h.statusCode).toBe(200);
    expect(h.json()).toMatchObject({ status: 'ok', pid: process.pid });
    const r = await app.inject({ url: '/ready' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ status: 'ready', models: 'fakefakefakefake' });
  });

  it('GET /v1/models names both models, verdicts, threshold and limits', async () => {
    const res = await app.inject({ url: '/v1/models' });
    expect(res.statusCode).toBe(200);
    const m = res.json();
    expect(m.detector).toMatchObject({ variant: 'fake', file: 'detector.onnx', sha256: 'd'.repeat(64), verdict: 'unverified', inputSize: [640, 640] });
    expect(m.recognizer).toMatchObject({ verdict: 'unverified', inputSize: [112, 112] });
    expect(m.matchThreshold).toEqual({ value: 0.99, source: 'default' });
    expect(m.limits).toMatchObject({ bodyLimit: 64 * 1024, maxImagesPerRequest: 3 });
    expect(m.inference).toMatchObject({ lanes: 1, workers: 1, inferenceThread: true });
    expect(m.inference).toHaveProperty('latencyLaneThreads');
    expect(m.inference.threadsPerLane).toBeGreaterThanOrEqual(1);
  });

  it('GET /metrics is Prometheus text with request, model and cache metrics', async () => {
    await app.inject({ url: '/health' });
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toMatch(/faceopt_http_requests_total\{route="\/health",method="GET",status="200"\} \d+/);
    expect(res.body).toContain('faceopt_model_info{role="recognizer",variant="fake"');
    expect(res.body).toContain('faceopt_ready 1');
    expect(res.body).toContain('faceopt_process_resident_memory_bytes');
    // counters with known label values read 0 before their first event (they had no sample: "no data")
    const fresh = await createMetrics({ defaults: false }).registry.metrics();
    for (const reason of ['overloaded', 'not_ready', 'unauthorized', 'shutting_down', 'timeout']) expect(fresh).toMatch(new RegExp(`^faceopt_requests_rejected_total\\{reason="${reason}"\\} 0$`, 'm'));
    for (const outcome of ['died', 'restarted', 'failed']) expect(fresh).toMatch(new RegExp(`^faceopt_inference_threads_total\\{outcome="${outcome}"\\} 0$`, 'm'));
    for (const reason of ['overloaded', 'not_ready', 'unauthorized', 'shutting_down', 'timeout']) expect(res.body).toMatch(new RegExp(`^faceopt_requests_rejected_total\\{reason="${reason}"\\} \\d+$`, 'm'));
  });

  it('with --workers, the summed metrics keep one process\'s file descriptor limit (it was summed: 2 x 20000)', async () => {
    const workers = [createMetrics(), createMetrics()];
    const answers = await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON()));
    const one = Number(/^faceopt_process_max_fds (\d+)$/m.exec(await workers[0]!.registry.metrics())?.[1]);
    expect(one).toBeGreaterThan(0);
    const text = await AggregatorRegistry.aggregate(answers.map(withClusterAggregators)).metrics();
    expect(Number(/^faceopt_process_max_fds (\d+)$/m.exec(text)?.[1])).toBe(one);
    expect(Number(/^faceopt_process_max_fds (\d+)$/m.exec(await AggregatorRegistry.aggregate(answers).metrics())?.[1])).toBe(2 * one); // prom-client's default
  });
});

describe('face routes', () => {
  it('POST /embed (multipart `file`) answers exactly {embedding}', async () => {
    const res = await app.inject({ method: 'POST', url: '/embed', ...(await multipart([{ name: 'file', data: red }])) });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body)).toEqual(['embedding']);
    expect(body.embedding).toHaveLength(4);
    expect(Math.hypot(...body.embedding)).toBeCloseTo(1, 6);
    expect(body.embedding[0]).toBeGreaterThan(body.embedding[1]); // red dominates
  });

  it('POST /v1/embed: raw image body, base64 JSON and multipart give the same face', async () => {
    const a = await app.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg' } });
    const b = await app.inject({ method: 'POST', url: '/v1/embed', payload: { image: red.toString('base64') } });
    const c = await app.inject({ method: 'POST', url: '/v1/embed', ...(await multipart([{ name: 'image', data: red }])) });
    for (const r of [a, b, c]) expect(r.statusCode).toBe(200);
    expect(a.json()).toMatchObject({ box: [16, 16, 48, 48], score: 0.9, dim: 4 });
    expect(b.json().embedding).toEqual(a.json().embedding);
    expect(c.json().embedding).toEqual(a.json().embedding);
    expect(a.json().kps).toHaveLength(5);
  });

  it('embed_only skips detection: a black crop still embeds', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/embed?embed_only=true', payload: black, headers: { 'content-type': 'image/jpeg' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ box: [0, 0, 64, 64], score: null, kps: null, dim: 4 });
  });

  it('POST /v1/detect: boxes without embeddings; threshold and min_face_size apply', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/detect', payload: red, headers: { 'content-type': 'image/jpeg' } });
    expect(res.json()).toEqual({ width: 64, height: 64, faces: [expect.objectContaining({ box: [16, 16, 48, 48], score: 0.9 })] });
    expect(res.json().faces[0].embedding).toBeUndefined();
    const strict = await app.inject({ method: 'POST', url: '/v1/detect?threshold=0.95', payload: red, headers: { 'content-type': 'image/jpeg' } });
    expect(strict.json().faces).toEqual([]);
    const big = await app.inject({ method: 'POST', url: '/v1/detect?min_face_size=40', payload: red, headers: { 'content-type': 'image/jpeg' } });
    expect(big.json().faces).toEqual([]);
  });

  it('POST /v1/verify: same colour -> same, different colour -> different, at the served threshold', async () => {
    const blue = await solidImage([30, 30, 200]);
    const same = await app.inject({ method: 'POST', url: '/v1/verify', payload: { a: red.toString('base64'), b: red.toString('base64') } });
    expect(same.statusCode).toBe(200);
    expect(same.json()).toMatchObject({ same: true, threshold: 0.99, thresholdSource: 'default' });
    expect(same.json().cosine).toBeCloseTo(1, 5);
    const diff = await app.inject({ method: 'POST', url: '/v1/verify', ...(await multipart([{ name: 'a', data: red }, { name: 'b', data: blue }])) });
    expect(diff.json().same).toBe(false);
    expect(diff.json().cosine).toBeLessThan(0.9);
    expect(diff.json().a.embedding).toBeUndefined();
    // its cache header: miss, then partial (one of the two cached, as /v1/extract says it; it said miss), then hit
    const [g, y, m] = await Promise.all([[20, 200, 20], [200, 200, 20], [200, 20, 200]].map((c) => solidImage(c as [number, number, number])));
    const verify = async (a: Buffer, b: Buffer) => (await app.inject({ method: 'POST', url: '/v1/verify', payload: { a: a.toString('base64'), b: b.toString('base64') } })).headers['x-faceopt-cache'];
    expect(await verify(g, m)).toBe('miss');
    expect(await verify(g, y)).toBe('partial');
    expect(await verify(y, m)).toBe('hit');
  });

  it('POST /v1/extract: InsightFace-REST JSON, per-image status, a bad image does not fail the batch', async () => {
    const res = await app.inject({
      method: 'POST', url: '/v1/extract',
      payload: { images: { data: [red.toString('base64'), black.toString('base64'), Buffer.from('not an image').toString('base64')] }, extract_embedding: true },
    });
    expect(res.statusCode, res.body).toBe(200);
    const imgs = res.json().images;
    expect(imgs, res.body).toHaveLength(3);
    expect(imgs[0]).toMatchObject({ status: 'ok', width: 64, height: 64 });
    expect(imgs[0].faces[0].embedding).toHaveLength(4);
    expect(imgs[0].faces[0].norm).toBeGreaterThan(0);
    expect(imgs[1]).toMatchObject({ status: 'ok', faces: [] });
    expect(imgs[2]).toMatchObject({ status: 'error', error: { code: 'FACEOPT_ERR_BAD_IMAGE' } });
    // a string that is not base64 is that image's error too (it used to fail the batch)
    const mixed = await app.inject({ method: 'POST', url: '/v1/extract', payload: { images: [red.toString('base64'), '!!not base64'] } });
    expect(mixed.statusCode, mixed.body).toBe(200);
    expect(mixed.json().images[0]).toMatchObject({ status: 'ok', width: 64, height: 64 });
    expect(mixed.json().images[1]).toEqual({ status: 'error', error: { code: 'FACEOPT_ERR_BAD_ARGUMENT', message: 'Expected a base64 string for images[1] but received characters outside base64.' } });
    // a list item that is not a string, or an empty one, is its own error in both JSON forms (the list form
    // refused the whole request with a schema message)
    for (const images of [[5, red.toString('base64'), ''], { data: [5, red.toString('base64'), ''] }]) {
      const odd = await app.inject({ method: 'POST', url: '/v1/extract', payload: { images } });
      expect(odd.statusCode, odd.body).toBe(200);
      const [n, ok, empty] = odd.json().images;
      expect(n).toEqual({ status: 'error', error: { code: 'FACEOPT_ERR_BAD_ARGUMENT', message: 'Expected a base64 string for images[0] but received number.' } });
      expect(ok).toMatchObject({ status: 'ok', width: 64, height: 64 });
      expect(empty).toMatchObject({ status: 'error', error: { code: expect.stringMatching(/^FACEOPT_ERR_/) } });
    }
    // every image bad: the request fails with the first one's error
    const none = await app.inject({ method: 'POST', url: '/v1/extract', payload: { images: ['%%', '??'] } });
    expect(none.statusCode).toBe(400);
    expect(none.json().error.message).toBe('Expected a base64 string for images[0] but received characters outside base64.');
  });

  it('POST /v1/extract: multipart files, limit_faces and extract_embedding=false as form fields', async () => {
    const res = await app.inject({
      method: 'POST', url: '/v1/extract',
      ...(await multipart([{ name: 'file', data: red }, { name: 'file', data: red }, { name: 'extract_embedding', data: 'false' }, { name: 'limit_faces', data: '1' }])),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().images.map((i: { faces: unknown[] }) => i.faces.length)).toEqual([1, 1]);
    expect(res.json().images[0].faces[0].embedding).toBeUndefined();
  });
});

describe('options: each route takes its own, from any channel, strictly', () => {
  const jpeg = (url: string) => ({ method: 'POST' as const, url, payload: red, headers: { 'content-type': 'image/jpeg' } });
  const messageOf = async (o: InjectOptions) => { const r = await app.inject(o); expect(r.statusCode, r.body).toBe(400); return errorOf(r).message; };

  it('an option a route would ignore is refused: embed_only on /v1/detect, limit_faces on /v1/embed', async () => {
    expect(await messageOf(jpeg('/v1/detect?embed_only=true'))).toMatch(/query parameter "embed_only"/);
    expect(await messageOf(jpeg('/v1/embed?limit_faces=1'))).toMatch(/query parameter "limit_faces"/);
    expect(await messageOf({ method: 'POST', url: '/v1/verify', payload: { a: red.toString('base64'), b: red.toString('base64'), limit_faces: 1 } })).toMatch(/body field "limit_faces"/);
    expect(await messageOf({ method: 'POST', url: '/v1/extract?embed_only=true&extract_embedding=false', payload: { images: [red.toString('base64')] } })).toMatch(/^Expected embed_only without extract_embedding=false/);
  });

  it('an option in the query string and in the body is refused, whichever value (the body\'s won without a word)', async () => {
    const form = { method: 'POST' as const, url: '/v1/detect?threshold=0.9', ...(await multipart([{ name: 'file', data: red }, { name: 'threshold', data: '0.5' }])) };
    expect(await messageOf(form)).toBe('Expected each option once (in the query string or in the body, not both) for option threshold but received it as a query parameter and as a form field.');
    expect(await messageOf({ method: 'POST', url: '/v1/detect?threshold=0.5', payload: { image: red.toString('base64'), threshold: 0.5 } })).toMatch(/as a query parameter and as a body field\.$/);
  });

  it('form fields: a misspelt, repeated or overlong option is refused, as in the query string', async () => {
    const form = async (fields: [string, string][]) => ({ method: 'POST' as const, url: '/v1/detect', ...(await multipart([{ name: 'file', data: red }, ...fields.map(([name, data]) => ({ name, data }))])) });
    expect(await messageOf(await form([['treshold', '0.88']]))).toBe('Expected only the options this route takes (threshold, limit_faces, min_face_size; docs/server.md) for form field "treshold" but received 0.88.');
    expect(await messageOf(await form([['threshold', '0.1'], ['threshold', '0.88']]))).toBe('Expected one value for form field threshold but received it twice.');
    expect(await messageOf(await form([['threshold', `${'0'.repeat(4100)}.95`]]))).toBe('Expected a value of at most 4096 bytes for form field threshold but received a longer one.');
    expect(await messageOf(await form([['threshold', '0x1']]))).toMatch(/^Expected number between 0.05 and 1 for form field threshold but received 0x1/);
    const ok = await app.inject(await form([['threshold', '0.95']]));
    expect(ok.json().faces).toEqual([]); // the synthetic face scores 0.9
  });

  it('no face because of min_face_size: the 422 says so', async () => {
    const r = await app.inject(jpeg('/v1/embed?min_face_size=40'));
    expect(r.statusCode).toBe(422);
    expect(errorOf(r).message).toMatch(/^No face found in body \(score threshold 0\.5, faces under 40 px dropped by min_face_size\)/);
  });

  it('booleans are true or false in every channel; a threshold under 0.05 is refused', async () => {
    expect(await messageOf({ method: 'POST', url: '/v1/extract', ...(await multipart([{ name: 'file', data: red }, { name: 'embed_only', data: 'yes' }])) })).toMatch(/^Expected true or false for form field embed_only but received yes/);
    expect(await messageOf(jpeg('/v1/embed?embed_only=1'))).toMatch(/^Expected true or false for query parameter embed_only/);
    expect(await messageOf(jpeg('/v1/detect?threshold=0'))).toBe('Expected number between 0.05 and 1 for query parameter threshold but received 0.');
  });

  it('/v1/verify: "a" and "b" are the images sent under those names; a mix of names is refused', async () => {
    const blue = await solidImage([30, 30, 200]);
    const swapped = await app.inject({ method: 'POST', url: '/v1/verify', ...(await multipart([{ name: 'b', data: blue, filename: 'blue.jpg' }, { name: 'a', data: red, filename: 'red.jpg' }])) });
    expect(swapped.statusCode, swapped.body).toBe(200);
    const direct = await app.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg' } });
    expect(swapped.json().a.box).toEqual(direct.json().box);
    expect(await messageOf({ method: 'POST', url: '/v1/verify', ...(await multipart([{ name: 'b', data: blue }, { name: 'file', data: red }])) })).toBe('Expected images "a" and "b", or two "file" parts for multipart files but received "b" and "file".');
    expect(await messageOf({ method: 'POST', url: '/v1/verify', ...(await multipart([{ name: 'a', data: blue }, { name: 'a', data: red }])) })).toMatch(/received "a" and "a"/);
  });

  it('/v1/extract: InsightFace-REST fields are taken; those asking for what is not returned are refused when true', async () => {
    const rest = { images: { data: [red.toString('base64')] }, threshold: 0.6, return_landmarks: true, verbose_timings: false, api_ver: '2', return_face_data: false, extract_ga: false, msgpack: false };
    const res = await app.inject({ method: 'POST', url: '/v1/extract', payload: rest });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['x-faceopt-cache']).toBe('miss');
    expect((await app.inject({ method: 'POST', url: '/v1/extract', payload: rest })).headers['x-faceopt-cache']).toBe('hit');
    expect(await messageOf({ method: 'POST', url: '/v1/extract', payload: { ...rest, extract_ga: true } })).toMatch(/^Expected false or nothing .* for body field extract_ga but received true/);
  });
});

describe('URLs and methods', () => {
  it('a known endpoint with the wrong method -> 405 naming the method it takes, with Allow', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/embed' });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('POST');
    expect(errorOf(r)).toEqual({ code: 'FACEOPT_ERR_METHOD_NOT_ALLOWED', message: '/v1/embed does not take GET. Use POST.' });
    const post = await app.inject({ method: 'POST', url: '/health' });
    expect(post.statusCode).toBe(405);
    // Allow lists every method the URL takes: HEAD too where GET is (RFC 9110 10.2.1)
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await app.inject({ method: 'HEAD', url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/nothing' })).statusCode).toBe(404);
  });

  it('a URL that is not valid percent-encoding -> 400 with the coded body, counted in the metrics like any answer', async () => {
    const metrics = async () => (await app.inject({ url: '/metrics' })).body;
    const count = (text: string) => Number(/^faceopt_http_requests_total\{route="unmatched",method="GET",status="400"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    const timed = (text: string) => Number(/^faceopt_http_request_duration_seconds_count\{route="unmatched",method="GET",status="400"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    const before = await metrics();
    const r = await app.inject({ method: 'GET', url: '/%zz' });
    expect(r.statusCode).toBe(400);
    expect(errorOf(r).code).toBe('FACEOPT_ERR_BAD_HTTP');
    const after = await metrics();
    expect(count(after)).toBe(count(before) + 1); // it was neither counted nor logged
    expect(timed(after)).toBe(timed(before)); // no start time to measure from: not recorded as a 0 s latency
  });
});

describe('error codes', () => {
  const cases: [string, () => Promise<InjectOptions>, number, string][] = [
    ['truncated JPEG -> 400', async () => ({ url: '/embed', method: 'POST', ...(await multipart([{ name: 'file', data: red.subarray(0, 200) }])) }), 400, 'FACEOPT_ERR_BAD_IMAGE'],
    ['random bytes declared image/jpeg -> 400', async () => ({ url: '/v1/embed', method: 'POST', payload: Buffer.from('hello world, not a jpeg'), headers: { 'content-type': 'image/jpeg' } }), 400, 'FACEOPT_ERR_BAD_IMAGE'],
    ['missing file field -> 400', async () => ({ url: '/embed', method: 'POST', ...(await multipart([{ name: 'other', data: red }])) }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['no file at all -> 400', async () => ({ url: '/embed', method: 'POST', ...(await multipart([{ name: 'threshold', data: '0.5' }])) }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['unknown query option -> 400', async () => ({ url: '/v1/embed?treshold=0.5', method: 'POST', payload: red, headers: { 'content-type': 'image/jpeg' } }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['threshold out of range -> 400', async () => ({ url: '/v1/detect?threshold=7', method: 'POST', payload: red, headers: { 'content-type': 'image/jpeg' } }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['bad form option -> 400', async () => ({ url: '/v1/extract', method: 'POST', ...(await multipart([{ name: 'file', data: red }, { name: 'embed_only', data: 'maybe' }])) }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['bad base64 -> 400', async () => ({ url: '/v1/embed', method: 'POST', payload: { image: '!!!not base64!!!' } }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['JSON without image -> 400', async () => ({ url: '/v1/embed', method: 'POST', payload: { picture: 'x' } }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['malformed JSON -> 400', async () => ({ url: '/v1/embed', method: 'POST', payload: '{"image": ', headers: { 'content-type': 'application/json' } }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['verify with one image -> 400', async () => ({ url: '/v1/verify', method: 'POST', ...(await multipart([{ name: 'a', data: red }])) }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['too many extract images -> 400', async () => ({ url: '/v1/extract', method: 'POST', ...(await multipart([1, 2, 3, 4].map(() => ({ name: 'file', data: red })))) }), 400, 'FACEOPT_ERR_BAD_ARGUMENT'],
    ['unknown route -> 404', async () => ({ url: '/v2/nothing' }), 404, 'FACEOPT_ERR_ROUTE_NOT_FOUND'],
    ['wrong method -> 405', async () => ({ url: '/embed', method: 'GET' }), 405, 'FACEOPT_ERR_METHOD_NOT_ALLOWED'],
    ['raw body over the limit -> 413', async () => ({ url: '/v1/embed', method: 'POST', payload: Buffer.concat([red, Buffer.alloc(70 * 1024)]), headers: { 'content-type': 'image/jpeg' } }), 413, 'FACEOPT_ERR_PAYLOAD_TOO_LARGE'],
    ['multipart file over the limit -> 413', async () => ({ url: '/embed', method: 'POST', ...(await multipart([{ name: 'file', data: Buffer.concat([red, Buffer.alloc(70 * 1024)]) }])) }), 413, 'FACEOPT_ERR_PAYLOAD_TOO_LARGE'],
    ['text/plain -> 415', async () => ({ url: '/embed', method: 'POST', payload: 'hello', headers: { 'content-type': 'text/plain' } }), 415, 'FACEOPT_ERR_UNSUPPORTED_MEDIA'],
    ['GIF bytes -> 415', async () => ({ url: '/v1/embed', method: 'POST', payload: Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'), headers: { 'content-type': 'application/octet-stream' } }), 415, 'FACEOPT_ERR_UNSUPPORTED_MEDIA'],
    ['multipart part declared application/pdf -> 415', async () => ({ url: '/embed', method: 'POST', ...(await multipart([{ name: 'file', data: red, type: 'application/pdf', filename: 'x.pdf' }])) }), 415, 'FACEOPT_ERR_UNSUPPORTED_MEDIA'],
    ['black photo -> 422 no face', async () => ({ url: '/embed', method: 'POST', ...(await multipart([{ name: 'file', data: black }])) }), 422, 'FACEOPT_ERR_NO_FACE'],
  ];
  it('image/jpg and image/pjpeg (common misnamings) are read as images, raw and in multipart', async () => {
    for (const type of ['image/jpg', 'image/pjpeg']) {
      const expected = await app.inject({ url: '/v1/detect', method: 'POST', payload: red, headers: { 'content-type': 'image/jpeg' } });
      const raw = await app.inject({ url: '/v1/detect', method: 'POST', payload: red, headers: { 'content-type': type } });
      const part = await app.inject({ url: '/v1/detect', method: 'POST', ...(await multipart([{ name: 'file', data: red, type, filename: 'x.jpg' }])) });
      expect(expected.statusCode).toBe(200);
      expect([raw.statusCode, part.statusCode], type).toEqual([200, 200]);
      expect(raw.json().faces, type).toEqual(expected.json().faces);
    }
  });
  for (const [name, make, status, code] of cases) {
    it(name, async () => {
      const res = await app.inject(await make());
      expect(res.statusCode).toBe(status);
      expect(errorOf(res).code).toBe(code);
      expect(errorOf(res).message.length).toBeGreaterThan(10);
      expect(res.body).not.toMatch(/\bat .*\.(js|ts):\d+/); // no stack frames
    });
  }

  it('schema failures name the parameter, what it must be and what came, without walking a deep body', async () => {
    const messageOf = async (o: InjectOptions) => errorOf(await app.inject(o)).message;
    const jpeg = { method: 'POST' as const, payload: red, headers: { 'content-type': 'image/jpeg' } };
    expect(await messageOf({ url: '/v1/detect?threshold=7', ...jpeg })).toBe('Expected number between 0.05 and 1 for query parameter threshold but received 7.');
    expect(await messageOf({ url: '/v1/detect?min_face_size=abc', ...jpeg })).toBe('Expected number between 0 and 100000 for query parameter min_face_size but received abc.');
    expect(await messageOf({ url: '/v1/embed?treshold=0.5', ...jpeg })).toBe('Expected only the query parameters this route takes (docs/server.md lists them) for query parameter "treshold" but received treshold=0.5.');
    expect(await messageOf({ url: '/v1/extract', method: 'POST', payload: { images: { data: 'x' } } })).toBe('Expected a list of base64 images in images.data for body field images but received images.data that is not a list.');
    expect(await messageOf({ url: '/v1/extract', method: 'POST', payload: { images: { urls: ['http://example.com/a.jpg'] } } })).toBe('Expected base64 images in images.data (the server does not download images by URL) for body field images but received images.urls.');
    expect(await messageOf({ url: '/v1/extract', method: 'POST', payload: { images: { data: [] } } })).toBe('Expected at least one base64 image in images.data for body field images but received an empty list.');
    // JSON says what it means: no coercion of null, numbers or booleans in bodies
    expect(await messageOf({ url: '/v1/detect', method: 'POST', payload: { image: red.toString('base64'), threshold: null } })).toBe('Expected a number for body field threshold but received null.');
    expect(await messageOf({ url: '/v1/detect', method: 'POST', payload: { image: 5 } })).toBe('Expected text for body field image but received 5.');
    expect(await messageOf({ url: '/v1/embed', method: 'POST', payload: { image: red.toString('base64'), embed_only: 1 } })).toBe('Expected true or false for body field embed_only but received 1.');
    const deep = `{"images":[${'['.repeat(5000)}"x"${']'.repeat(5000)}]}`; // 5000 levels of lists
    const res = await app.inject({ url: '/v1/extract', method: 'POST', payload: deep, headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).message).toBe('Expected a base64 string for images[0] but received object.'); // never walked in depth
  });

  it('413 for an image over the pixel limit, decided from the header', async () => {
    const { app: small } = await fakeApp({}, new FakeBackend({ maxPixels: 1000 }));
    try {
      const res = await small.inject({ method: 'POST', url: '/embed', ...(await multipart([{ name: 'file', data: red }])) });
      expect(res.statusCode).toBe(413);
      expect(errorOf(res).code).toBe('FACEOPT_ERR_IMAGE_TOO_LARGE');
    } finally {
      await small.close();
    }
  });

  it('401 without or with a wrong API key; probes stay open; the right key passes', async () => {
    const { app: locked } = await fakeApp({ apiKey: 'secret-key-123' });
    try {
      const none = await locked.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg' } });
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer');
      expect(errorOf(none).code).toBe('FACEOPT_ERR_UNAUTHORIZED');
      const wrong = await locked.inject({ url: '/v1/models', headers: { authorization: 'Bearer nope-nope-nope' } });
      expect(wrong.statusCode).toBe(401);
      expect((await locked.inject({ url: '/health' })).statusCode).toBe(200);
      expect((await locked.inject({ url: '/ready' })).statusCode).toBe(200);
      const ok = await locked.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg', authorization: 'Bearer secret-key-123' } });
      expect(ok.statusCode).toBe(200);
      const metrics = await locked.inject({ url: '/metrics', headers: { authorization: 'Bearer secret-key-123' } });
      expect(metrics.body).toMatch(/faceopt_requests_rejected_total\{reason="unauthorized"\} 2/);
    } finally {
      await locked.close();
    }
  });

  it('503 NOT_READY (with Retry-After) until models are warm, then 200', async () => {
    const { app: slow } = await fakeApp({}, new FakeBackend({ warmDelayMs: 300 }), false);
    try {
      const early = await slow.inject({ url: '/ready' });
      expect(early.statusCode).toBe(503);
      expect(errorOf(early).code).toBe('FACEOPT_ERR_NOT_READY');
      expect(errorOf(early).message).toBe('Not ready: the models are still loading. Retry shortly.');
      expect(early.headers['retry-after']).toBe('1');
      const embed = await slow.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg' } });
      expect(embed.statusCode).toBe(503);
      expect((await slow.inject({ url: '/health' })).statusCode).toBe(200); // alive while loading
      await slow.faceoptReady;
      expect((await slow.inject({ url: '/ready' })).statusCode).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('/ready answers 503 NOT_READY while every inference thread is dead and restarting, 200 again once one is back; the metrics tell', async () => {
    const { app: served, fake } = await fakeApp();
    try {
      expect((await served.inject({ url: '/ready' })).statusCode).toBe(200);
      fake.healthy = false;
      fake.laneEvents.died!(0, 'the inference thread exited (code 1)');
      const down = await served.inject({ url: '/ready' });
      expect(down.statusCode).toBe(503);
      expect(errorOf(down).code).toBe('FACEOPT_ERR_NOT_READY');
      // not "still loading": the models loaded, the threads running them stopped
      expect(errorOf(down).message).toBe('Not ready: no inference thread is running (the stopped ones are being restarted). Retry shortly.');
      expect((await served.inject({ url: '/health' })).statusCode).toBe(200); // alive all the same
      let metrics = (await served.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/^faceopt_ready 0$/m);
      expect(metrics).toMatch(/^faceopt_inference_threads_total\{outcome="died"\} 1$/m);
      fake.laneEvents.restartFailed!(0, new Error('cannot load'), 1000);
      fake.healthy = true;
      fake.laneEvents.restarted!(0, 850);
      expect((await served.inject({ url: '/ready' })).statusCode).toBe(200);
      metrics = (await served.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/^faceopt_ready 1$/m);
      expect(metrics).toMatch(/^faceopt_inference_threads_total\{outcome="restarted"\} 1$/m);
      expect(metrics).toMatch(/^faceopt_inference_threads_total\{outcome="failed"\} 1$/m);
    } finally {
      await served.close();
    }
  });

  it('503 TIMEOUT (with Retry-After, as every retryable 503) when a request outlives its deadline', async () => {
    const { app: slow } = await fakeApp({ timeoutMs: 100 }, new FakeBackend({ embedDelayMs: 400 }));
    try {
      const res = await slow.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg' } });
      expect(res.statusCode).toBe(503);
      expect(errorOf(res).code).toBe('FACEOPT_ERR_TIMEOUT');
      expect(res.headers['retry-after']).toBe('1'); // only OVERLOADED, NOT_READY and SHUTTING_DOWN had it before
    } finally {
      await slow.close();
    }
  });

  it('500 INFERENCE when a model run fails (its coded message, no stack), and the next request is served', async () => {
    const fake = new FakeBackend({ embedError: new FaceoptError('FACEOPT_ERR_INFERENCE', { model: '(inference thread)', reason: 'the inference thread exited (code 1)' }) });
    const { app: failing } = await fakeApp({}, fake);
    try {
      const res = await failing.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg' } });
      expect(res.statusCode).toBe(500);
      expect(errorOf(res).code).toBe('FACEOPT_ERR_INFERENCE');
      expect(errorOf(res).message).toContain('the inference thread exited (code 1)');
      expect(res.body).not.toMatch(/\.(js|ts):\d+/);
      delete fake.opts.embedError;
      const ok = await failing.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg' } });
      expect(ok.statusCode).toBe(200);
    } finally {
      await failing.close();
    }
  });

  it('500 INTERNAL for an unexpected failure: no stack, no internal message, a request id to look up', async () => {
    const { app: broken } = await fakeApp({}, new FakeBackend({ failEmbed: true }));
    try {
      const res = await broken.inject({ method: 'POST', url: '/v1/embed', payload: red, headers: { 'content-type': 'image/jpeg', 'x-request-id': 'abc-123' } });
      expect(res.statusCode).toBe(500);
      expect(errorOf(res).code).toBe('FACEOPT_ERR_INTERNAL');
      expect(errorOf(res).message).toContain('abc-123');
      expect(res.body).not.toContain('secret stack');
      expect(res.body).not.toMatch(/\.(js|ts):\d+/);
    } finally {
      await broken.close();
    }
  });

  it('close() releases the backend', async () => {
    const { app: a, fake } = await fakeApp();
    await a.close();
    expect(fake.released).toBe(true);
  });
});
