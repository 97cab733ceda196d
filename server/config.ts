/**
 * Server settings in one place: every knob `faceopt serve` exposes, its default, and the check that
 * names the flag in its error. The app factory, the CLI and the benchmark all build a ServerConfig
 * through resolveServerConfig so defaults cannot drift apart.
 */
import { availableCores } from './cpus.js';
import { checkNumber, FaceoptError } from '../pipeline/errors.js';
import type { Provider } from '../pipeline/runtime.js';

/** Embedding-cache settings. */
export interface CacheConfig {
  /** In-memory LRU entries (0 turns the memory layer off). */
  memoryEntries: number;
  /**
   * Estimated heap bytes the in-memory LRU may hold (0 turns the memory layer off): a 1000-face extract
   * result with 512-d embeddings is ~5 MiB, so an entry bound alone let 2048 of them exhaust the heap.
   * A single result over 1/8 of it is not kept in memory.
   */
  memoryBytes: number;
  /** Redis URL for a cache shared by replicas (REDIS_URL); null for none. */
  redisUrl: string | null;
  /** Redis entry lifetime in seconds. */
  redisTtlS: number;
  /** Longest a Redis get/set may take before it counts as an error and the request goes on without it. */
  redisTimeoutMs: number;
}

/** Micro-batching of the recognizer. */
export interface BatchConfig {
  /** Most aligned crops per recognizer run; 1 turns batching off. */
  maxBatch: number;
  /** Longest an idle recognizer waits for more crops before running a partial batch. */
  maxWaitMs: number;
}

export interface ServerConfig {
  host: string;
  port: number;
  /** Bearer API key; null leaves the API open (bind to loopback then). */
  apiKey: string | null;
  /** Largest request body (multipart file, raw image or JSON) in bytes. */
  bodyLimit: number;
  /** Largest decoded image, width x height. */
  maxPixels: number;
  /** Most images in one /v1/extract request. */
  maxImagesPerRequest: number;
  /** Requests admitted at once (being decoded, queued or inferred); more get 503 + Retry-After. */
  maxQueue: number;
  /** Photos decoded ahead of the detector at once (bounds decoded-pixel memory). */
  decodeAhead: number;
  /** Per-request deadline in ms (503 FACEOPT_ERR_TIMEOUT past it). */
  timeoutMs: number;
  batch: BatchConfig;
  cache: CacheConfig;
  /** Runtime session settings. */
  provider: Provider;
  intraOpThreads: number;
  /** Detector input size (dynamic-input detectors only). */
  detSize: number | null;
  /** Default detection score threshold. */
  detThreshold: number;
  /** Cosine match threshold for /v1/verify; null takes the recognizer report's, else the default. */
  matchThreshold: number | null;
  /** Serve variants whose report failed its gates. */
  allowFailed: boolean;
  /** Model selection: direct files win over the manifest. */
  detector: string | null;
  recognizer: string | null;
  manifest: string | null;
  /** Worker processes (node:cluster); threads are split across them. */
  workers: number;
  /**
   * Inference lanes per worker: threads with their own detector and recognizer sessions, each running
   * one batch at a time (inference-thread backend only). Threads are split across them.
   */
  lanes: number;
  /**
   * Threads of one extra lane that holds every thread of the worker and runs calls only while no other
   * lane has one in flight (a lone request gets all the cores; a busy server runs the narrow lanes);
   * null without it. Needs lanes >= 2.
   */
  latencyLaneThreads: number | null;
  /**
   * Run the detector and recognizer in a worker thread (default), so the event loop keeps reading
   * requests and writing responses while a batch runs; false runs them on the event loop.
   */
  inferenceThread: boolean;
  /** Log level for the JSON logs on stdout (pino levels, or 'silent'). */
  logLevel: string;
  /** How long SIGTERM waits for in-flight requests before exiting anyway. */
  shutdownTimeoutMs: number;
  /**
   * A request's headers must arrive within this many ms of its first byte (of the connection, for the
   * first request), or it gets 408 FACEOPT_ERR_REQUEST_TIMEOUT and the connection closes (slow-loris guard).
   */
  headersTimeoutMs: number;
}

/** Cores this process may use: the affinity mask capped by a container's CPU quota (server/cpus.ts). */
export { availableCores };

/**
 * Lowest detection threshold a request or `--det-threshold` may set: at 0 a group photo gave 7,222
 * "faces" (every anchor), and a server-wide 0 answered every request so.
 */
