/**
 * Test helper: run two models (paths or bytes) on the same seeded random inputs in onnxruntime and return
 * the largest absolute difference over all outputs.
 */
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { seededInput } from '../../pipeline/tensorrt/probe.js';

/** Deterministic pseudo-random floats in [-1, 1). */
export function seededFloats(n: number, seed = 1): Float32Array {
  return seededInput(n, seed);
}

/** Max |a-b| over all outputs of two models fed the same random input of `dims`. */
export async function maxOutputDiff(a: string | Uint8Array, b: string | Uint8Array, dims: number[], seed = 7): Promise<{ maxAbs: number; outputs: Record<string, number[]> }> {
  const sa = await createSession(a);
  const sb = await createSession(b);
  const data = seededFloats(dims.reduce((x, y) => x * y, 1), seed);
  const feedsA = { [sa.inputNames[0]!]: floatTensor(data, dims) };
  const feedsB = { [sb.inputNames[0]!]: floatTensor(data, dims) };
  const ra = await runSession(sa, feedsA);
  const rb = await runSession(sb, feedsB);
  let maxAbs = 0;
  const outputs: Record<string, number[]> = {};
  for (const name of sa.outputNames) {
    const x = ra[name]!.data as Float32Array;
    const y = rb[name]!.data as Float32Array;
    if (x.length !== y.length) throw new Error(`output ${name}: ${x.length} vs ${y.length} values`);
    for (let i = 0; i < x.length; i++) maxAbs = Math.max(maxAbs, Math.abs(x[i]! - y[i]!));
    outputs[name] = [...ra[name]!.dims];
  }
  await sa.release();
  await sb.release();
  return { maxAbs, outputs };
}
