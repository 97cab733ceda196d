/**
 * FaceService's handling of the request options and of several faces (a mutation audit found these
 * unchecked; the synthetic backend finds one face per photo): what the detector is asked for, the order
 * faces come back in, which face /v1/embed answers with, which embedding goes with which face, and
 * cache keys that keep options apart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DetectOptions } from '../../pipeline/faces/scrfd.js';
import type { DetectedFace, RgbImage } from '../../pipeline/faces/types.js';
import sharp from 'sharp';
import { resizeBilinear } from '../../pipeline/faces/preprocess.js';
import type { FaceoptApp } from '../../server/app.js';
import { resolveServerConfig } from '../../server/config.js';
import { cacheScope } from '../../server/service.js';
import { FakeBackend, fakeApp, solidImage } from './helpers.js';

/**
 * Three faces per photo, listed in this order: a small one (score 0.6), a large one (0.95), a middle
 * one (0.8). Each aligned crop is a solid colour of its own (red, green, blue), so each embedding says
 * which face it came from. Records the options each detection got.
 */
class ThreeFaces extends FakeBackend {
  readonly seen: DetectOptions[] = [];
  override async detect(img: RgbImage, opts: DetectOptions): Promise<DetectedFace[]> {
    this.seen.push({ ...opts });
    const face = (x: number, size: number, score: number): DetectedFace => ({ box: [x, 0, x + size, size], score, kps: null });
    return [face(0, 8, 0.6), face(10, 40, 0.95), face(20, 20, 0.8)];
  }
  override align(img: RgbImage, faces: readonly DetectedFace[]): RgbImage[] {
    return faces.map((f) => {
      const out = resizeBilinear(img, 112, 112);
      const colour = f.score === 0.6 ? [255, 0, 0] : f.score === 0.95 ? [0, 255, 0] : [0, 0, 255];
      for (let i = 0; i < out.data.length; i += 3) out.data.set(colour, i);
      return out;
    });
  }
}

let app: FaceoptApp | undefined;
afterEach(async () => { await app?.close(); app = undefined; });

const jpeg = (payload: Buffer) => ({ method: 'POST' as const, payload, headers: { 'content-type': 'image/jpeg' } });
/** Which colour an embedding (unit R, G, B, 64) is dominated by. */
const colourOf = (e: number[]) => ['red', 'green', 'blue'][e.slice(0, 3).indexOf(Math.max(...e.slice(0, 3)))];

