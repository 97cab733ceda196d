/**
 * Accuracy-aware mixed precision: quantize everything, measure the output cosine against the float
 * graph on a held-apart slice of calibration inputs, and when it misses the target, measure each
 * weighted layer's sensitivity (output cosine loss when only that layer is quantized), then keep the
 * most sensitive layers in float, one at a time, until the target is met. The result says which layers
 * were kept and why.
 */
import type { OnnxModel } from '../onnx/model.js';
import { createSession, floatTensor, runSession, type Session } from '../runtime.js';
import type { InputBatch } from '../calibrate/run.js';
import { quantizeModel, type QuantizeOptions, type QdqResult, type RangeTable } from './index.js';

const WEIGHTED = new Set(['Conv', 'Gemm', 'MatMul']);

/** Flattened outputs per sample for every batch of the slice. */
async function outputsPerSample(session: Session, slice: readonly InputBatch[]): Promise<Float32Array[]> {
  const input = session.inputNames[0]!;
  const samples: Float32Array[] = [];
  for (const b of slice) {
    const out = await runSession(session, { [input]: floatTensor(b.data, b.dims) });
    const n = b.dims[0] ?? 1;
    const parts = session.outputNames.map((k) => out[k]!.data as Float32Array);
    for (let i = 0; i < n; i++) {
      const per = parts.map((p) => p.subarray((i * p.length) / n, ((i + 1) * p.length) / n));
      const flat = new Float32Array(per.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of per) { flat.set(p, o); o += p.length; }
      samples.push(flat);
    }
  }
  return samples;
}

function meanCosine(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    let d = 0; let na = 0; let nb = 0;
    const x = a[i]!; const y = b[i]!;
    for (let k = 0; k < x.length; k++) { d += x[k]! * y[k]!; na += x[k]! * x[k]!; nb += y[k]! * y[k]!; }
    sum += na > 0 && nb > 0 ? d / Math.sqrt(na * nb) : na === nb ? 1 : 0;
  }
  return sum / a.length;
}

export interface MixedPrecisionResult {
  model: OnnxModel;
  result: QdqResult;
  /** Output cosine of the all-int8 graph and of the returned graph on the slice. */
  cosineAllInt8: number;
  cosine: number;
  target: number;
  met: boolean;
  keptFloat: { layer: string; op: string; reason: string }[];
  /** Per-layer sensitivity, when the search ran (most sensitive first). */
  sensitivity: { layer: string; op: string; metric: number }[] | null;
}

/**
 * Quantize with the fewest float layers that meet `target` (mean output cosine on `slice`), keeping at
 * most `maxFloat` weighted layers in float.
 */
export async function quantizeToTarget(args: {
  floatModel: OnnxModel;
  ranges: RangeTable;
  options: Partial<QuantizeOptions>;
  slice: readonly InputBatch[];
  target: number;
  maxFloat?: number;
  log?: (line: string) => void;
}): Promise<MixedPrecisionResult> {
  const log = args.log ?? (() => undefined);
  const maxFloat = args.maxFloat ?? 8;
  const floatSession = await createSession(args.floatModel.toBytes());
  const reference = await outputsPerSample(floatSession, args.slice);
  await floatSession.release();
  const score = async (exclude: string[]) => {
    const q = quantizeModel(args.floatModel, args.ranges, { ...args.options, exclude: [...(args.options.exclude ?? []), ...exclude] });
    const s = await createSession(q.model.toBytes());
    try {
      return { q, cos: meanCosine(reference, await outputsPerSample(s, args.slice)) };
    } finally {
      await s.release();
    }
  };
  const all = await score([]);
  log(`mixed precision: all-int8 output cosine ${all.cos.toFixed(5)} on ${reference.length} held-apart samples (target ${args.target})`);
  if (all.cos >= args.target || !args.slice.length) {
    return { model: all.q.model, result: all.q.result, cosineAllInt8: all.cos, cosine: all.cos, target: args.target, met: all.cos >= args.target, keptFloat: [], sensitivity: null };
  }
  const layers = args.floatModel.graph.nodes.filter((n) => WEIGHTED.has(n.opType ?? '') && !(args.options.exclude ?? []).includes(n.name ?? ''));
  const names = layers.map((n) => n.name ?? '');
  const sensitivity: { layer: string; op: string; metric: number }[] = [];
  log(`mixed precision: measuring the sensitivity of ${layers.length} layers`);
  for (const n of layers) {
    const others = names.filter((x) => x !== n.name);
    const { cos } = await score(others);
    sensitivity.push({ layer: n.name ?? '', op: n.opType ?? '', metric: 1 - cos });
  }
  sensitivity.sort((a, b) => b.metric - a.metric);
  let best = all;
  const kept: MixedPrecisionResult['keptFloat'] = [];
  for (const s of sensitivity.slice(0, maxFloat)) {
    kept.push({ layer: s.layer, op: s.op, reason: `sensitivity: output cosine loss ${s.metric.toExponential(2)} when only this layer is int8` });
    best = await score(kept.map((k) => k.layer));
    log(`mixed precision: ${kept.length} layer(s) in float -> output cosine ${best.cos.toFixed(5)}`);
    if (best.cos >= args.target) break;
  }
  return { model: best.q.model, result: best.q.result, cosineAllInt8: all.cos, cosine: best.cos, target: args.target, met: best.cos >= args.target, keptFloat: kept, sensitivity };
}
