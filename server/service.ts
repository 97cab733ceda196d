/**
 * The face service behind the routes: image bytes in, JSON-ready faces out. It owns the stages
 * (decode on libuv threads, a serial detector lane, the micro-batched recognizer), admission and
 * deadlines, the result cache, and readiness. Every result is a plain JSON object so the same value
 * is returned fresh, from memory, or from Redis.
 */
import { FaceoptError } from '../pipeline/errors.js';
import { notReady } from './errors.js';
import { sha256 } from '../pipeline/fsutil.js';
import { wasmJpegDecoder } from '../pipeline/faces/jpeg-wasm.js';
import { resizeBilinear } from '../pipeline/faces/preprocess.js';
import type { DetectOptions } from '../pipeline/faces/scrfd.js';
import type { DetectedFace, RgbImage } from '../pipeline/faces/types.js';
import { Admission, checkDeadline, Semaphore } from './admission.js';
import type { FaceBackend } from './backend.js';
import { MicroBatcher, type Deadline } from './batcher.js';
import { ResultCache } from './cache.js';
import type { ServerConfig } from './config.js';
import type { ServerMetrics } from './metrics.js';
import type { MemoryReclaimer } from './reclaim.js';
import { TOOL_VERSION } from '../pipeline/version.js';

/**
 * The shape of cached results. Bump it whenever a change makes an answer differ for the same image,
 * models and options (rounding, field names, face order): a shared Redis outlives upgrades, and the
 * scope below keeps an upgraded server from serving older entries. The tool version is in the scope too.
 */
export const CACHE_FORMAT = 2;

/**
 * The part of every cache key that says which server would give the same answer: the models, the
 * settings that change an answer or a refusal, the result format and the tool version.
 */
export function cacheScope(modelsId: string, config: Pick<ServerConfig, 'detSize' | 'maxPixels' | 'provider'>, v: { format?: number; version?: string } = {}): string {
  const format = v.format ?? CACHE_FORMAT;
  const version = v.version ?? TOOL_VERSION;
  return sha256(`${modelsId}:det-size=${config.detSize ?? 'model'}:max-pixels=${config.maxPixels}:provider=${config.provider}:format=${format}:version=${version}`).slice(0, 16);
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const numbers = (v: unknown, n: number): boolean => Array.isArray(v) && v.length === n && v.every(finite);

/**
 * A face as this server writes it (a value read back from the shared Redis is checked before use):
 * box of 4 numbers, score a number or null, keypoints null or pairs, and, exactly when `embedding` says
 * so, a finite embedding of `dim` numbers (any length up to 8192 while the dimension is not known yet)
 * with a finite norm >= 0.
 */
function validFace(f: unknown, embedding: boolean, dim: number | null): boolean {
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return false;
  const o = f as Record<string, unknown>;
  if (!numbers(o.box, 4)) return false;
  if (o.score !== null && !finite(o.score)) return false;
  if (o.kps !== null && !(Array.isArray(o.kps) && o.kps.length <= 16 && o.kps.every((p) => numbers(p, 2)))) return false;
  if (!embedding) return o.embedding === undefined && o.norm === undefined;
  const e = o.embedding;
  if (!Array.isArray(e) || e.length === 0 || e.length > 8192 || (dim !== null && e.length !== dim) || !e.every(finite)) return false;
  return finite(o.norm) && o.norm >= 0;
}

function validImage(v: unknown, embedding: boolean, dim: number | null): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const size = (x: unknown) => Number.isInteger(x) && (x as number) > 0;
  return size(o.width) && size(o.height) && Array.isArray(o.faces) && o.faces.length <= MAX_FACES_PER_IMAGE
    && o.faces.every((f) => validFace(f, embedding, dim));
}

/** A face as the API returns it. Embeddings keep full float32 precision. */
export interface FaceJson {
  box: number[];
  /** Detection score; null for embed_only crops (no detection ran). */
  score: number | null;
  kps: number[][] | null;
  embedding?: number[];
  norm?: number;
}

export interface ImageJson {
  width: number;
  height: number;
  faces: FaceJson[];
}

/** Per-request options (InsightFace-REST names on the wire; see routes). */
export interface FaceQuery {
  threshold?: number;
  limitFaces?: number;
  minFaceSize?: number;
  embedOnly?: boolean;
  extractEmbedding?: boolean;
}

export type ServiceState = 'loading' | 'ready' | 'failed' | 'closing';

const round = (v: number, digits: number): number => Number(v.toFixed(digits));

function faceJson(f: DetectedFace): FaceJson {
  return {
    box: f.box.map((v) => round(v, 2)),
    score: round(f.score, 4),
    kps: f.kps ? f.kps.map((p) => p.map((v) => round(v, 2))) : null,
  };
}

interface Embedded { embedding: number[]; norm: number }

