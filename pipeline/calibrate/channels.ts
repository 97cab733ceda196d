/**
 * Per-channel max |x| of chosen NCHW activations over calibration batches: the measurement that
 * cross-layer equalization (quantize/rewrites/equalize.ts) balances channels with.
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
  const out = new Map<string, Float32Array>();
  if (!tensors.length) return out;
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
        for (let k = 0; k < n; k++) for (let ch = 0; ch < c; ch++) {
          let m = acc[ch]!;
          const base = (k * c + ch) * inner;
          for (let i = 0; i < inner; i++) { const a = Math.abs(data[base + i]!); if (a > m) m = a; }
          acc[ch] = m;
        }
        out.set(t, acc);
      }
    }
  } finally {
    await session.release();
  }
  return out;
}
