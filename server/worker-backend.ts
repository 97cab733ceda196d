/**
 * The production backend with inference off the event loop: detector and recognizer run in worker
 * threads (`inference-worker.ts`), one per inference lane (`--lanes`), each with its own sessions;
 * decoding (sharp, on libuv threads) and alignment stay here. While the lanes run batches, this thread
 * keeps reading requests, writing responses and collecting decoded images for the next batch.
 * `--no-inference-thread` falls back to `AnalyzerBackend`.
 */
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { alignFacesTo } from '../pipeline/faces/align.js';
import type { Embeddings } from '../pipeline/faces/arcface.js';
import { decodeImage } from '../pipeline/faces/decode.js';
import type { DetectOptions } from '../pipeline/faces/scrfd.js';
import type { DetectedFace, RgbImage } from '../pipeline/faces/types.js';
import { ERRORS, FaceoptError, type ErrorCode } from '../pipeline/errors.js';
import { analyzerOptionsFor } from './analyzer-options.js';
import { notReady } from './errors.js';
import type { BackendInfo, FaceBackend, LaneEvents } from './backend.js';
import type { ServerConfig } from './config.js';
import { selectModels, type ServedModels } from './models.js';
import type { WorkerError, WorkerInit, WorkerReady, WorkerReply, WorkerRequest } from './inference-worker.js';

/**
 * For `faceopt serve`: select the models and start the inference thread loading them before the
 * server's own modules load (they take ~300 ms, which the thread's start-up now overlaps). Null where
 * this process serves nothing itself (cluster primary) or the inference thread is off.
 */
export async function prestartBackend(config: ServerConfig): Promise<{ models: ServedModels; backend: () => Promise<FaceBackend> } | null> {
  if (!config.inferenceThread || (config.workers > 1 && cluster.isPrimary)) return null;
  const models = await selectModels(config);
  const loading = WorkerBackend.load(models, config);
  loading.catch(() => undefined); // the service reports it when it starts
  return { models, backend: () => loading };
}