/** Most faces one photo answers with (the largest and most central when there are more): bounds the work of one request. */
export const MAX_FACES_PER_IMAGE = 1000;

export class FaceService {
  readonly admission: Admission;
  readonly cache: ResultCache;
  private backend: FaceBackend | null = null;
  private detector: MicroBatcher<{ img: RgbImage; opts: DetectOptions }, DetectedFace[]> | null = null;
  private recognizer: MicroBatcher<RgbImage, Embedded> | null = null;
  private readonly decodeSlots: Semaphore;
  private readonly cacheScope: string;
  private stateValue: ServiceState = 'loading';
  private failure: unknown = null;
  /** start() while it runs: close() waits for it, so sessions are never torn down while they load. */
  private loading: Promise<void> | null = null;
  /** The recognizer's embedding length, once a result showed it (checks values read from Redis). */
  private embeddingDim: number | null = null;

  constructor(
    private readonly config: ServerConfig,
    modelsId: string,
    private readonly metrics: ServerMetrics,
    private readonly log?: { warn: (o: object, msg: string) => void; error: (o: object, msg: string) => void; info: (o: object, msg: string) => void },
    /** Told about every decode, so large photos' memory goes back soon after their requests (reclaim.ts). */
    private readonly reclaimer: MemoryReclaimer | null = null,
  ) {
    this.admission = new Admission(config.maxQueue, config.timeoutMs, {
      onAdmitted: (n) => metrics.inflight.set(n),
      onRejected: (reason) => metrics.rejected.inc({ reason }),
    });
    this.cache = new ResultCache(config.cache, metrics, log);
    // a cached result is reused only where this server would give the same answer: the models, and the
    // settings that change an answer or a refusal (a shared Redis outlives restarts with other flags)
    this.cacheScope = cacheScope(modelsId, config);
    this.decodeSlots = new Semaphore(config.decodeAhead);
  }

  get state(): ServiceState {
    return this.stateValue;
  }

  /** The error that stopped loading, when state is 'failed'. */
  get loadError(): unknown {
    return this.failure;
  }

  /** Inference lanes of the loaded backend (0 before it loaded). */
  get lanes(): number {
    return this.backend?.lanes ?? 0;
  }

  get backendInfo(): FaceBackend['info'] | null {
    return this.backend?.info ?? null;
  }

  /**
   * Load and warm the backend; the service is ready afterwards. Rejects (state 'failed') when loading
   * fails, unless the service was closed meanwhile (then the backend, if it loaded, is released).
   */
  start(load: () => Promise<FaceBackend>): Promise<void> {
    const p = this.load(load);
    this.loading = p;
    void p.catch(() => undefined).finally(() => { if (this.loading === p) this.loading = null; });
    return p;
  }

  private async load(load: () => Promise<FaceBackend>): Promise<void> {
    // the WebAssembly JPEG decoder (jpeg-wasm.ts) compiles while the models load, so the first small
    // JPEG does not wait ~10 ms for it (it resolves to null, never rejects, where it is unavailable)
    const decoder = wasmJpegDecoder();
    let backend: FaceBackend | null = null;
    try {
      backend = await load();
      await Promise.all([backend.warmUp(), decoder]);
      // closed while the models loaded (the port was taken, a signal came): let the threads go, or
      // the process would stay up serving nothing
      if (this.stateValue === 'closing') {
        await backend.release();
        return;
      }
      this.attach(backend);
      this.stateValue = 'ready';
      this.metrics.ready.set(1);
    } catch (e) {
      if (this.stateValue === 'closing') {
        // stopping anyway: a load that failed meanwhile is no error to report (what loaded is let go)
        await backend?.release().catch(() => undefined);
        return;
      }
      this.stateValue = 'failed';
      this.failure = e;
      throw e;
    }
  }

  /** FACEOPT_ERR_NOT_READY saying why: loading, failed to load, closing, or every inference thread restarting. */
  notReadyError(): FaceoptError {
    if (this.stateValue === 'closing') return notReady('closing');
    if (this.stateValue === 'ready') return notReady('restarting');
    if (this.stateValue === 'failed') return notReady('failed');
    return notReady('loading');
  }

  /** Whether requests can be served now: loaded, warm, and an inference thread alive (/ready). */
  get healthy(): boolean {
    return this.stateValue === 'ready' && (this.backend?.healthy ?? true);
  }