export const MIN_DET_THRESHOLD = 0.05;

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 5555,
  bodyLimit: 10 * 1024 * 1024,
  maxPixels: 16_000_000,
  maxImagesPerRequest: 16,
  maxQueue: 64,
  decodeAhead: 4,
  timeoutMs: 10_000,
  /** With cuda/tensorrt, where larger batches keep paying. */
  maxBatch: 32,
  /**
   * On the CPU provider. Past ~8 a batch gains nothing per image on the CPU and its activations leave the
   * caches: mobileface, two one-thread lanes, 172-175 img/s at batches 1-4, 166-172 at 6-8, 160 at 12,
   * 156 at 16 (2026-12-06); its server at 32 connections 164.0-165.3 req/s with 8 against 154.5-155.5
   * with 32 and 156.5-157.3 with 4; the IResNet-50 INT8 fixture alike either way (56.0 vs 53.8-56.8).
   */
  maxBatchCpu: 8,
  maxWaitMs: 2,
  memoryEntries: 2048,
  memoryBytes: 256 * 1024 * 1024,
  redisTtlS: 7 * 24 * 3600,
  redisTimeoutMs: 250,
  detThreshold: 0.5,
  workers: 1,
  inferenceThread: true,
  logLevel: 'info',
  shutdownTimeoutMs: 15_000,
  /** Node's own default. */
  headersTimeoutMs: 60_000,
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Settings as a user or test gives them: everything optional, strings accepted for numbers. */
export type ServerConfigInput = Partial<Omit<ServerConfig, 'batch' | 'cache' | 'latencyLaneThreads'>> & {
  batch?: Partial<BatchConfig>;
  cache?: Partial<CacheConfig>;
  /** Add the latency lane (see ServerConfig.latencyLaneThreads). */
  latencyLane?: boolean;
};

/**
 * The inference layout when `--lanes` is not given: on the CPU provider, with the inference thread, at
 * least 2 cores per worker and no explicit `--threads`, two lanes with half the cores each plus a latency lane with all of
 * them; otherwise one lane. Measured on 2 cores (docs/server.md, 2026-12-05): a lone photo 32 ms p50
 * like one lane (two lanes alone: 40 ms), and under load two lanes' throughput (INT8 IResNet-50
 * fixture: crops 0.88-0.89 of the engine against 0.80 with one lane, LFW photos 26-27 req/s against 19).
 */
export function autoLanes(input: Pick<ServerConfigInput, 'intraOpThreads' | 'provider'>, inferenceThread: boolean, coresPerWorker: number): { lanes: number; latencyLane: boolean } {
  // on cuda/tensorrt every lane would hold its own GPU sessions (engines), and CPU threads matter little
  const cpu = input.provider === undefined || input.provider === 'cpu';
  return cpu && inferenceThread && coresPerWorker >= 2 && input.intraOpThreads === undefined ? { lanes: 2, latencyLane: true } : { lanes: 1, latencyLane: false };
}

/**
 * Fill defaults and check every value, naming the setting in FACEOPT_ERR_BAD_ARGUMENT. Threads default
 * to floor(cores / (workers x lanes)), at least 1, so workers and lanes never oversubscribe the machine;
 * lanes to `autoLanes`.
 */
