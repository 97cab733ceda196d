/**
 * FaceService behaviours a mutation audit of the request layer found unchecked: a photo that fails to
 * decode gives its decode slot back (detection and embed_only alike), scores, norms, boxes and keypoints
 * keep their stated precision, `detect()` never embeds, close() cancels a scheduled memory collection,
 * a load that fails while closing is no error, a load that failed says so in its 503, and the forced
 * stop releases the backend once a pending load settled.
 * Synthetic backend (test/server/helpers.ts), real sharp decoding.
 */
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import type { DetectOptions } from '../../pipeline/faces/scrfd.js';
import type { DetectedFace, RgbImage } from '../../pipeline/faces/types.js';
import { buildApp, type FaceoptApp } from '../../server/app.js';
import { MemoryReclaimer } from '../../server/reclaim.js';
import { FakeBackend, fakeApp, fakeModels, solidImage, waitFor } from './helpers.js';

let app: FaceoptApp | undefined;
afterEach(async () => { await app?.close(); app = undefined; });

const jpeg = (payload: Buffer) => ({ method: 'POST' as const, payload, headers: { 'content-type': 'image/jpeg' } });

/** One face with a score and a box that have more decimals than the API keeps. */
class PreciseFace extends FakeBackend {
  override async detect(_img: RgbImage, _opts: DetectOptions): Promise<DetectedFace[]> {
    return [{ box: [10.123456, 5.987654, 40.555555, 50.444444], score: 0.876543, kps: [[1.23456, 2.34567], [3, 4], [5, 6], [7, 8], [9, 10]] }];
  }
  override async embed(crops: readonly RgbImage[]) {
    const { embeddings } = await super.embed(crops);
    return { embeddings, norms: crops.map(() => 12.345678) };
  }
}

describe('FaceService decode slots', () => {
  for (const embedOnly of [false, true]) {
    it(`a photo that fails to decode gives its slot back${embedOnly ? ' (embed_only)' : ''}: with one slot, later photos are still served`, async () => {
      ({ app } = await fakeApp({ decodeAhead: 1, timeoutMs: 3000, cache: { memoryEntries: 0 } }));
      const red = await solidImage([200, 30, 30]);
      const truncated = red.subarray(0, 200); // starts like a JPEG (passes the type check), fails in the decoder
      const url = embedOnly ? '/v1/embed?embed_only=true' : '/v1/embed';
      for (let i = 0; i < 2; i++) {
        const bad = await app.inject({ url, ...jpeg(truncated) });
        expect(bad.statusCode, bad.body).toBe(400);
        expect(bad.json().error.code).toBe('FACEOPT_ERR_BAD_IMAGE');
      }
      const ok = await app.inject({ url, ...jpeg(red) });
      expect(ok.statusCode, ok.body).toBe(200); // a leaked slot left it waiting for its deadline: 503 TIMEOUT
    });
  }
});

describe('FaceService answers', () => {
  it('scores and norms keep 4 decimals, boxes and keypoints 2', async () => {
    ({ app } = await fakeApp({}, new PreciseFace()));
    const res = await app.inject({ url: '/v1/extract', ...jpeg(await solidImage([200, 30, 30])) });
    expect(res.statusCode, res.body).toBe(200);
    const [face] = res.json().images[0].faces;
    expect(face).toMatchObject({ box: [10.12, 5.99, 40.56, 50.44], score: 0.8765, kps: [[1.23, 2.35], [3, 4], [5, 6], [7, 8], [9, 10]], norm: 12.3457 });
  });

  it('detect() finds faces and never embeds, whatever embed_only the caller passes', async () => {
    const fake = new FakeBackend();
    ({ app } = await fakeApp({ cache: { memoryEntries: 0 } }, fake));
    const red = await solidImage([200, 30, 30]);
    const { value } = await app.faceopt.service.detect(red, 'red', { embedOnly: true, extractEmbedding: true }, null);
    expect(value.faces).toHaveLength(1);
    expect(value.faces[0]).toMatchObject({ box: [16, 16, 48, 48], score: 0.9 });
    expect(value.faces[0]).not.toHaveProperty('embedding');
    expect(fake.detections).toBe(1);
    expect(fake.batches).toEqual([]);
  });
});

describe('FaceService lifecycle', () => {
  it('a load that failed: requests are refused NOT_READY saying it failed, not that it is loading', async () => {
    app = await buildApp({ logLevel: 'silent' }, { models: fakeModels(), backend: async () => { throw new Error('no models here'); } });
    await expect(app.faceoptReady).rejects.toThrow('no models here');
    const res = await app.inject({ url: '/v1/embed', ...jpeg(await solidImage([200, 30, 30])) });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('FACEOPT_ERR_NOT_READY');
    expect(res.json().error.message).not.toContain('still loading');
    expect(res.json().error.message).toMatch(/fail/i);
    expect((await app.inject({ url: '/ready' })).json().error.message).toBe(res.json().error.message);
  });

  it('a load that fails after closing began is no error: ready settles without rejecting', async () => {
    let fail!: () => void;
    const loading = new Promise<never>((_, reject) => { fail = () => reject(new Error('the port was taken meanwhile')); });
    const built = await buildApp({ logLevel: 'silent' }, { models: fakeModels(), backend: () => loading });
    const closed = built.close();
    await waitFor(() => built.faceopt.service.state === 'closing', 10_000, 'close() to reach the service');
    fail();
    await closed;
    await expect(built.faceoptReady).resolves.toBeUndefined();
    expect(built.faceopt.service.state).toBe('closing');
    expect(built.faceopt.service.loadError).toBeNull();
  });

  it('close() cancels a memory collection its last large photo scheduled', async () => {
    let runs = 0;
    const reclaimer = new MemoryReclaimer(() => runs++, { quietMs: 150, minIntervalMs: 0 });
    ({ app } = await fakeApp({ cache: { memoryEntries: 0 } }, new FakeBackend(), true, { reclaimer }));
    const big = await sharp({ create: { width: 1600, height: 1200, channels: 3, background: { r: 120, g: 90, b: 60 } } }).jpeg().toBuffer(); // 5.8 MB decoded
    expect((await app.inject({ url: '/v1/embed', ...jpeg(big) })).statusCode).toBe(200);
    await app.close();
    app = undefined;
    await new Promise((r) => setTimeout(r, 400));
    expect(runs).toBe(0);
  });

  it('releaseNow() while the models load: resolves once the loaded backend is released', async () => {
    const fake = new FakeBackend({ warmDelayMs: 200 });
    ({ app } = await fakeApp({}, fake, false));
    await app.faceopt.service.releaseNow();
    expect(fake.released).toBe(true);
    expect(app.faceopt.service.state).toBe('closing');
  });
});