  private attach(backend: FaceBackend): void {
    this.backend = backend;
    backend.setLoadProbe?.(() => this.admission.inflight);
    const m = this.metrics;
    const readiness = () => m.ready.set(this.healthy ? 1 : 0);
    backend.setLaneEvents?.({
      died: (lane, reason) => {
        m.laneRestarts.inc({ outcome: 'died' });
        readiness();
        this.log?.error({ lane, reason }, 'inference thread died; restarting it (its calls in flight failed)');
      },
      restarted: (lane, ms) => {
        m.laneRestarts.inc({ outcome: 'restarted' });
        readiness();
        this.log?.info({ lane, ms: Math.round(ms) }, 'inference thread restarted');
      },
      restartFailed: (lane, error, retryInMs) => {
        m.laneRestarts.inc({ outcome: 'failed' });
        this.log?.error({ lane, err: (error as Error)?.message?.split('\n')[0] ?? String(error), retryInMs }, 'inference thread could not be restarted; trying again');
      },
    });
    this.detector = new MicroBatcher({
      name: 'detector', maxBatch: 1, maxWaitMs: 0, lanes: backend.lanes,
      run: async ([x]) => [await backend.detect(x.img, x.opts)],
      onBatch: (n, ms) => { m.batchSize.observe({ model: 'detector' }, n); m.inference.observe({ model: 'detector' }, ms / 1000); },
      onDepth: (d) => m.queueDepth.set({ stage: 'detector' }, d),
    });
    this.recognizer = new MicroBatcher({
      name: 'recognizer', maxBatch: this.config.batch.maxBatch, maxWaitMs: this.config.batch.maxWaitMs, lanes: backend.lanes,
      run: async (crops) => {
        const { embeddings, norms } = await backend.embed(crops);
        if (embeddings.length > 0) this.embeddingDim = embeddings[0].length;
        return embeddings.map((e, i) => ({ embedding: Array.from(e), norm: round(norms[i], 4) }));
      },
      onBatch: (n, ms) => { m.batchSize.observe({ model: 'recognizer' }, n); m.inference.observe({ model: 'recognizer' }, ms / 1000); },
      onDepth: (d) => m.queueDepth.set({ stage: 'recognizer' }, d),
    });
  }

  private stages(): { backend: FaceBackend; detector: NonNullable<FaceService['detector']>; recognizer: NonNullable<FaceService['recognizer']> } {
    if (this.stateValue !== 'ready' || !this.backend || !this.detector || !this.recognizer) {
      throw this.notReadyError();
    }
    return { backend: this.backend, detector: this.detector, recognizer: this.recognizer };
  }

  /** Admit one request (503 when full or not ready) and run it against the request deadline. */
  run<T>(work: (deadline: Deadline) => Promise<T>): Promise<T> {
    if (this.stateValue !== 'ready') {
      this.metrics.rejected.inc({ reason: 'not_ready' });
      throw this.notReadyError();
    }
    return this.admission.run(work);
  }

  private detectOptions(q: FaceQuery, mainFace: boolean): DetectOptions {
    return {
      threshold: q.threshold ?? this.config.detThreshold,
      maxFaces: mainFace ? 1 : q.limitFaces || MAX_FACES_PER_IMAGE,
      ...(q.minFaceSize ? { minFaceSize: q.minFaceSize } : {}),
    };
  }

  /** Cached result for (op, image, options), computed on a miss. `hit` tells which. */
  private async cached<T>(op: 'main' | 'extract', bytes: Uint8Array, opts: object, compute: () => Promise<T>): Promise<{ value: T; hit: boolean }> {
    const key = `${this.cacheScope}:${op}:${sha256(bytes)}:${JSON.stringify(opts)}`;
    const embedding = op === 'main' || (opts as { embedOnly?: boolean }).embedOnly === true || (opts as { withEmbeddings?: boolean }).withEmbeddings === true;
    const valid = (v: unknown) => (op === 'main' ? validFace(v, true, this.embeddingDim) : validImage(v, embedding, this.embeddingDim));
    const hit = await this.cache.get(key, valid);
    if (hit !== undefined) return { value: hit as T, hit: true };
    const value = await compute();
    this.cache.set(key, value); // not awaited: Redis is written in the background, never on the request's time
    return { value, hit: false };
  }

  /** Decode one photo; the reclaimer hears of its size (large photos' memory goes back soon after). */
  private async decode(backend: FaceBackend, bytes: Uint8Array, source: string): Promise<RgbImage> {
    const img = await backend.decode(bytes, source);
    this.reclaimer?.noteDecoded(img.data.byteLength);
    return img;
  }

  /** Decode (bounded decode-ahead), detect, and align when embeddings are wanted. */
  private async analyze(bytes: Uint8Array, source: string, opts: DetectOptions, align: boolean, deadline: Deadline | null): Promise<{ img: { width: number; height: number }; faces: DetectedFace[]; crops: RgbImage[] }> {
    const { backend, detector } = this.stages();
    this.metrics.queueDepth.set({ stage: 'decode' }, this.decodeSlots.waiting + 1);
    const release = await this.decodeSlots.acquire();
    this.metrics.queueDepth.set({ stage: 'decode' }, this.decodeSlots.waiting);
    try {
      checkDeadline(deadline);
      const img = await this.decode(backend, bytes, source);
      checkDeadline(deadline);
      // highest score first, whether or not limit_faces cut the list (its pick ranks by size and centre)
      const faces = (await detector.submit({ img, opts }, deadline)).slice().sort((a, b) => b.score - a.score);
      const crops = align ? backend.align(img, faces) : [];
      return { img: { width: img.width, height: img.height }, faces, crops };
    } finally {
      release();
    }
  }

