/**
 * The result cache: an in-memory LRU in front of an optional Redis shared by replicas. Keys are built by
 * the caller from sha256(image bytes) + model id + operation + options, values are plain JSON. Redis is
 * strictly best-effort: while it is down (or slower than its timeout) lookups count as errors in the
 * metrics and the request simply goes on to inference; ioredis keeps reconnecting in the background.
 */
import { Redis } from 'ioredis';
import type { CacheConfig } from './config.js';
import type { ServerMetrics } from './metrics.js';

/** A JSON-serialisable cached result. */
export type CacheValue = unknown;

/** Least-recently-used map with an entry limit (Map keeps insertion order; a hit re-inserts). */
export class LruCache<V> {
  private readonly map = new Map<string, V>();
  constructor(readonly maxEntries: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: string, value: V): void {
    if (this.maxEntries <= 0) return;
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as string);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export interface CacheStatus {
  memory: { entries: number; maxEntries: number };
  redis: { configured: boolean; status: string } | null;
}

/** Memory LRU + optional Redis, counting hits, misses and errors per layer. get/set never throw. */
export class ResultCache {
  private readonly memory: LruCache<CacheValue>;
  private readonly redis: Redis | null;
  private closed = false;

  constructor(private readonly config: CacheConfig, private readonly metrics: ServerMetrics | null, private readonly log?: { warn: (o: object, msg: string) => void }) {
    this.memory = new LruCache(config.memoryEntries);
    this.redis = config.redisUrl ? this.connect(config.redisUrl) : null;
  }

  private connect(url: string): Redis {
    const client = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false, // fail at once while disconnected instead of queueing behind a dead server
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(200 * times, 5000),
      keyPrefix: 'faceopt:',
    });
    let lastWarn = 0;
    client.on('error', (e: Error) => {
      const now = Date.now();
      if (now - lastWarn > 30_000) { // one line per 30 s, not one per reconnect attempt
        lastWarn = now;
        this.log?.warn({ err: e.message }, 'redis cache unavailable; serving without it');
      }
    });
    client.connect().catch(() => undefined);
    return client;
  }

  private count(layer: 'memory' | 'redis', result: 'hit' | 'miss' | 'error'): void {
    this.metrics?.cache.inc({ layer, result });
  }

  /** Cached value or undefined (a miss, or Redis unavailable). */
  async get(key: string): Promise<CacheValue | undefined> {
    if (this.config.memoryEntries > 0) {
      const v = this.memory.get(key);
      this.count('memory', v === undefined ? 'miss' : 'hit');
      if (v !== undefined) return v;
    }
    if (!this.redis || this.closed) return undefined;
    if (this.redis.status !== 'ready') {
      this.count('redis', 'error');
      return undefined;
    }
    try {
      const s = await withTimeout(this.redis.get(key), this.config.redisTimeoutMs);
      if (s === null) {
        this.count('redis', 'miss');
        return undefined;
      }
      const v = JSON.parse(s) as CacheValue;
      this.count('redis', 'hit');
      this.memory.set(key, v);
      return v;
    } catch {
      this.count('redis', 'error');
      return undefined;
    }
  }

  /** Store a value in memory and (fire-and-forget) in Redis. */
  async set(key: string, value: CacheValue): Promise<void> {
    this.memory.set(key, value);
    if (!this.redis || this.closed || this.redis.status !== 'ready') return;
    try {
      await withTimeout(this.redis.set(key, JSON.stringify(value), 'EX', this.config.redisTtlS), this.config.redisTimeoutMs);
    } catch {
      this.count('redis', 'error');
    }
  }

  status(): CacheStatus {
    return {
      memory: { entries: this.memory.size, maxEntries: this.config.memoryEntries },
      redis: this.redis ? { configured: true, status: this.redis.status } : null,
    };
  }

  /** Close the Redis connection (graceful shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.redis) return;
    try {
      if (this.redis.status === 'ready') await withTimeout(this.redis.quit(), 1000);
      else this.redis.disconnect();
    } catch {
      this.redis.disconnect();
    }
  }
}