describe('FaceService options', () => {
  it('asks the detector for the request threshold (else the server one), min_face_size and limit_faces; /v1/embed for one face', async () => {
    const fake = new ThreeFaces();
    ({ app } = await fakeApp({ detThreshold: 0.6, cache: { memoryEntries: 0 } }, fake));
    const red = await solidImage([200, 30, 30]);
    await app.inject({ url: '/v1/detect', ...jpeg(red) });
    expect(fake.seen.pop()).toEqual({ threshold: 0.6, maxFaces: 1000 });
    await app.inject({ url: '/v1/detect?threshold=0.3&min_face_size=12&limit_faces=2', ...jpeg(red) });
    expect(fake.seen.pop()).toEqual({ threshold: 0.3, maxFaces: 2, minFaceSize: 12 });
    await app.inject({ url: '/v1/extract?limit_faces=0', ...jpeg(red) });
    expect(fake.seen.pop()).toEqual({ threshold: 0.6, maxFaces: 1000 });
    await app.inject({ url: '/v1/embed?threshold=0.7', ...jpeg(red) });
    expect(fake.seen.pop()).toEqual({ threshold: 0.7, maxFaces: 1 });
  });

  it('faces come highest score first, each with its own embedding; /v1/embed answers the first', async () => {
    ({ app } = await fakeApp({ cache: { memoryEntries: 0 } }, new ThreeFaces()));
    const red = await solidImage([200, 30, 30]);
    const res = await app.inject({ url: '/v1/extract', ...jpeg(red) });
    expect(res.statusCode, res.body).toBe(200);
    const faces = res.json().images[0].faces as { score: number; box: number[]; embedding: number[]; norm: number }[];
    expect(faces.map((f) => f.score)).toEqual([0.95, 0.8, 0.6]);
    expect(faces.map((f) => f.box[0])).toEqual([10, 20, 0]);
    expect(faces.map((f) => colourOf(f.embedding))).toEqual(['green', 'blue', 'red']);
    const main = await app.inject({ url: '/v1/embed', ...jpeg(red) });
    expect(main.json()).toMatchObject({ score: 0.95, box: [10, 0, 50, 40] });
    expect(colourOf(main.json().embedding)).toBe('green');
    const detect = await app.inject({ url: '/v1/detect', ...jpeg(red) });
    expect(detect.json().faces.map((f: { score: number }) => f.score)).toEqual([0.95, 0.8, 0.6]);
    for (const f of detect.json().faces) expect(f).not.toHaveProperty('embedding');
  });

  it('norms keep 4 decimals', async () => {
    ({ app } = await fakeApp({}, new FakeBackend()));
    const img = await solidImage([123, 45, 67]);
    const res = await app.inject({ url: '/v1/embed', ...jpeg(img) });
    const norm = res.json().norm as number;
    expect(Number(norm.toFixed(4))).toBe(norm);
    expect(Number(norm.toFixed(2))).not.toBe(norm);
  });

  it('an embed_only crop that is not the recognizer size is scaled to it; its box is the whole photo', async () => {
    const fake = new FakeBackend();
    const sizes: [number, number][] = [];
    const embed = fake.embed.bind(fake);
    fake.embed = async (crops) => { sizes.push(...crops.map((c) => [c.width, c.height] as [number, number])); return embed(crops); };
    ({ app } = await fakeApp({}, fake));
    const wide = await sharp({ create: { width: 80, height: 48, channels: 3, background: { r: 10, g: 200, b: 10 } } }).jpeg().toBuffer();
    const res = await app.inject({ url: '/v1/extract?embed_only=true', ...jpeg(wide) });
    expect(res.json().images[0]).toMatchObject({ width: 80, height: 48, faces: [{ box: [0, 0, 80, 48], score: null, kps: null }] });
    expect(sizes).toEqual([[112, 112]]);
  });

  it('the cache keeps options apart: embed_only and not, threshold, extract_embedding', async () => {
    ({ app } = await fakeApp({}, new FakeBackend()));
    const black = await solidImage([0, 0, 0]);
    // detection finds no face on black: 422; embed_only embeds it anyway
    expect((await app.inject({ url: '/v1/embed?embed_only=true', ...jpeg(black) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/embed', ...jpeg(black) })).statusCode).toBe(422);
    const red = await solidImage([200, 30, 30]);
    expect((await app.inject({ url: '/v1/extract?extract_embedding=false', ...jpeg(red) })).json().images[0].faces[0].embedding).toBeUndefined();
    expect((await app.inject({ url: '/v1/extract', ...jpeg(red) })).json().images[0].faces[0].embedding).toHaveLength(4);
    // the main face and the extract of one photo are different results under different keys
    const main = await app.inject({ url: '/v1/embed', ...jpeg(red) });
    expect(main.json()).toMatchObject({ score: 0.9, dim: 4 });
  });
});

describe('cacheScope', () => {
  it('differs for each setting that changes an answer or a refusal: models, det size, max pixels, provider', () => {
    const base = resolveServerConfig();
    const scope = cacheScope('models', base);
    expect(cacheScope('models', base)).toBe(scope);
    expect(cacheScope('others', base)).not.toBe(scope);
    expect(cacheScope('models', { ...base, maxPixels: base.maxPixels - 1 })).not.toBe(scope);
    expect(cacheScope('models', { ...base, provider: 'cuda' })).not.toBe(scope);
    expect(cacheScope('models', { ...base, detSize: 640 })).not.toBe(scope);
  });
});

describe('FaceService lifecycle', () => {
  it('a request before the models are warm is refused NOT_READY and counted as not_ready', async () => {
    const fake = new FakeBackend({ warmDelayMs: 400 });
    ({ app } = await fakeApp({}, fake, false));
    const res = await app.inject({ url: '/v1/embed', ...jpeg(await solidImage([200, 30, 30])) });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('FACEOPT_ERR_NOT_READY');
    expect(app.faceopt.service.admission.inflight).toBe(0);
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^faceopt_requests_rejected_total\{reason="not_ready"\} 1$/m);
  });

  it('closed while the models load: the backend is let go and the service never becomes ready', async () => {
    const fake = new FakeBackend({ warmDelayMs: 300 });
    ({ app } = await fakeApp({}, fake, false));
    const closing = app.close();
    await closing;
    expect(fake.released).toBe(true);
    expect(app.faceopt.service.state).toBe('closing');
    expect(app.faceopt.service.healthy).toBe(false);
    app = undefined;
  });
});
