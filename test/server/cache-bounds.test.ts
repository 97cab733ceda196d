/**
 * The result cache at its edges: the LRU's byte limits hold at exactly the limit, a memory layer that is
 * off counts no lookups, the cache key tells apart different images of the same size, and against a
 * real redis-server (skipped without one) a Redis hit is kept in memory, the pending-read and
 * pending-write counts come back down after each command (Redis stays in use after hundreds of them),
 * and a hung Redis holds at most REDIS_MAX_PENDING_READS lookups (the others are skipped at once).
 */
import { describe, expect, it } from 'vitest';
import { LruCache, REDIS_MAX_PENDING_READS, REDIS_MAX_PENDING_WRITES, ResultCache } from '../../server/cache.js';
import { createMetrics } from '../../server/metrics.js';
import { FakeBackend, fakeApp, HAS_REDIS, redisForSuite, solidImage, waitFor } from './helpers.js';

const post = (url: string, payload: Buffer) => ({ method: 'POST' as const, url, payload, headers: { 'content-type': 'image/jpeg' } });

async function cacheCounts(m: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.cache.get()).values) out[`${v.labels.layer}/${v.labels.result}`] = v.value;
  return out;
}

describe('LruCache limits are inclusive', () => {
  it('an entry of exactly maxEntryBytes is kept; entries filling exactly maxBytes are all kept', () => {
    const lru = new LruCache<string>(100, 1000, 400);
    lru.set('cap', 'x', 400);
    expect(lru.get('cap')).toBe('x');
    lru.set('a', 'a', 300);
    lru.set('b', 'b', 300); // 400 + 300 + 300 = exactly the budget
    expect(lru.bytes).toBe(1000);
    expect([lru.get('cap'), lru.get('a'), lru.get('b')]).toEqual(['x', 'a', 'b']);
    lru.set('c', 'c', 1); // one byte over: the least recently used goes
    expect(lru.get('cap')).toBeUndefined();
    expect(lru.bytes).toBe(601);
  });
});

describe('ResultCache without its memory layer', () => {
  it('counts no memory lookups when --cache-size or --cache-bytes is 0', async () => {
    for (const off of [{ memoryEntries: 0, memoryBytes: 1 << 20 }, { memoryEntries: 100, memoryBytes: 0 }]) {
      const m = createMetrics({ defaults: false });
      const cache = new ResultCache({ ...off, redisUrl: null, redisTtlS: 60, redisTimeoutMs: 100 }, m);
      cache.set('k', { x: 1 });
      expect(await cache.get('k')).toBeUndefined();
      expect(await cacheCounts(m), JSON.stringify(off)).toEqual({});
    }
  });
});

describe('cache key', () => {
  it('two different photos of the same byte length are two entries', async () => {
    const fake = new FakeBackend();
    const { app } = await fakeApp({}, fake);
    try {
      const red = await solidImage([200, 40, 40]);
      const blue = await solidImage([40, 40, 200]);
      const n = Math.max(red.length, blue.length);
      // bytes after a JPEG's end marker are ignored by decoders: pad both to one length
      const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc(n - b.length)]);
      const a = await app.inject(post('/v1/embed', pad(red)));
      const b = await app.inject(post('/v1/embed', pad(blue)));
      expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
      expect(b.headers['x-faceopt-cache']).toBe('miss');
      expect(b.json().embedding).not.toEqual(a.json().embedding);
      expect(fake.detections).toBe(2);
    } finally {
      await app.close();
    }
  });
});

describe.skipIf(!HAS_REDIS)('ResultCache over a real Redis', () => {
  const suite = redisForSuite();

  const open = async (config: { memoryEntries: number; memoryBytes: number; redisTimeoutMs?: number }, m = createMetrics({ defaults: false })) => {
    const cache = new ResultCache({ redisUrl: suite.redis.url, redisTtlS: 60, redisTimeoutMs: 2000, ...config }, m);
    await waitFor(() => cache.status().redis?.status === 'ready', 10_000, 'redis connection');
    return { cache, m };
  };

  it('a value found in Redis is kept in memory: the next lookup does not need Redis', async () => {
    const { cache, m } = await open({ memoryEntries: 100, memoryBytes: 1 << 20 });
    try {
      const value = { width: 1, height: 1, faces: [] };
      await suite.client.set('faceopt:shared', JSON.stringify(value));
      expect(await cache.get('shared')).toEqual(value);
      await suite.client.del('faceopt:shared');
      expect(await cache.get('shared')).toEqual(value);
      expect(await cacheCounts(m)).toEqual({ 'memory/miss': 1, 'memory/hit': 1, 'redis/hit': 1 });
    } finally {
      await cache.close();
    }
  });

  it('more reads and writes than the pending bounds, one after another: every one reaches Redis (the pending counts come back down)', async () => {
    const { cache, m } = await open({ memoryEntries: 0, memoryBytes: 0 });
    try {
      const value = { width: 2, height: 2, faces: [] };
      const writes = REDIS_MAX_PENDING_WRITES + 10;
      for (let i = 0; i < writes; i++) {
        cache.set(`w${i}`, { ...value, width: i });
        for (let t = 0; cache.status().redis?.pendingWrites !== 0; t++) {
          if (t > 1000) throw new Error(`write ${i} was not answered`);
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      expect(JSON.parse((await suite.client.get(`faceopt:w${writes - 1}`)) ?? 'null')).toEqual({ ...value, width: writes - 1 });
      await suite.client.set('faceopt:r', JSON.stringify(value));
      for (let i = 0; i < REDIS_MAX_PENDING_READS + 50; i++) expect(await cache.get('r'), `read ${i}`).toEqual(value);
      expect((await cacheCounts(m))['redis/error']).toBeUndefined();
    } finally {
      await cache.close();
    }
  });

  it('a hung Redis holds at most REDIS_MAX_PENDING_READS lookups; the others are skipped at once as errors', async () => {
    const { cache, m } = await open({ memoryEntries: 0, memoryBytes: 0, redisTimeoutMs: 20_000 });
    suite.redis.proc.kill('SIGSTOP');
    try {
      let done = 0;
      const extra = 20;
      const reads = Array.from({ length: REDIS_MAX_PENDING_READS + extra }, (_, i) => cache.get(`hung${i}`).then((v) => { done++; return v; }));
      await waitFor(() => done >= extra, 5000, 'the lookups over the bound to be skipped');
      await new Promise((r) => setTimeout(r, 50));
      expect(done).toBe(extra); // the rest wait on Redis (for up to the 20 s lookup timeout)
      expect((await cacheCounts(m))['redis/error']).toBe(extra);
      suite.redis.proc.kill('SIGCONT');
      expect(await Promise.all(reads)).toEqual(reads.map(() => undefined));
    } finally {
      suite.redis.proc.kill('SIGCONT');
      await cache.close();
    }
  });
});
