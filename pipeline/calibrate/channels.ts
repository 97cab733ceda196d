/**
 * Per-channel max |x| and mean of chosen NCHW activations over calibration batches: the measurements
 * cross-layer equalization (quantize/rewrites/equalize.ts) balances channels with, and bias correction
 * (quantize/qdq.ts) uses to cancel the mean shift weight rounding causes.
 */
import type { OnnxModel } from '../onnx/model.js';
import { createSession, floatTensor, runSession } from '../runtime.js';
import { exposeTensors, type InputBatch } from './run.js';

/** Max |x| per channel (axis 1) of each tensor in `tensors`. */
export async function collectChannelAmax(
  model: OnnxModel,
  batches: Iterable<InputBatch> | AsyncIterable<InputBatch>,
  tensors: readonly string[],
  threads?: number,
): Promise<Map<string, Float32Array>> {
  return (await collectChannelStats(model, batches, tensors, threads)).amax;
}

/** Max |x| and mean per channel (axis 1) of each tensor in `tensors`. */
export async function collectChannelStats(
  model: OnnxModel,
  batches: Iterable<InputBatch> | AsyncIterable<InputBatch>,
  tensors: readonly string[],
  threads?: number,
): Promise<{ amax: Map<string, Float32Array>; mean: Map<string, Float32Array> }> {
  const out = new Map<string, Float32Array>();
  const sums = new Map<string, Float64Array>();
  const counts = new Map<string, number>();
  if (!tensors.length) return { amax: out, mean: new Map() };
  const session = await createSession(exposeTensors(model, tensors), { optimization: 'basic', intraOpThreads: threads });
  const input = model.graph.inputs[0]!.name;
  try {
    for await (const b of batches) {
      const res = await runSession(session, { [input]: floatTensor(b.data, b.dims) }, [...tensors], 'channel ranges');
      for (const t of tensors) {
        const v = res[t];
        if (!v || v.dims.length < 2) continue;
        const [n, c] = [Number(v.dims[0]), Number(v.dims[1])];
        const inner = v.dims.slice(2).reduce((p, q) => p * Number(q), 1);
        const data = v.data as Float32Array;
        const acc = out.get(t) ?? new Float32Array(c);
        const sum = sums.get(t) ?? new Float64Array(c);
        for (let k = 0; k < n; k++) for (let ch = 0; ch < c; ch++) {
          let m = acc[ch]!;
          let sx = 0;
          const base = (k * c + ch) * inner;
          for (let i = 0; i < inner; i++) { const x = data[base + i]!; sx += x; const a = Math.abs(x); if (a > m) m = a; }
          acc[ch] = m;
          sum[ch] = sum[ch]! + sx;
        }
        out.set(t, acc);
        sums.set(t, sum);
        counts.set(t, (counts.get(t) ?? 0) + n * inner);
      }
    }
  } finally {
    await session.release();
  }
  const mean = new Map<string, Float32Array>();
  for (const [t, sum] of sums) mean.set(t, Float32Array.from(sum, (v) => v / counts.get(t)!));
  return { amax: out, mean };
}
