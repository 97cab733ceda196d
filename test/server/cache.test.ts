/**
 * The result cache: a repeat of the same image and options is answered from memory with the identical
 * embedding and no inference; other options miss. With a real redis-server (skipped with a printed
 * reason when the binary is missing) two apps share results, and when Redis goes away the server keeps
 * answering, counts the errors, and uses Redis again once it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBackend, fakeApp, HAS_REDIS, NO_REDIS_REASON, solidImage, startRedis, waitFor } from './helpers.js';

const post = (url: string, payload: Buffer) => ({ method: 'POST' as const, url, payload, headers: { 'content-type': 'image/jpeg' } });

describe('memory cache', () => {
  it('a hit returns the identical embedding without running the models; other options miss', async () => {
    const fake = new FakeBackend();
    const { app } = await fakeApp({}, fake);
    try {
      const img = await solidImage([150, 90, 40]);
      const first = await app.inject(post('/v1/embed', img));
      const second = await app.inject(post('/v1/embed', img));
      expect(first.headers['x-faceopt-cache']).toBe('miss');
      expect(second.headers['x-faceopt-cache']).toBe('hit');
      expect(second.json()).toEqual(first.json());
      expect(fake.detections).toBe(1);
      expect(fake.batches).toEqual([1]);
      const other = await app.inject(post('/v1/embed?threshold=0.4', img));
      expect(other.headers['x-faceopt-cache']).toBe('miss');
      expect(other.json().embedding).toEqual(first.json().embedding);
      const seed = await app.inject(post('/embed', img)); // same op + options as /v1/embed: shares the entry
      expect(seed.headers['x-faceopt-cache']).toBe('hit');
      const metrics = (await app.inject({ url: '/metrics' })).body;
      expect(metrics).toContain('faceopt_cache_requests_total{layer="memory",result="hit"} 2');
      expect(metrics).toContain('faceopt_cache_requests_total{layer="memory",result="miss"} 2');
    } finally {
      await app.close();
    }
  });
});

describe.skipIf(!HAS_REDIS)('redis cache', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  beforeAll(async () => { redis = await startRedis(); });
  afterAll(async () => { await redis?.stop(); });

  it('two servers share results through Redis: the second answers from it, identically, without inference', async () => {
    const fakeA = new FakeBackend();
    const fakeB = new FakeBackend();
    const cache = { memoryEntries: 0, redisUrl: redis.url };
    const { app: a } = await fakeApp({ cache }, fakeA);
    const { app: b } = await fakeApp({ cache }, fakeB);
    try {
      await waitFor(() => a.faceopt.service.cache.status().redis?.status === 'ready' && b.faceopt.service.cache.status().redis?.status === 'ready', 10_000, 'redis connections');
      const img = await solidImage([33, 99, 180]);
      const fromA = await a.inject(post('/v1/extract', img));
      expect(fromA.statusCode).toBe(200);
      const fromB = await b.inject(post('/v1/extract', img));
      expect(fromB.json().images[0]).toMatchObject({ status: 'ok', cached: true });
      expect(fromB.json().images[0].faces).toEqual(fromA.json().images[0].faces);
      expect(fakeB.detections).toBe(0);
      expect((await b.inject({ url: '/metrics' })).body).toContain('faceopt_cache_requests_total{layer="redis",result="hit"} 1');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('servers whose settings change the answer (--det-size, --max-pixels) do not share entries', async () => {
    const cache = { memoryEntries: 0, redisUrl: redis.url };
    const fakes = [new FakeBackend(), new FakeBackend(), new FakeBackend()];
    const apps = await Promise.all([{}, { detSize: 320 }, { maxPixels: 1_000_000 }].map(async (c, i) => (await fakeApp({ cache, ...c }, fakes[i])).app));
    try {
      await waitFor(() => apps.every((a) => a.faceopt.service.cache.status().redis?.status === 'ready'), 10_000, 'redis connections');
      const img = await solidImage([12, 200, 77]);
      expect((await apps[0].inject(post('/v1/extract', img))).statusCode).toBe(200);
      for (const [i, other] of apps.slice(1).entries()) {
        const res = await other.inject(post('/v1/extract', img));
        expect(res.json().images[0], `server ${i + 1}`).toMatchObject({ status: 'ok', cached: false });
        expect(fakes[i + 1].detections, `server ${i + 1}`).toBe(1);
      }
    } finally {
      await Promise.all(apps.map((a) => a.close()));
    }
  });

  it('Redis down: requests still succeed (cache off, errors counted); Redis back: used again', async () => {
    const fake = new FakeBackend();
    const { app } = await fakeApp({ cache: { memoryEntries: 0, redisUrl: redis.url, redisTimeoutMs: 200 } }, fake);
    try {
      await waitFor(() => app.faceopt.service.cache.status().redis?.status === 'ready', 10_000, 'redis connection');
      const img = await solidImage([200, 200, 20]);
      await redis.stop();
      await waitFor(() => app.faceopt.service.cache.status().redis?.status !== 'ready', 10_000, 'redis to be seen down');
      for (let i = 0; i < 3; i++) {
        const res = await app.inject(post('/v1/embed', img));
        expect(res.statusCode).toBe(200);
        expect(res.headers['x-faceopt-cache']).toBe('miss');
      }
      expect(fake.detections).toBe(3);
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/faceopt_cache_requests_total\{layer="redis",result="error"\} [3-9]/);
      expect((await app.inject({ url: '/v1/models' })).json().cache.redis.status).not.toBe('ready');

      redis = await startRedis(redis.port); // the client reconnects to the URL it knows
      await waitFor(() => app.faceopt.service.cache.status().redis?.status === 'ready', 20_000, 'redis reconnection');
      await app.inject(post('/v1/embed', img));
      const again = await app.inject(post('/v1/embed', img));
      expect(again.headers['x-faceopt-cache']).toBe('hit');
    } finally {
      await app.close();
    }
  });
});

if (!HAS_REDIS) console.warn(`[faceopt tests] ${NO_REDIS_REASON}`);

