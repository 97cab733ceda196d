/**
 * The inference thread: a worker_threads entry that owns the face pipeline's onnxruntime sessions.
 * onnxruntime-node's `run` is synchronous on the calling thread (1.30 wraps it in setImmediate), so
 * on the main thread every detector and recognizer run froze the event loop: no request was read, no
 * response written and no decoded image picked up while a batch ran. Here it runs beside the event loop.
 * Protocol (one message per call, answered with the same id): detect, embed, warmup, release.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FaceAnalyzer, type AnalyzerOptions } from '../pipeline/faces/analyzer.js';
import type { DetectOptions } from '../pipeline/faces/scrfd.js';
import type { RgbImage } from '../pipeline/faces/types.js';
import { isFaceoptError } from '../pipeline/errors.js';
import { fullGc, MemoryReclaimer } from './reclaim.js';

export type WorkerRequest =
  | { id: number; op: 'detect'; img: RgbImage; opts: DetectOptions }
  | { id: number; op: 'embed'; crops: RgbImage[] }
  | { id: number; op: 'warmup' }
  | { id: number; op: 'release' };

/** An error crossing the thread boundary: a FaceoptError keeps its code and parameters. */
export interface WorkerError { code: string | null; params: Record<string, unknown>; message: string }

export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WorkerError };

/** What the worker posts once its models are loaded. */
export interface WorkerReady { ready: true; detSize: readonly [number, number]; recognizerInput: readonly [number, number] }

export interface WorkerInit { analyzer: AnalyzerOptions; warmBatch: number }

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('inference-worker.js runs as a worker thread only');
  const init = workerData as WorkerInit;
  let analyzer: FaceAnalyzer;
  try {
    analyzer = await FaceAnalyzer.load(init.analyzer);
  } catch (e) {
    port.postMessage({ id: 0, ok: false, error: toWorkerError(e) } satisfies WorkerReply);
    return;
  }
  const rec = analyzer.requireRecognizer();
  // each detect gets its photo as a copy in this thread's heap; large ones are collected soon after,
  // as on the event-loop thread (several lanes each held such copies until their own next full GC)
  const reclaimer = new MemoryReclaimer(fullGc());
  port.postMessage({ ready: true, detSize: analyzer.detector.detSize, recognizerInput: rec.inputSize } satisfies WorkerReady);
  // each run is synchronous on this thread, but a call's steps around its runs interleave with other
  // calls; 'release' waits for every call already in flight (a session released under a running warm-up
  // aborted the process with a Napi::Error when a failed start released the backend while it warmed)
  const inFlight = new Set<Promise<unknown>>();
  port.on('message', (msg: WorkerRequest) => {
    const before = msg.op === 'release' ? Promise.allSettled([...inFlight]) : null;
    const done = (before ? before.then(() => handle(analyzer, msg)) : handle(analyzer, msg)).then(
      ({ value, transfer }) => port.postMessage({ id: msg.id, ok: true, value } satisfies WorkerReply, transfer),
      (e: unknown) => port.postMessage({ id: msg.id, ok: false, error: toWorkerError(e) } satisfies WorkerReply),
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  });
  async function handle(a: FaceAnalyzer, msg: WorkerRequest): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
    switch (msg.op) {
      case 'detect':
        reclaimer.noteDecoded(msg.img.data.byteLength);
        return { value: await a.detect(msg.img, msg.opts), transfer: [] };
      case 'embed': {
        const out = await a.requireRecognizer().embed(msg.crops);
        return { value: out, transfer: [...new Set(out.embeddings.map((e) => e.buffer as ArrayBuffer))] };
      }
      case 'warmup':
        await a.warmUp();
        // a second recognizer run at a typical batch size so the first burst does not grow the arena
        await a.requireRecognizer().warmUp(1, init.warmBatch);
        return { value: null, transfer: [] };
      case 'release':
        reclaimer.close();
        await a.release();
        return { value: null, transfer: [] };
    }
  }
}

function toWorkerError(e: unknown): WorkerError {
  if (isFaceoptError(e)) return { code: e.code, params: e.params, message: e.message };
  return { code: null, params: {}, message: e instanceof Error ? e.message : String(e) };
}

await main();
