/**
 * Hardening of the cache and the request metrics: the cache scope carries the result format; values read
 * back from Redis are checked before use (a bad one is a counted Redis error and the request goes on to
 * inference); the memory LRU is bounded in bytes as well as entries; a hung Redis costs a request at most
 * one lookup timeout and its pending writes stay bounded; API keys are trimmed; every 503 timeout is
 * counted once in faceopt_requests_rejected_total.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { FaceoptError, isFaceoptError } from '../../pipeline/errors.js';
import type { DetectOptions } from '../../pipeline/faces/scrfd.js';
import type { DetectedFace, RgbImage } from '../../pipeline/faces/types.js';
import { estimateBytes, LruCache, ResultCache } from '../../server/cache.js';
import { DEFAULTS, resolveServerConfig } from '../../server/config.js';
import { cacheScope } from '../../server/service.js';
import { faceopt } from '../helpers/cli.js';
import { FakeBackend, fakeApp, HAS_REDIS, redisForSuite, solidImage, waitFor } from './helpers.js';

const post = (url: string, payload: Buffer, headers: Record<string, string> = {}) => ({ method: 'POST' as const, url, payload, headers: { 'content-type': 'image/jpeg', ...headers } });
const metricValue = (text: string, line: string): number => Number(new RegExp(`^${line.replace(/[{}"=,/]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);

describe('cache scope', () => {
  it('includes the result format and the tool version, so an upgrade never serves older answers', () => {
    const config = resolveServerConfig();
    const base = cacheScope('models', config);
    expect(cacheScope('models', config)).toBe(base);
    expect(cacheScope('models', config, { format: 999 })).not.toBe(base);
    expect(cacheScope('models', config, { version: '99.0.0' })).not.toBe(base);
    expect(cacheScope('models', resolveServerConfig({ detSize: 320 }))).not.toBe(base);
  });
});

describe('memory cache bounded in bytes', () => {
  it('LruCache evicts least recently used entries to stay within its byte budget; an entry over the cap is not kept', () => {
    const lru = new LruCache<string>(100, 1000, 400);
    lru.set('a', 'a', 300);
    lru.set('b', 'b', 300);
    lru.set('c', 'c', 300);
    expect(lru.bytes).toBe(900);
    lru.get('a'); // a is now the most recent
    lru.set('d', 'd', 300);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe('a');
    expect(lru.bytes).toBe(900);
    lru.set('huge', 'x', 500); // over the per-entry cap
    expect(lru.get('huge')).toBeUndefined();
    lru.set('a', 'a2', 100); // replacing an entry replaces its size
    expect(lru.bytes).toBe(700);
  });

  it('estimateBytes grows with the embeddings: a 1000-face 512-d extract result is several MiB', () => {
    const face = { box: [1, 2, 3, 4], score: 0.9, kps: [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]], embedding: new Array(512).fill(0.1), norm: 12.3 };
    const one = estimateBytes({ width: 10, height: 10, faces: [face] });
    const many = estimateBytes({ width: 10, height: 10, faces: new Array(1000).fill(face) });
    expect(one).toBeGreaterThan(512 * 8);
    expect(many).toBeGreaterThan(4 * 1024 * 1024);
  });

  it('ResultCache keeps its memory layer under --cache-bytes and skips values too large for it', async () => {
    const big = { width: 1, height: 1, faces: new Array(200).fill(null).map(() => ({ box: [0, 0, 1, 1], score: 1, kps: null, embedding: new Array(128).fill(0.5), norm: 1 })) };
    const size = estimateBytes(big);
    const cache = new ResultCache({ memoryEntries: 1000, memoryBytes: size * 10, redisUrl: null, redisTtlS: 60, redisTimeoutMs: 100 }, null);
    for (let i = 0; i < 30; i++) cache.set(`k${i}`, big);
    expect(cache.status().memory.entries).toBeLessThanOrEqual(10);
    expect(cache.status().memory.bytes).toBeLessThanOrEqual(size * 10);
    expect(await cache.get('k29')).toBe(big);
    expect(await cache.get('k0')).toBeUndefined();
    const tiny = new ResultCache({ memoryEntries: 1000, memoryBytes: size, redisUrl: null, redisTtlS: 60, redisTimeoutMs: 100 }, null);
    tiny.set('big', big); // larger than 1/8 of the budget: not cached in memory
    expect(await tiny.get('big')).toBeUndefined();
  });

  it('--cache-bytes: default 256 MiB, 0 turns the memory layer off, checked like the other flags', () => {
    expect(resolveServerConfig().cache.memoryBytes).toBe(256 * 1024 * 1024);
    expect(DEFAULTS.memoryBytes).toBe(256 * 1024 * 1024);
    expect(resolveServerConfig({ cache: { memoryBytes: 0 } }).cache.memoryBytes).toBe(0);
    expect(() => resolveServerConfig({ cache: { memoryBytes: -1 } })).toThrow(/--cache-bytes/);
    const cli = faceopt(['serve', '--cache-bytes', 'lots', '--detector', '/nonexistent.onnx', '--recognizer', '/nonexistent.onnx']);
    expect(cli.code).toBe(64);
    expect(cli.stderr).toContain('for --cache-bytes but received "lots"');
  });
});

describe('API key', () => {
  it('is trimmed (a key file\'s trailing newline) and an empty-after-trim key is refused', async () => {
    expect(resolveServerConfig({ apiKey: 's3cret-key\n' }).apiKey).toBe('s3cret-key');
    expect(resolveServerConfig({ apiKey: '  pad key with spaces  ' }).apiKey).toBe('pad key with spaces');
    for (const bad of ['   \n', '', ' short \n']) {
      let err: unknown;
      try { resolveServerConfig({ apiKey: bad }); } catch (e) { err = e; }
      expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT'), JSON.stringify(bad)).toBe(true);
    }
    const { app } = await fakeApp({ apiKey: 's3cret-key\n' });
    try {
      expect((await app.inject({ url: '/v1/models', headers: { authorization: 'Bearer s3cret-key' } })).statusCode).toBe(200);
      expect((await app.inject({ url: '/v1/models', headers: { authorization: 'Bearer other-key' } })).statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });
});

/** A backend whose detector gives up as a passed deadline makes the batcher do (not the admission timer). */
class DeadlineBackend extends FakeBackend {
  override async detect(img: RgbImage, opts: DetectOptions): Promise<DetectedFace[]> {
    if (img.data[0] > 200) throw new FaceoptError('FACEOPT_ERR_TIMEOUT', { ms: 1 });
    return super.detect(img, opts);
  }
}