  /** A pre-aligned crop: decode, scale to the recognizer input size, embed (no detection). */
  private async embedCrop(bytes: Uint8Array, source: string, deadline: Deadline | null): Promise<ImageJson> {
    const { backend, recognizer } = this.stages();
    const release = await this.decodeSlots.acquire();
    let crop: RgbImage;
    let size: { width: number; height: number };
    try {
      checkDeadline(deadline);
      const img = await this.decode(backend, bytes, source);
      size = { width: img.width, height: img.height };
      const [w, h] = backend.info.recognizer.inputSize;
      crop = img.width === w && img.height === h ? img : resizeBilinear(img, w, h);
    } finally {
      release();
    }
    const e = await recognizer.submit(crop, deadline);
    return { ...size, faces: [{ box: [0, 0, size.width, size.height], score: null, kps: null, ...e }] };
  }

  private async embedFaces(crops: RgbImage[], deadline: Deadline | null): Promise<Embedded[]> {
    const { recognizer } = this.stages();
    return Promise.all(crops.map((c) => recognizer.submit(c, deadline)));
  }

  /** The main face (largest, most central, as `faceopt compare` picks it) with its embedding; 422 when none. */
  async embedMain(bytes: Uint8Array, source: string, q: FaceQuery, deadline: Deadline | null): Promise<{ value: FaceJson; hit: boolean }> {
    const opts = this.detectOptions(q, true);
    return this.cached('main', bytes, { ...opts, embedOnly: q.embedOnly === true }, async () => {
      if (q.embedOnly) return (await this.embedCrop(bytes, source, deadline)).faces[0];
      const { faces, crops } = await this.analyze(bytes, source, opts, true, deadline);
      if (faces.length === 0) throw new FaceoptError('FACEOPT_ERR_NO_FACE', { source, threshold: opts.threshold, ...(opts.minFaceSize ? { minSize: `, faces under ${opts.minFaceSize} px dropped by min_face_size` } : {}) });
      const [e] = await this.embedFaces(crops, deadline);
      return { ...faceJson(faces[0]), ...e };
    });
  }

  /** Every face (after threshold, min size and limit) with box, score, keypoints and, unless turned off, embeddings. */
  async extract(bytes: Uint8Array, source: string, q: FaceQuery, deadline: Deadline | null): Promise<{ value: ImageJson; hit: boolean }> {
    const opts = this.detectOptions(q, false);
    const withEmbeddings = q.extractEmbedding !== false;
    return this.cached('extract', bytes, { ...opts, embedOnly: q.embedOnly === true, withEmbeddings }, async () => {
      if (q.embedOnly) return this.embedCrop(bytes, source, deadline);
      const { img, faces, crops } = await this.analyze(bytes, source, opts, withEmbeddings, deadline);
      const embedded = withEmbeddings ? await this.embedFaces(crops, deadline) : [];
      return { ...img, faces: faces.map((f, i) => ({ ...faceJson(f), ...(embedded[i] ?? {}) })) };
    });
  }

  /** Faces without embeddings. */
  detect(bytes: Uint8Array, source: string, q: FaceQuery, deadline: Deadline | null): Promise<{ value: ImageJson; hit: boolean }> {
    return this.extract(bytes, source, { ...q, embedOnly: false, extractEmbedding: false }, deadline);
  }

  /**
   * Stop: wait for admitted requests (bounded by the caller), release sessions and the cache connection.
   * While the models still load, waits for that first: tearing down inference threads whose sessions
   * were being created aborted the process (Napi::Error, SIGABRT).
   */
  async close(): Promise<void> {
    this.stateValue = 'closing';
    this.metrics.ready.set(0);
    await this.loading?.catch(() => undefined);
    this.backend?.stopWaiting?.(); // calls waiting for a dead thread's restart would hold the drain
    await this.admission.drained();
    await this.detector?.idle();
    await this.recognizer?.idle();
    await this.backend?.release();
    this.backend = null;
    this.reclaimer?.close();
    await this.cache.close();
  }

  /**
   * The forced stop (shutdown timeout, second signal): release the sessions now, without waiting for
   * requests (the process exits next), once a pending load has settled. A process that exits with live
   * inference threads may abort in their teardown (Napi::Error) instead of exiting with its code.
   */
  async releaseNow(): Promise<void> {
    this.stateValue = 'closing';
    await this.loading?.catch(() => undefined);
    await this.backend?.release();
  }
}
