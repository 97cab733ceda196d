/**
 * FaceService's checks of results read back from a shared Redis, field by field (a mutation audit found
 * these unchecked): a value of the wrong shape is a miss and the request runs inference; two servers of
 * the same models, one running the detector at the size its report set, share no entries. Needs
 * redis-server (skipped with a reason without it).
 */
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../server/app.js';
import { FakeBackend, fakeApp, fakeModels, HAS_REDIS, NO_REDIS_REASON, redisForSuite, solidImage, waitFor } from './helpers.js';

const post = (url: string, payload: Buffer) => ({ method: 'POST' as const, url, payload, headers: { 'content-type': 'image/jpeg' } });

if (!HAS_REDIS) console.warn(NO_REDIS_REASON);

describe.skipIf(!HAS_REDIS)('values read from Redis', () => {
  const suite = redisForSuite();

  it('a face list over 1000, a non-numeric score, an embedding where none was asked for or of another length, too many keypoints: each a miss', async () => {
    const { app } = await fakeApp({ cache: { memoryEntries: 0, redisUrl: suite.redis.url } }, new FakeBackend());
    try {
      await waitFor(() => app.faceopt.service.cache.status().redis?.status === 'ready', 10_000, 'redis connection');
      await suite.client.flushall();
      const img = await solidImage([120, 60, 30]);
      const face = { box: [1, 2, 3, 4], score: 0.9, kps: null };

      // detect (no embeddings asked for)
      const detected = await app.inject(post('/v1/detect', img));
      expect(detected.statusCode).toBe(200);
      await waitFor(async () => (await suite.client.keys('faceopt:*:extract:*')).length === 1, 5000, 'the detect entry');
      const [detectKey] = await suite.client.keys('faceopt:*:extract:*');
      await suite.client.set(detectKey, JSON.stringify({ width: 64, height: 64, faces: [face] }));
      expect((await app.inject(post('/v1/detect', img))).headers['x-faceopt-cache']).toBe('hit'); // a valid value is used
      for (const v of [
        { width: 64, height: 64, faces: Array.from({ length: 1001 }, () => face) },
        { width: 64, height: 64, faces: [{ ...face, score: 'high' }] },
        { width: 64, height: 64, faces: [{ ...face, embedding: [1, 0, 0, 0], norm: 1 }] },
        { width: 64, height: 64, faces: [{ ...face, kps: Array.from({ length: 17 }, () => [1, 2]) }] },
      ]) {
        await suite.client.set(detectKey, JSON.stringify(v));
        const res = await app.inject(post('/v1/detect', img));
        expect(res.headers['x-faceopt-cache'], JSON.stringify(v).slice(0, 80)).toBe('miss');
        expect(res.json().faces, JSON.stringify(v).slice(0, 80)).toEqual(detected.json().faces);
      }

      // embed: once the embedding length is known (4 here), another length is refused
      const first = await app.inject(post('/v1/embed', img));
      await waitFor(async () => (await suite.client.keys('faceopt:*:main:*')).length === 1, 5000, 'the embed entry');
      const [mainKey] = await suite.client.keys('faceopt:*:main:*');
      await suite.client.set(mainKey, JSON.stringify({ ...face, embedding: [0.6, 0.8, 0, 0, 0], norm: 1 }));
      const res = await app.inject(post('/v1/embed', img));
      expect(res.headers['x-faceopt-cache']).toBe('miss');
      expect(res.json()).toEqual(first.json());
    } finally {
      await app.close();
    }
  });

  it('a server running the detector at the size its report evaluated shares no entries with one at the default size (the size is in the cache scope)', async () => {
    const cache = { memoryEntries: 0, redisUrl: suite.redis.url };
    const { app: atDefault } = await fakeApp({ cache }, new FakeBackend());
    const atReport = await buildApp({ logLevel: 'silent', cache }, { models: { ...fakeModels(), detSize: 320 }, backend: async () => new FakeBackend() });
    try {
      await atReport.faceoptReady;
      for (const app of [atDefault, atReport]) await waitFor(() => app.faceopt.service.cache.status().redis?.status === 'ready', 10_000, 'redis connection');
      await suite.client.flushall();
      const img = await solidImage([30, 90, 150]);
      expect((await atDefault.inject(post('/v1/detect', img))).headers['x-faceopt-cache']).toBe('miss');
      await waitFor(async () => (await suite.client.keys('faceopt:*')).length === 1, 5000, 'the first entry');
      expect((await atDefault.inject(post('/v1/detect', img))).headers['x-faceopt-cache']).toBe('hit');
      expect((await atReport.inject(post('/v1/detect', img))).headers['x-faceopt-cache']).toBe('miss');
    } finally {
      await atDefault.close();
      await atReport.close();
    }
  });
});
