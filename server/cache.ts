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

/**
 * Heap bytes a JSON value takes, roughly (V8: 8 bytes per element of a number array, some tens of bytes
 * per object and array header, two per string character): what bounds the memory LRU. Walks the value
 * once; values nested deeper than 32 levels count as large (results are three levels deep).
 */
export function estimateBytes(v: unknown, depth = 0): number {
  if (depth > 32) return 1 << 20;
  if (typeof v === 'string') return 24 + 2 * v.length;
  if (Array.isArray(v)) {
    let n = 32 + 8 * v.length;
    for (const x of v) if (x !== null && typeof x === 'object') n += estimateBytes(x, depth + 1);
    else if (typeof x === 'string') n += estimateBytes(x, depth + 1);
    else if (typeof x === 'number' && !Number.isInteger(x)) n += 8; // a double outside a packed array is boxed
    return n;
  }
  if (v !== null && typeof v === 'object') {
    let n = 56;
    for (const [k, x] of Object.entries(v)) n += 16 + k.length + estimateBytes(x, depth + 1);
    return n;
  }
  return 8;
}

/**
 * Least-recently-used map with an entry limit and a byte budget (Map keeps insertion order; a hit
 * re-inserts). Entries over `maxEntryBytes` are not kept at all.
 */
export class LruCache<V> {
  private readonly map = new Map<string, { value: V; bytes: number }>();
  private total = 0;
  constructor(readonly maxEntries: number, readonly maxBytes = Infinity, readonly maxEntryBytes = maxBytes) {}

  get size(): number {
    return this.map.size;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.total;
  }

  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: string, value: V, bytes = 0): void {
    this.delete(key);
    if (this.maxEntries <= 0 || this.maxBytes <= 0 || bytes > this.maxEntryBytes) return;
    this.map.set(key, { value, bytes });
    this.total += bytes;
    while (this.map.size > this.maxEntries || this.total > this.maxBytes) this.delete(this.map.keys().next().value as string);
  }

  private delete(key: string): void {
    const e = this.map.get(key);
    if (e === undefined) return;
    this.map.delete(key);
    this.total -= e.bytes;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Redis commands sent and not yet answered, at most: a hung Redis (socket open, no replies) would
 * otherwise hold every result written to it, and every lookup, until the connection dropped. Past these
 * a write is dropped and a lookup skipped (each counted as a Redis error).
 */
export const REDIS_MAX_PENDING_WRITES = 64;
export const REDIS_MAX_PENDING_WRITE_BYTES = 32 * 1024 * 1024;
export const REDIS_MAX_PENDING_READS = 256;

export interface CacheStatus {
  memory: { entries: number; maxEntries: number; bytes: number; maxBytes: number };
  /** error: why Redis is off for good (a database number the server refuses), else absent. */
  redis: { configured: boolean; status: string; pendingWrites: number; error?: string } | null;
}

/** Memory LRU + optional Redis, counting hits, misses and errors per layer. get/set never throw. */
export class ResultCache {
  private readonly memory: LruCache<CacheValue>;
  private readonly redis: Redis | null;
  private closed = false;
  private pendingWrites = 0;
  private pendingWriteBytes = 0;
  private pendingReads = 0;
  /**
   * Redis is used only once the URL's database is known selected: ioredis reports 'ready' even when the
   * server refused its SELECT (`redis://host/99` on a server with 16 databases), and its commands then
   * went to database 0, which may belong to another application.
   */
  private redisSelected = false;
  private redisError: string | null = null;

  constructor(private readonly config: CacheConfig, private readonly metrics: ServerMetrics | null, private readonly log?: { warn: (o: object, msg: string) => void }) {
    this.memory = new LruCache(config.memoryEntries, config.memoryBytes, Math.floor(config.memoryBytes / 8));
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
    client.on('ready', () => {
      const db = client.options.db ?? 0;
      if (db === 0) {
        this.redisSelected = true;
        return;
      }
      // ours is answered after any SELECT ioredis sent on connecting: it decides for this connection
      client.select(db).then(() => { this.redisSelected = true; }, (e: Error) => {
        this.redisError = `REDIS_URL selects database ${db}, which this Redis server refuses (${e.message})`;
        this.log?.warn({ err: e.message, db }, 'redis cache off: REDIS_URL selects a database this Redis server does not have; fix the number after the last / in REDIS_URL and restart');
        client.disconnect(); // no reconnecting: every attempt would be refused alike
      });
    });
    client.on('close', () => { this.redisSelected = false; });
    client.connect().catch(() => undefined);
    return client;
  }

  private count(layer: 'memory' | 'redis', result: 'hit' | 'miss' | 'error'): void {
    this.metrics?.cache.inc({ layer, result });
  }

  private get redisReady(): boolean {
    return this.redis?.status === 'ready' && this.redisSelected;
  }

  private get memoryOn(): boolean {
    return this.config.memoryEntries > 0 && this.config.memoryBytes > 0;
  }

  /**
   * Cached value or undefined (a miss, or Redis unavailable). A value read from Redis is used only when
   * `valid` accepts it (Redis is shared and outlives versions: anything could be there); one it refuses
   * counts as a Redis error and is a miss.
   */
  async get(key: string, valid: (v: unknown) => boolean = () => true): Promise<CacheValue | undefined> {
    if (this.memoryOn) {
      const v = this.memory.get(key);
      this.count('memory', v === undefined ? 'miss' : 'hit');
      if (v !== undefined) return v;
    }
    if (!this.redis || this.closed) return undefined;
    if (!this.redisReady || this.pendingReads >= REDIS_MAX_PENDING_READS) {
      this.count('redis', 'error');
      return undefined;
    }
    try {
      // counted until Redis really answers, not until the timeout: a hung Redis keeps them
      this.pendingReads++;
      const read = this.redis.get(key).finally(() => { this.pendingReads--; });
      read.catch(() => undefined);
      const s = await withTimeout(read, this.config.redisTimeoutMs);
      if (s === null) {
        this.count('redis', 'miss');
        return undefined;
      }
      const v = JSON.parse(s) as CacheValue;
      if (v === null || v === undefined || !valid(v)) throw new Error('not a result of this shape');
      this.count('redis', 'hit');
      this.memory.set(key, v, estimateBytes(v));
      return v;
    } catch {
      this.count('redis', 'error');
      return undefined;
    }
  }

  /**
   * Store a value in memory and in Redis without waiting for it (never throws, never blocks the request):
   * dropped while Redis is not connected or too many writes already wait on it.
   */
  set(key: string, value: CacheValue): void {
    if (this.memoryOn) this.memory.set(key, value, estimateBytes(value));
    if (!this.redis || this.closed || !this.redisReady) return;
    const text = JSON.stringify(value);
    if (this.pendingWrites >= REDIS_MAX_PENDING_WRITES || this.pendingWriteBytes + text.length > REDIS_MAX_PENDING_WRITE_BYTES) {
      this.count('redis', 'error');
      return;
    }
    this.pendingWrites++;
    this.pendingWriteBytes += text.length;
    this.redis.set(key, text, 'EX', this.config.redisTtlS).catch(() => this.count('redis', 'error')).finally(() => {
      this.pendingWrites--;
      this.pendingWriteBytes -= text.length;
    });
  }

  status(): CacheStatus {
    return {
      memory: { entries: this.memory.size, maxEntries: this.config.memoryEntries, bytes: this.memory.bytes, maxBytes: this.config.memoryBytes },
      redis: this.redis ? { configured: true, status: this.redis.status, pendingWrites: this.pendingWrites, ...(this.redisError ? { error: this.redisError } : {}) } : null,
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