describe('timeouts in the metrics', () => {
  it('every 503 FACEOPT_ERR_TIMEOUT counts once in faceopt_requests_rejected_total{reason="timeout"}', async () => {
    const { app } = await fakeApp({ cache: { memoryEntries: 0 } }, new DeadlineBackend());
    const slow = await fakeApp({ cache: { memoryEntries: 0 }, timeoutMs: 50 }, new FakeBackend({ embedDelayMs: 300 }));
    try {
      const late = await solidImage([250, 250, 250]);
      expect((await app.inject(post('/v1/embed', late))).statusCode).toBe(503);
      expect((await app.inject(post('/v1/extract', late))).statusCode).toBe(503);
      const text = (await app.inject({ url: '/metrics' })).body;
      expect(metricValue(text, 'faceopt_requests_rejected_total{reason="timeout"}')).toBe(2);
      // the admission timer's 503 counts once too
      const res = await slow.app.inject(post('/v1/embed', await solidImage([10, 90, 200])));
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('FACEOPT_ERR_TIMEOUT');
      await new Promise((r) => setTimeout(r, 400)); // the abandoned work settles
      expect(metricValue((await slow.app.inject({ url: '/metrics' })).body, 'faceopt_requests_rejected_total{reason="timeout"}')).toBe(1);
    } finally {
      await app.close();
      await slow.app.close();
    }
  });
});

