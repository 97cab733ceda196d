/**
 * The ONE module that imports onnxruntime-node. Everything else asks this module for sessions and
 * tensors, so execution providers, thread settings and error mapping live in one place.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { FaceoptError } from './errors.js';

// onnxruntime 1.29+ starts Microsoft's telemetry on Linux too when it creates its environment (at the
// first session): DNS lookups of its collector, a device id under $HOME/.cache, a /tmp/mat-debug-PID.log
// per process (1,840 of them here), and a warning line where $HOME is read-only. Off unless the user set
// the variable; it counts only before the first session (docs/deploy.md, "Telemetry").
process.env.ORT_DISABLE_TELEMETRY ??= '1';

export type Provider = 'cpu' | 'cuda' | 'tensorrt';
/** Every provider faceopt knows, in order of preference for CPU-only machines. */
export const PROVIDERS: readonly Provider[] = ['cpu', 'cuda', 'tensorrt'];

export interface SessionOptions {
  /** Execution provider (default cpu). cuda/tensorrt fall back to cpu for nodes they cannot run. */
  provider?: Provider;
  /** Threads inside one operator (default: onnxruntime's choice). */
  intraOpThreads?: number;
  /** Threads across independent operators; only used with executionMode 'parallel'. */
  interOpThreads?: number;
  /** 'sequential' (default) or 'parallel' operator scheduling. */
  executionMode?: 'sequential' | 'parallel';
  /** Graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** GPU ordinal for cuda/tensorrt (default 0). */
  deviceId?: number;
  /**
   * onnxruntime's memory pattern (default on): it plans one block per input shape. Off for graphs that
   * expose hundreds of intermediate tensors (calibration probes): there it made every run ~6x slower
   * (mobileface probe, batch 16: 138 -> 22 ms per face).
   */
  memPattern?: boolean;
  /**
   * onnxruntime's CPU memory arena (default on). Off for sessions that are created, run once and
   * released, many times over (mixed-precision searches): each arena's fresh pages were faulted in and
   * handed back per session. Measured on mobileface, 179 ranking sessions: 51-65 s (sys 21-28 s) with
   * the arena, 20.7 s (sys 3.7 s) without. Whether glibc happened to keep freed memory made it vary.
   */
  arena?: boolean;
  /**
   * Whether onnxruntime's intra-op threads spin while waiting for the next operator (onnxruntime's
   * default: yes; `session.intra_op.allow_spinning`). Spinning saves a wake-up per operator when one
   * session has the cores to itself (mobileface INT8 alone, batch 1: 3.1 ms spinning, 4.5-4.7 ms not),
   * but a session's threads keep spinning after its run ends and take cores from whatever runs next:
   * FaceAnalyzer turns it off for its detector + recognizer pair (see there).
   */
  spinning?: boolean;
}

export type Tensor = ort.Tensor;
export type Feeds = Record<string, ort.Tensor>;
export type Session = ort.InferenceSession;

/** Shared-library file each non-CPU provider needs next to the onnxruntime-node binding. */
const PROVIDER_LIBS: Record<Exclude<Provider, 'cpu'>, string[]> = {
  cuda: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'],
  tensorrt: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_tensorrt.so'],
};

function bindingDir(): string | null {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    return path.join(path.dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

/**
 * Execution providers this installation can actually use. onnxruntime-node 1.30 lists cuda and
 * tensorrt as supported on linux-x64 but ships them "unbundled": they work only when their provider
 * libraries were installed next to the binding (the package's CUDA install option). A provider is
 * reported only when the binding supports it AND (it is bundled OR its libraries are present).
 */
export function availableProviders(): Provider[] {
  const supported = new Map(ort.listSupportedBackends().map((b) => [b.name, b.bundled]));
  const dir = bindingDir();
  const out: Provider[] = ['cpu'];
  for (const p of ['cuda', 'tensorrt'] as const) {
    if (!supported.has(p)) continue;
    const libsPresent = dir !== null && PROVIDER_LIBS[p].every((lib) => existsSync(path.join(dir, lib)));
    if (supported.get(p) === true || libsPresent) out.push(p);
  }
  return out;
}

/**
 * Throw FACEOPT_ERR_PROVIDER_UNAVAILABLE (naming what is available) unless `provider` can be used
 * here. Called by createSession so a missing GPU stack is reported before any model is loaded.
 */
export function requireProvider(provider: string): Provider {
  const available = availableProviders();
  if (!(PROVIDERS as readonly string[]).includes(provider)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `one of ${PROVIDERS.join(', ')}`, name: 'provider', received: provider });
  }
  if (!available.includes(provider as Provider)) {
    const listed = ort.listSupportedBackends().some((b) => b.name === provider);
    throw new FaceoptError('FACEOPT_ERR_PROVIDER_UNAVAILABLE', {
      provider,
      reason: listed
        ? `this onnxruntime-node build lists it but its provider libraries (${PROVIDER_LIBS[provider as 'cuda' | 'tensorrt'].join(', ')}) are not installed`
        : 'this onnxruntime-node build does not include it',
      available: available.join(', '),
    });
  }
  return provider as Provider;
}

