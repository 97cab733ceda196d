/**
 * CPU checks of a bundle's graphs with onnxruntime-node: the Q/DQ graph TensorRT will build must load
 * and run on CPU (onnxruntime executes QuantizeLinear/DequantizeLinear exactly as ONNX defines them,
 * so this is also the reference for what the INT8 engine approximates), and its outputs can be
 * compared with the float graph's on the same inputs. The accuracy report (same gates as `--int8`)
 * feeds real face tensors through `compareOnCpu`.
 */
import type { OnnxModel } from '../onnx/model.js';
import { createSession, floatTensor, runSession, type Session } from '../runtime.js';

export interface OutputAgreement {
  output: string;
  /** Cosine similarity per sample (flattened per batch item). */
  cosineMean: number;
  cosineMin: number;
  /** Largest |reference - candidate| over all values. */
  maxAbsDiff: number;
  samples: number;
}

export interface CompareResult {
  outputs: OutputAgreement[];
  /** Milliseconds per batch for each graph (CPU; informative only). */
  msPerBatch: { reference: number; candidate: number };
}

async function session(m: OnnxModel | Uint8Array | string): Promise<Session> {
  const src = typeof m === 'string' || m instanceof Uint8Array ? m : m.toBytes();
  return createSession(src, { optimization: 'all' });
}

/**
 * Run `reference` and `candidate` over the same input batches and measure per-sample cosine and max
 * abs difference of every float output both graphs share.
 */
export async function compareOnCpu(
  reference: OnnxModel | Uint8Array | string,
  candidate: OnnxModel | Uint8Array | string,
  batches: Iterable<{ data: Float32Array; dims: number[] }> | AsyncIterable<{ data: Float32Array; dims: number[] }>,
): Promise<CompareResult> {
  const [ref, cand] = [await session(reference), await session(candidate)];
  const acc = new Map<string, { sum: number; min: number; max: number; n: number }>();
  let tRef = 0;
  let tCand = 0;
  let nBatches = 0;
  try {
    const input = ref.inputNames[0]!;
    const outputs = ref.outputNames.filter((o) => cand.outputNames.includes(o));
    for await (const b of batches) {
      const feeds = { [input]: floatTensor(b.data, b.dims) };
      let t0 = performance.now();
      const r = await runSession(ref, feeds, outputs, 'reference graph');
      tRef += performance.now() - t0;
      t0 = performance.now();
      const c = await runSession(cand, { [cand.inputNames[0]!]: floatTensor(b.data, b.dims) }, outputs, 'candidate graph');
      tCand += performance.now() - t0;
      nBatches++;
      for (const o of outputs) {
        const x = r[o]!.data as Float32Array;
        const y = c[o]!.data as Float32Array;
        const batch = Number(r[o]!.dims[0] ?? 1) || 1;
        const per = x.length / batch;
        const a = acc.get(o) ?? { sum: 0, min: Infinity, max: 0, n: 0 };
        for (let s = 0; s < batch; s++) {
          let dot = 0; let nx = 0; let ny = 0;
          for (let i = s * per; i < (s + 1) * per; i++) {
            dot += x[i]! * y[i]!; nx += x[i]! * x[i]!; ny += y[i]! * y[i]!;
            a.max = Math.max(a.max, Math.abs(x[i]! - y[i]!));
          }
          const cos = nx === 0 && ny === 0 ? 1 : dot / Math.sqrt(nx * ny || 1e-30);
          a.sum += cos; a.min = Math.min(a.min, cos); a.n++;
        }
        acc.set(o, a);
      }
      for (const v of [...Object.values(r), ...Object.values(c)]) v.dispose?.();
    }
  } finally {
    await ref.release();
    await cand.release();
  }
  return {
    outputs: [...acc].map(([output, a]) => ({ output, cosineMean: a.sum / Math.max(1, a.n), cosineMin: a.min, maxAbsDiff: a.max, samples: a.n })),
    msPerBatch: { reference: tRef / Math.max(1, nBatches), candidate: tCand / Math.max(1, nBatches) },
  };
}