/** The compiled worker next to this module, or (running from the TypeScript sources, as tests do) in dist/. */
export function inferenceWorkerFile(): URL {
  const here = new URL('./inference-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  return new URL('../dist/server/inference-worker.js', import.meta.url);
}

function fromWorkerError(e: WorkerError): Error {
  if (e.code !== null && e.code in ERRORS) return new FaceoptError(e.code as ErrorCode, e.params);
  return new FaceoptError('FACEOPT_ERR_INFERENCE', { model: '(inference thread)', reason: e.message });
}

type Pending = { resolve: (v: unknown) => void; reject: (e: unknown) => void };
/** A request without its id, member by member of the union. */
type Call = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** One inference thread with its own sessions; calls are answered in order by id. */
export class Lane {
  private nextId = 1;
  /** Calls sent so far. */
  calls = 0;
  private readonly pending = new Map<number, Pending>();
  private stopped: Error | null = null;
  /** Told once when the thread fails or exits unasked (not after `retire()`): set by `watchDeath`. */
  private onDeath: ((reason: string) => void) | null = null;
  /** Why the thread ended, once it has. */
  private deathReason: string | null = null;
  private retired = false;

  constructor(readonly worker: Worker) {
    worker.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(fromWorkerError(m.error));
    });
    const stop = (reason: string) => {
      const first = this.stopped === null;
      this.stopped ??= new FaceoptError('FACEOPT_ERR_INFERENCE', { model: '(inference thread)', reason });
      for (const p of this.pending.values()) p.reject(this.stopped);
      this.pending.clear();
      if (first) this.deathReason = reason;
      if (first && !this.retired) this.onDeath?.(reason);
    };
    worker.on('error', (e: unknown) => stop(`the inference thread failed: ${e instanceof Error ? e.message : String(e)}`));
    worker.on('exit', (code) => stop(`the inference thread exited (code ${code})`));
  }

  /** Calls sent and not yet answered. */
  get outstanding(): number {
    return this.pending.size;
  }

  get alive(): boolean {
    return this.stopped === null;
  }

  /**
   * Tell `fn` when the thread dies unasked, and at once when it already has: lanes load side by side,
   * and one that was ready first could end while the others still loaded, before anyone watched it (it
   * stayed dead for good, the server a lane short with /ready at 200).
   */
  watchDeath(fn: (reason: string) => void): void {
    this.onDeath = fn;
    if (this.deathReason !== null && !this.retired) fn(this.deathReason);
  }

  /** The thread is being ended on purpose (release): its exit is no death. */
  retire(): void {
    this.retired = true;
  }

  call<T>(req: Call, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    this.calls++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /** Start an inference thread and wait until its models are loaded. */
  static async start(init: WorkerInit): Promise<{ lane: Lane; ready: WorkerReady }> {
    const worker = new Worker(inferenceWorkerFile(), { workerData: init });
    const ready = await new Promise<WorkerReady>((resolve, reject) => {
      const onMessage = (m: WorkerReady | WorkerReply) => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        if ('ready' in m) resolve(m);
        else reject(m.ok ? new Error('unexpected first message from the inference thread') : fromWorkerError(m.error));
      };
      const onError = (e: Error) => { worker.off('message', onMessage); reject(new FaceoptError('FACEOPT_ERR_INFERENCE', { model: '(inference thread)', reason: e.message })); };
      // a thread that ends without an error or a message would leave its start (and a restart) waiting for good
      const onExit = (code: number) => { worker.off('message', onMessage); reject(new FaceoptError('FACEOPT_ERR_INFERENCE', { model: '(inference thread)', reason: `the inference thread exited (code ${code}) before its models loaded` })); };
      worker.once('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    }).catch(async (e: unknown) => { await worker.terminate(); throw e; });
    return { lane: new Lane(worker), ready };
  }
}

/** Longest wait between two restarts of an inference thread that keeps failing to load. */
const MAX_RESTART_DELAY_MS = 30_000;

export class WorkerBackend implements FaceBackend {
  /** Wait before the second try to restart a lane whose restart failed (doubling up to 30 s; tests shorten it). */
  static restartDelayMs = 1_000;

  private constructor(
    private readonly laneList: Lane[],
    /** The lane with every thread, used while no other lane has a call in flight (`--latency-lane`). */
    private latencyLane: Lane | null,
    /** How each lane was started (the narrow lanes in order, then the latency lane): a dead one restarts so. */
    private readonly inits: readonly WorkerInit[],
    readonly info: BackendInfo,
    private readonly recognizerInput: readonly [number, number],
    private readonly maxPixels: number,
  ) {
    this.allLanes = latencyLane ? [...laneList, latencyLane] : [...laneList];
    this.allLanes.forEach((l, i) => this.watch(l, i));
  }

  /** The narrow lanes and the latency lane (`lane()` reads it on every call); a restarted lane takes its dead one's place. */
  private readonly allLanes: Lane[];
  private laneEvents: LaneEvents | null = null;
  /** Deaths seen before `setLaneEvents` (a lane dead before the backend was built), told when it is called. */
  private readonly untoldDeaths: [number, string][] = [];
  /** Calls that found no live lane, waiting for a restart (each at most `waitLimitMs`). */
  private readonly waiters = new Set<{ resolve: () => void; reject: (e: unknown) => void }>();
  /** Restarts loading or warming now: release() waits for them (a process that exits while a thread creates its sessions aborts). */
  private readonly restarting = new Set<Promise<void>>();
  /** How long a call waits for a restart: the request deadline (`--timeout-ms`), so its admission slot is not held past it. */
  private waitLimitMs = 10_000;

  setLaneEvents(events: LaneEvents): void {
    this.laneEvents = events;
    for (const [index, reason] of this.untoldDeaths.splice(0)) events.died?.(index, reason);
  }

  /** Whether a lane can run calls now (false while every thread is dead and restarting). */
  get healthy(): boolean {
    return this.allLanes.some((l) => l.alive);
  }

  /**
   * A thread that dies unasked (an uncaught error in it, its exit) is started again with the settings it
   * had; its calls in flight fail (500 FACEOPT_ERR_INFERENCE), later calls go to the live lanes or wait
   * for the restart. Before, the dead lane stayed dead: with one lane every request after it was a 500
   * while /ready still answered 200.
   */
  private watch(lane: Lane, index: number): void {
    lane.watchDeath((reason) => {
      if (this.released) return;
      if (this.laneEvents) this.laneEvents.died?.(index, reason);
      else this.untoldDeaths.push([index, reason]);
      this.restart(index, 0);
    });
  }

  private restart(index: number, attempt: number): void {
    if (this.released) return;
    const p = this.startAgain(index, attempt);
    this.restarting.add(p);
    void p.finally(() => this.restarting.delete(p));
  }

  private async startAgain(index: number, attempt: number): Promise<void> {
    const t0 = performance.now();
    let started: Lane | null = null;
    try {
      started = (await Lane.start(this.inits[index]!)).lane;
      if (!this.released) await started.call({ op: 'warmup' });
    } catch (e) {
      if (started) { started.retire(); await started.worker.terminate(); }
      if (this.released) return;
      const delay = Math.min(MAX_RESTART_DELAY_MS, WorkerBackend.restartDelayMs * 2 ** attempt);
      this.laneEvents?.restartFailed?.(index, e, delay);
      // calls waiting for a lane are answered now rather than held until a later try: 503 NOT_READY (the
      // reason, which may name a model path, goes to the log through restartFailed, not to clients)
      if (!this.healthy) this.answerWaiters(notReady('restarting'));
      setTimeout(() => this.restart(index, attempt + 1), delay).unref();
      return;
    }
    if (this.released) { started.retire(); await started.worker.terminate(); return; }
    this.allLanes[index] = started;
    if (index < this.laneList.length) this.laneList[index] = started;
    else this.latencyLane = started;
    this.watch(started, index);
    this.laneEvents?.restarted?.(index, performance.now() - t0);
    for (const w of [...this.waiters]) { this.waiters.delete(w); w.resolve(); }
  }

  private answerWaiters(e: unknown): void {
    for (const w of [...this.waiters]) { this.waiters.delete(w); w.reject(e); }
  }

  /** Calls waiting for a restart are answered 503 NOT_READY now (the server is closing: they would hold its drain). */
  stopWaiting(): void {
    this.noWaiting = true;
    this.answerWaiters(notReady('closing'));
  }

  /** Set by stopWaiting: a call that finds no live lane is answered at once. */
  private noWaiting = false;

  /** Inference threads (each with its own detector and recognizer sessions). */
  get lanes(): number {
    return this.laneList.length;
  }

  /**
   * Start `config.lanes` inference threads and load both models in each, with the server's settings
   * (`config.intraOpThreads` onnxruntime threads per lane), and the latency lane when configured
   * (`config.latencyLaneThreads` threads). They load side by side.
   */
  static async load(models: ServedModels, config: ServerConfig): Promise<WorkerBackend> {
    const file = inferenceWorkerFile();
    if (!existsSync(fileURLToPath(file))) {
      throw new FaceoptError('FACEOPT_ERR_INFERENCE', { model: fileURLToPath(file), reason: 'the compiled inference thread is missing: run `npm run build`, or serve with --no-inference-thread' });
    }
    const init: WorkerInit = { analyzer: analyzerOptionsFor(models, config), warmBatch: Math.min(4, config.batch.maxBatch) };
    const inits = Array.from({ length: config.lanes }, () => init);
    if (config.latencyLaneThreads !== null) {
      inits.push({ ...init, analyzer: analyzerOptionsFor(models, { ...config, intraOpThreads: config.latencyLaneThreads }) });
    }
    const started = await Promise.allSettled(inits.map((i) => Lane.start(i)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.lane.worker.terminate() : undefined)));
      throw failed.reason;
    }
    const lanes = started.map((r) => (r as PromiseFulfilledResult<{ lane: Lane; ready: WorkerReady }>).value);
    const { ready } = lanes[0];
    const latency = config.latencyLaneThreads !== null ? lanes.pop()!.lane : null;
    const backend = new WorkerBackend(lanes.map((l) => l.lane), latency, inits, {
      detector: { path: models.detector.path, inputSize: ready.detSize },
      recognizer: { path: models.recognizer.path, inputSize: ready.recognizerInput },
    }, ready.recognizerInput, config.maxPixels);
    backend.waitLimitMs = config.timeoutMs;
    return backend;
  }

  /** Requests in the server (set by the service); the latency lane serves only a lone one. */
  private requestsInFlight: () => number = () => 0;

  setLoadProbe(requestsInFlight: () => number): void {
    this.requestsInFlight = requestsInFlight;
  }

  /** Calls each lane has been sent (the latency lane's separately), for tests and diagnostics. */
  get callsPerLane(): { lanes: number[]; latency: number | null } {
    return { lanes: this.laneList.map((l) => l.calls), latency: this.latencyLane?.calls ?? null };
  }

  /**
   * The latency lane while no lane has a call in flight and the server holds at most one request;
   * otherwise the live lane with the fewest calls in flight (the batchers keep at most one run per lane).
   * Without the request count, a saturated server gave the latency lane every call that found both
   * lanes between two runs, and ran three threads on two cores (INT8 crops 0.88 of the engine).
   */
  private lane(): Lane | null {
    if (this.latencyLane?.alive && this.requestsInFlight() <= 1 && this.allLanes.every((l) => l.outstanding === 0)) return this.latencyLane;
    const live = this.laneList.filter((l) => l.alive);
    if (live.length === 0) return this.latencyLane?.alive ? this.latencyLane : null;
    return live.reduce((a, b) => (b.outstanding < a.outstanding ? b : a));
  }

  /** A call on the chosen lane; with every lane dead, on the first restarted (503 NOT_READY past the wait limit). */
  private call<T>(req: Call): Promise<T> {
    const lane = this.lane();
    if (lane) return lane.call<T>(req);
    if (this.released) return this.allLanes[0]!.call<T>(req); // rejects with the thread's end
    if (this.noWaiting) return Promise.reject(notReady('closing'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters.delete(w); reject(notReady('restarting')); }, this.waitLimitMs);
      const w = { resolve: () => { clearTimeout(timer); resolve(); }, reject: (e: unknown) => { clearTimeout(timer); reject(e); } };
      this.waiters.add(w);
    }).then(() => this.call<T>(req));
  }

  decode(bytes: Uint8Array, source: string): Promise<RgbImage> {
    return decodeImage(bytes, { maxPixels: this.maxPixels, source });
  }

  detect(img: RgbImage, opts: DetectOptions): Promise<DetectedFace[]> {
    // copied, not transferred: the image is aligned here afterwards
    return this.call({ op: 'detect', img: { width: img.width, height: img.height, data: img.data }, opts });
  }

  align(img: RgbImage, faces: readonly DetectedFace[]): RgbImage[] {
    return alignFacesTo(img, faces, this.recognizerInput, this.info.detector.path);
  }

  embed(crops: readonly RgbImage[]): Promise<Embeddings> {
    return this.call({ op: 'embed', crops: crops.map((c) => ({ width: c.width, height: c.height, data: c.data })) });
  }

  async warmUp(): Promise<void> {
    await Promise.all(this.allLanes.map((l) => l.call({ op: 'warmup' })));
  }

  private released: Promise<void> | null = null;

  /**
   * Release every lane's sessions and end its thread. Once: the service and a start-up failure may both
   * release the same backend, and a second release of a lane's sessions aborted the process (Napi::Error).
   */
  release(): Promise<void> {
    this.released ??= Promise.all([
      ...this.allLanes.map(async (l) => {
        l.retire();
        if (l.alive) await l.call({ op: 'release' }).catch(() => undefined);
        await l.worker.terminate();
      }),
      // a restart loading now ends its thread once loaded (it sees released): waited for, so the process
      // never exits while that thread creates its sessions (Napi::Error abort, exit 134)
      ...[...this.restarting].map((p) => p.catch(() => undefined)),
    ]).then(() => undefined);
    this.answerWaiters(new FaceoptError('FACEOPT_ERR_SHUTTING_DOWN'));
    return this.released;
  }
}