function executionProviders(provider: Provider, deviceId: number): ort.InferenceSession.ExecutionProviderConfig[] {
  if (provider === 'cuda') return [{ name: 'cuda', deviceId }, 'cpu'];
  if (provider === 'tensorrt') return [{ name: 'tensorrt', deviceId }, { name: 'cuda', deviceId }, 'cpu'];
  return ['cpu'];
}

/** Create an inference session from a model path or bytes; provider and thread options are checked first. */
export async function createSession(model: string | Uint8Array, opts: SessionOptions = {}): Promise<Session> {
  const provider = requireProvider(opts.provider ?? 'cpu');
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: executionProviders(provider, opts.deviceId ?? 0),
    graphOptimizationLevel: opts.optimization ?? 'all',
    executionMode: opts.executionMode ?? 'sequential',
    // fatal only: an error is reported once, as our coded error (onnxruntime also printed its own red line)
    logSeverityLevel: 4,
  };
  if (opts.intraOpThreads !== undefined) so.intraOpNumThreads = opts.intraOpThreads;
  if (opts.interOpThreads !== undefined) so.interOpNumThreads = opts.interOpThreads;
  if (opts.memPattern !== undefined) so.enableMemPattern = opts.memPattern;
  if (opts.arena !== undefined) so.enableCpuMemArena = opts.arena;
  if (opts.spinning !== undefined) so.extra = { 'session.intra_op.allow_spinning': opts.spinning ? '1' : '0' };
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, so)
      : await ort.InferenceSession.create(model, so);
  } catch (e) {
    throw new FaceoptError('FACEOPT_ERR_INFERENCE', {
      model: typeof model === 'string' ? model : '<buffer>',
      reason: runtimeReason(e),
    }, { cause: e });
  }
}

/**
 * FACEOPT_ERR_INFERENCE naming `file` when onnxruntime cannot load the model at all (an unknown op,
 * shapes that do not fit): checked before a command works on a copy of it in memory, whose failure named
 * no file ("Inference failed in <buffer>"), and before any photo is read.
 */
export async function assertLoads(file: string): Promise<void> {
  const s = await createSession(file, { optimization: 'disabled', intraOpThreads: 1, arena: false });
  await s.release();
}

/**
 * onnxruntime's message on one line: its lines joined (the first alone cut "Got invalid dimensions for
 * input: x for the following indices" before the indices), bounded for a one-line error.
 */
function runtimeReason(e: unknown): string {
  const text = String((e as Error)?.message ?? e).split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
  return text.length > 400 ? `${text.slice(0, 400)}...` : text;
}

/** A float32 tensor of the given shape (copying nothing). */
export function floatTensor(data: Float32Array, dims: readonly number[]): Tensor {
  return new ort.Tensor('float32', data, dims as number[]);
}

/** Run a session, mapping runtime failures to FACEOPT_ERR_INFERENCE. */
export async function runSession(session: Session, feeds: Feeds, outputs?: string[], label = 'model'): Promise<Record<string, Tensor>> {
  try {
    return outputs ? await session.run(feeds, outputs) : await session.run(feeds);
  } catch (e) {
    throw new FaceoptError('FACEOPT_ERR_INFERENCE', { model: label, reason: runtimeReason(e) }, { cause: e });
  }
}

/**
 * Run a session `runs` times on zero-filled float inputs of the given shapes, so that the first real
 * request does not pay for memory-arena growth and kernel selection (large on cuda/tensorrt).
 * Returns the time of each run in milliseconds.
 */
export async function warmUp(session: Session, shapes: Record<string, readonly number[]>, runs = 1, label = 'model'): Promise<number[]> {
  const feeds: Feeds = {};
  for (const [name, dims] of Object.entries(shapes)) {
    feeds[name] = floatTensor(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await runSession(session, feeds, undefined, label);
    times.push(performance.now() - t0);
  }
  return times;
}

/**
 * Why `model` cannot run once on zeros of `dims` fed to `input` (one thread), or null when it runs: the
 * checks that a graph faceopt made or was given runs before work that depends on it.
 */
export async function runFailure(model: string | Uint8Array, input: string, dims: readonly number[], label: string): Promise<{ reason: string; error: unknown } | null> {
  const session = await createSession(model, { intraOpThreads: 1 });
  try {
    await warmUp(session, { [input]: dims }, 1, label);
    return null;
  } catch (e) {
    return { reason: e instanceof FaceoptError ? String(e.params.reason ?? e.message) : (e as Error).message, error: e };
  } finally {
    await session.release();
  }
}

/** Declared input/output shapes as onnxruntime reports them (numbers for fixed dims, strings or null for symbolic ones). */
export function sessionSignature(session: Session): {
  inputs: { name: string; shape: (number | string | null)[] }[];
  outputs: { name: string; shape: (number | string | null)[] }[];
} {
  const shapeOf = (m: ort.InferenceSession.ValueMetadata): (number | string | null)[] =>
    m.isTensor ? (m.shape as (number | string)[]).map((d) => d ?? null) : [];
  return {
    inputs: session.inputMetadata.map((m) => ({ name: m.name, shape: shapeOf(m) })),
    outputs: session.outputMetadata.map((m) => ({ name: m.name, shape: shapeOf(m) })),
  };
}

/** onnxruntime version string. */
export const RUNTIME_VERSION: string = ort.env.versions.common;
