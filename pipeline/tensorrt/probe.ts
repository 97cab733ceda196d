/**
 * Shape probes: run a graph once on CPU (onnxruntime, through runtime.ts) with a deterministic
 * pseudo-random input and read the real dims of its outputs, and optionally of intermediate tensors.
 * Shape rewrites use it instead of re-implementing ONNX shape inference: the runtime is the
 * authority on what a graph computes, and a rewrite that breaks a graph fails here, not on a GPU.
 */
import { exposeTensors } from '../calibrate/run.js';
import { FaceoptError } from '../errors.js';
import { mulberry32 } from '../evaluate/stats.js';
import type { OnnxModel } from '../onnx/model.js';
import { createSession, floatTensor, runSession } from '../runtime.js';

/** Deterministic values in [-1, 1) (mulberry32), so probes and checks are reproducible. */
export function seededInput(n: number, seed = 1): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => next() * 2 - 1);
}

export interface ProbeResult {
  /** Dims of every graph output and every requested tensor. */
  dims: Record<string, number[]>;
  /** Values of the graph outputs (float32 outputs only). */
  values: Record<string, Float32Array>;
}

/**
 * Run `model` (or its bytes) once with an input of `inputDims` (from `data` or seeded values) and
 * return dims of its outputs plus the `tensors` asked for. Fails with FACEOPT_ERR_GRAPH naming
 * `what` when the runtime refuses the graph or the shape.
 */
export async function probeModel(
  model: OnnxModel, inputDims: readonly number[], opts: { tensors?: readonly string[]; data?: Float32Array; what?: string; seed?: number } = {},
): Promise<ProbeResult> {
  const inputName = model.graph.inputs[0]?.name;
  if (!inputName) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: 'the model has no graph input' });
  const tensors = (opts.tensors ?? []).filter((t) => t !== inputName);
  const bytes = tensors.length ? exposeTensors(model, tensors) : model.toBytes();
  const n = inputDims.reduce((a, b) => a * b, 1);
  const data = opts.data ?? seededInput(n, opts.seed ?? 1);
  let session;
  try {
    session = await createSession(bytes, { optimization: 'basic', intraOpThreads: 1 });
  } catch (e) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `${opts.what ?? 'the rewritten graph'} does not load in onnxruntime: ${(e as Error).message}` }, { cause: e });
  }
  try {
    const outNames = [...model.graph.outputs.map((o) => o.name), ...tensors];
    let out;
    try {
      out = await runSession(session, { [inputName]: floatTensor(data, inputDims) }, outNames, 'shape probe');
    } catch (e) {
      throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `${opts.what ?? 'the rewritten graph'} does not run at input [${inputDims.join(',')}]: ${(e as Error).message}` }, { cause: e });
    }
    const dims: Record<string, number[]> = {};
    const values: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(out)) {
      dims[k] = [...v.dims].map(Number);
      if (v.type === 'float32' && model.graph.isGraphOutput(k)) values[k] = Float32Array.from(v.data as Float32Array);
      v.dispose?.();
    }
    return { dims, values };
  } finally {
    await session.release();
  }
}