export function resolveServerConfig(input: ServerConfigInput = {}): ServerConfig {
  const workers = checkNumber('--workers', input.workers ?? DEFAULTS.workers, { min: 1, max: 256, integer: true });
  const inferenceThread = typeof input.inferenceThread === 'boolean' ? input.inferenceThread : DEFAULTS.inferenceThread;
  const auto = autoLanes(input, inferenceThread, Math.floor(availableCores() / workers));
  const lanes = input.lanes === undefined ? auto.lanes : checkNumber('--lanes', input.lanes, { min: 1, max: 64, integer: true });
  if (lanes > 1 && !inferenceThread) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: '--lanes 1 without the inference thread (lanes are inference threads)', name: 'lanes', received: String(lanes) });
  }
  const threads = input.intraOpThreads ?? Math.max(1, Math.floor(availableCores() / (workers * lanes)));
  // a config resolved before (buildApp resolves what `faceopt serve` resolved) keeps its latency lane
  const resolved = (input as Partial<ServerConfig>).latencyLaneThreads;
  const latencyLane = input.latencyLane ?? (resolved !== undefined ? resolved !== null : input.lanes === undefined && auto.latencyLane);
  if (latencyLane && lanes < 2) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: '--lanes 2 or more with --latency-lane (it stands in for them when they are idle)', name: 'lanes', received: String(lanes) });
  }
  const logLevel = input.logLevel ?? DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `one of ${LOG_LEVELS.join(', ')}`, name: 'log level', received: logLevel });
  }
  const host = input.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || host.trim() === '') {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a host name or IP address', name: 'host', received: String(host) });
  }
  // a key read from a file or a secret often ends with a newline; the header's value is trimmed too, so
  // an untrimmed key could never match
  if (input.apiKey !== undefined && input.apiKey !== null && typeof input.apiKey !== 'string') {
    // never "no key" (auth off) for a value of the wrong type
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'an API key string', name: 'api key', received: typeof input.apiKey });
  }
  const apiKey = typeof input.apiKey === 'string' ? input.apiKey.trim() : null;
  if (apiKey !== null && apiKey.length < 8) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'an API key of at least 8 characters (leading and trailing whitespace does not count)', name: 'api key', received: `${apiKey.length} characters` });
  }
  const c = input.cache ?? {};
  // an outage is served through (cache off); a URL that can never reach Redis is a setting to fix now
  const redisUrl = c.redisUrl ?? null;
  const parsed = redisUrl !== null && URL.canParse(redisUrl) ? new URL(redisUrl) : null;
  if (redisUrl !== null && !(parsed && /^rediss?:$/.test(parsed.protocol) && parsed.host !== '' && /^\/?\d*$/.test(parsed.pathname))) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a redis:// or rediss:// URL, e.g. redis://localhost:6379 (or /N for database N)', name: 'the Redis URL (--redis-url or REDIS_URL)', received: redisUrl.replace(/\/\/[^@/]*@/, '//***@') });
  }
  const b = input.batch ?? {};
  const provider = input.provider ?? 'cpu';
  return {
    host,
    port: checkNumber('--port', input.port ?? DEFAULTS.port, { min: 0, max: 65535, integer: true }),
    apiKey,
    bodyLimit: checkNumber('--body-limit', input.bodyLimit ?? DEFAULTS.bodyLimit, { min: 1024, max: 1 << 30, integer: true }),
    maxPixels: checkNumber('--max-pixels', input.maxPixels ?? DEFAULTS.maxPixels, { min: 1, integer: true }),
    maxImagesPerRequest: checkNumber('--max-images', input.maxImagesPerRequest ?? DEFAULTS.maxImagesPerRequest, { min: 1, max: 1024, integer: true }),
    maxQueue: checkNumber('--queue', input.maxQueue ?? DEFAULTS.maxQueue, { min: 1, max: 100_000, integer: true }),
    decodeAhead: checkNumber('decode ahead', input.decodeAhead ?? DEFAULTS.decodeAhead, { min: 1, max: 256, integer: true }),
    timeoutMs: checkNumber('--timeout-ms', input.timeoutMs ?? DEFAULTS.timeoutMs, { min: 1, max: 3_600_000, integer: true }),
    batch: {
      maxBatch: checkNumber('--max-batch', b.maxBatch ?? (provider === 'cpu' ? DEFAULTS.maxBatchCpu : DEFAULTS.maxBatch), { min: 1, max: 1024, integer: true }),
      maxWaitMs: checkNumber('--max-wait-ms', b.maxWaitMs ?? DEFAULTS.maxWaitMs, { min: 0, max: 1000 }),
    },
    cache: {
      memoryEntries: checkNumber('--cache-size', c.memoryEntries ?? DEFAULTS.memoryEntries, { min: 0, max: 10_000_000, integer: true }),
      memoryBytes: checkNumber('--cache-bytes', c.memoryBytes ?? DEFAULTS.memoryBytes, { min: 0, max: 2 ** 45, integer: true }),
      redisUrl,
      redisTtlS: checkNumber('redis ttl', c.redisTtlS ?? DEFAULTS.redisTtlS, { min: 1, integer: true }),
      redisTimeoutMs: checkNumber('redis timeout', c.redisTimeoutMs ?? DEFAULTS.redisTimeoutMs, { min: 1, max: 60_000, integer: true }),
    },
    provider,
    intraOpThreads: checkNumber('--threads', threads, { min: 1, max: 256, integer: true }),
    detSize: input.detSize === undefined || input.detSize === null ? null : checkNumber('--det-size', input.detSize, { min: 32, max: 4096, integer: true }),
    detThreshold: checkNumber('--det-threshold', input.detThreshold ?? DEFAULTS.detThreshold, { min: MIN_DET_THRESHOLD, max: 1 }),
    matchThreshold: input.matchThreshold === undefined || input.matchThreshold === null ? null : checkNumber('--match-threshold', input.matchThreshold, { min: -1, max: 1 }),
    allowFailed: input.allowFailed ?? false,
    detector: input.detector ?? null,
    recognizer: input.recognizer ?? null,
    manifest: input.manifest ?? null,
    workers,
    lanes,
    latencyLaneThreads: latencyLane ? threads * lanes : null,
    inferenceThread,
    logLevel,
    shutdownTimeoutMs: checkNumber('--shutdown-timeout-ms', input.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs, { min: 0, max: 600_000, integer: true }),
    headersTimeoutMs: checkNumber('--headers-timeout-ms', input.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs, { min: 100, max: 600_000, integer: true }),
  };
}