describe.skipIf(!HAS_REDIS)('redis values and a hung redis', () => {
  const suite = redisForSuite();

  it('a value in Redis that is not a result of this shape is a counted error and the request runs inference', async () => {
    const fake = new FakeBackend();
    const { app } = await fakeApp({ cache: { memoryEntries: 0, redisUrl: suite.redis.url } }, fake);
    try {
      await waitFor(() => app.faceopt.service.cache.status().redis?.status === 'ready', 10_000, 'redis connection');
      await suite.client.flushall();
      const img = await solidImage([120, 60, 30]);
      const first = await app.inject(post('/v1/embed', img));
      expect(first.statusCode).toBe(200);
      await waitFor(async () => (await suite.client.keys('faceopt:*:main:*')).length === 1, 5000, 'the entry to be written');
      const [mainKey] = await suite.client.keys('faceopt:*:main:*');
      expect((await app.inject(post('/v1/embed', img))).headers['x-faceopt-cache']).toBe('hit');
      const bad = ['not json', 'null', '{}', '[]', '"x"', '{"embedding":[1,0,0],"norm":-5,"box":"evil"}', '{"embedding":[null,"a"]}',
        JSON.stringify({ ...first.json(), embedding: [1, 0] }), JSON.stringify({ ...first.json(), norm: -1 }), JSON.stringify({ ...first.json(), box: [1, 2, 3] })];
      let errors = 0;
      for (const v of bad) {
        await suite.client.set(mainKey, v);
        const res = await app.inject(post('/v1/embed', img));
        expect(res.statusCode, v).toBe(200);
        expect(res.headers['x-faceopt-cache'], v).toBe('miss');
        expect(res.json(), v).toEqual(first.json());
        errors++;
      }
      const text = (await app.inject({ url: '/metrics' })).body;
      expect(metricValue(text, 'faceopt_cache_requests_total{layer="redis",result="error"}')).toBeGreaterThanOrEqual(errors);
      // extract: garbage in the faces list
      await app.inject(post('/v1/extract', img));
      await waitFor(async () => (await suite.client.keys('faceopt:*:extract:*')).length === 1, 5000, 'the extract entry');
      const [extractKey] = await suite.client.keys('faceopt:*:extract:*');
      for (const v of ['{}', '{"width":64,"height":64,"faces":[{}]}', '{"width":64,"height":64,"faces":"x"}']) {
        await suite.client.set(extractKey, v);
        const res = await app.inject(post('/v1/extract', img));
        expect(res.json().images[0], v).toMatchObject({ status: 'ok', cached: false });
      }
    } finally {
      await app.close();
    }
  });

  it('a REDIS_URL database the server refuses turns the Redis layer off (it was logged as off while results went to database 0); a valid one is used', async () => {
    const warnings: string[] = [];
    const log = { warn: (o: object, msg: string) => { warnings.push(`${msg} ${JSON.stringify(o)}`); } };
    await suite.client.flushall();
    const value = { width: 1, height: 1, faces: [] };
    const refused = new ResultCache({ memoryEntries: 0, memoryBytes: 0, redisUrl: `${suite.redis.url}/99`, redisTtlS: 60, redisTimeoutMs: 300 }, null, log);
    const chosen = new ResultCache({ memoryEntries: 0, memoryBytes: 0, redisUrl: `${suite.redis.url}/3`, redisTtlS: 60, redisTimeoutMs: 300 }, null, log);
    try {
      await waitFor(() => refused.status().redis?.error !== undefined, 10_000, 'the refused SELECT');
      expect(refused.status().redis).toMatchObject({ status: 'end', error: expect.stringContaining('database 99, which this Redis server refuses (ERR') });
      expect(warnings.join('\n')).toMatch(/redis cache off: .*fix the number after the last \/ in REDIS_URL.*"db":99/);
      refused.set('k', value);
      expect(await refused.get('k')).toBeUndefined();
      await waitFor(() => chosen.status().redis?.status === 'ready', 10_000, 'redis connection');
      await waitFor(async () => { chosen.set('k3', value); return (await chosen.get('k3')) !== undefined; }, 5000, 'the database-3 entry');
      await new Promise((r) => setTimeout(r, 200));
      expect(await suite.client.keys('*')).toEqual([]); // nothing in database 0
      const db3 = new Redis(`${suite.redis.url}/3`);
      try {
        expect(await db3.keys('*')).toEqual(['faceopt:k3']);
      } finally {
        db3.disconnect();
      }
    } finally {
      await refused.close();
      await chosen.close();
    }
  });

  it('a hung Redis costs a request at most one lookup timeout, and its pending writes stay bounded', async () => {
    const timeout = 300;
    const { app } = await fakeApp({ cache: { memoryEntries: 0, redisUrl: suite.redis.url, redisTimeoutMs: timeout } }, new FakeBackend());
    try {
      await waitFor(() => app.faceopt.service.cache.status().redis?.status === 'ready', 10_000, 'redis connection');
      suite.redis.proc.kill('SIGSTOP');
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const res = await app.inject(post('/v1/embed', await solidImage([40 + i, 80, 160])));
        const ms = performance.now() - t0;
        expect(res.statusCode).toBe(200);
        expect(ms).toBeLessThan(2 * timeout - 50); // the lookup's timeout, not the lookup's and the write's
      }
      // many distinct results while Redis hangs: the writes waiting on it stay bounded
      await Promise.all(Array.from({ length: 120 }, async (_, i) => app.inject(post('/v1/embed', await solidImage([i, 255 - i, 7])))));
      const pending = app.faceopt.service.cache.status().redis?.pendingWrites ?? 0;
      expect(pending).toBeGreaterThan(0);
      expect(pending).toBeLessThanOrEqual(64);
    } finally {
      suite.redis.proc.kill('SIGCONT');
      await app.close();
    }
  });
});
