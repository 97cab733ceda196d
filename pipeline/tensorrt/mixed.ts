/**
 * Accuracy-aware exclusion for the TensorRT Q/DQ graph, the same search `--int8` runs but with the
 * TensorRT placement: build the all-int8 graph, measure the mean output cosine against the float graph
 * on a held-apart slice; when it misses the target, measure each weighted layer's sensitivity (cosine
 * loss when only that layer is quantized) and keep the shortest prefix of that ranking float (TensorRT
 * then runs those layers in fp16/fp32) that meets the target, at most `maxFloat` (searchPrefix).
 *
 * Why it matters: per-tensor int8 activations crush the quiet channels of a depthwise conv input, and
 * a folded BatchNorm then amplifies that noise per channel; on mobileface_paddle_128d quantizing the
 * depthwise inputs alone drops the embedding cosine to ~0.2, while their weights alone cost < 0.01.
 */
import type { InputBatch } from '../calibrate/run.js';
import type { OnnxModel } from '../onnx/model.js';
import type { RangeTable } from '../quantize/qdq.js';
import { createSession } from '../runtime.js';
import { meanCosine, outputsPerSample as samples, searchPrefix } from '../quantize/mixed.js';
import { exportSymmetricQdq, type SymmetricQdqExport } from './qdq-export.js';

const WEIGHTED = new Set(['Conv', 'Gemm', 'MatMul']);

/** Re-exported for callers of this module. */
export { meanCosine };

async function cosineOf(model: OnnxModel, slice: readonly InputBatch[], reference: readonly Float32Array[]): Promise<number> {
  // one short-lived session per candidate: no arena (see SessionOptions.arena)
  const s = await createSession(model.toBytes(), { optimization: 'all', arena: false });
  try { return meanCosine(reference, await samples(s, slice)); } finally { await s.release(); }
}

export interface TensorrtMixedResult extends SymmetricQdqExport {
  cosineAllInt8: number;
  cosine: number;
  target: number;
  met: boolean;
  keptFloat: { layer: string; op: string; reason: string }[];
  /** Most sensitive layers first (only when the search ran). */
  sensitivity: { layer: string; op: string; cosineLoss: number }[] | null;
}

/** Export the TensorRT Q/DQ graph keeping the fewest weighted layers float that reach `target`. */
export async function exportQdqToTarget(args: {
  float: OnnxModel; ranges: RangeTable; slice: readonly InputBatch[]; target: number; maxFloat: number; exclude?: string[];
  log?: (line: string) => void;
}): Promise<TensorrtMixedResult> {
  const base = args.exclude ?? [];
  const ref = await createSession(args.float.toBytes(), { optimization: 'all' });
  let reference: Float32Array[];
  try { reference = await samples(ref, args.slice); } finally { await ref.release(); }
  const all = exportSymmetricQdq(args.float, args.ranges, { exclude: base });
  const cosineAllInt8 = await cosineOf(all.model, args.slice, reference);
  args.log?.(`TensorRT Q/DQ: output cosine ${cosineAllInt8.toFixed(5)} with every layer int8 (target ${args.target})`);
  if (cosineAllInt8 >= args.target || args.maxFloat === 0) {
    return { ...all, cosineAllInt8, cosine: cosineAllInt8, target: args.target, met: cosineAllInt8 >= args.target, keptFloat: [], sensitivity: null };
  }
  const layers = args.float.graph.nodes.filter((n) => WEIGHTED.has(n.opType ?? '') && !base.includes(n.name ?? '') && n.input?.[1] && args.float.graph.hasInitializer(n.input[1]));
  const names = layers.map((n) => n.name!);
  const sensitivity: TensorrtMixedResult['sensitivity'] = [];
  for (const n of layers) {
    const only = exportSymmetricQdq(args.float, args.ranges, { exclude: [...base, ...names.filter((x) => x !== n.name)] });
    sensitivity.push({ layer: n.name!, op: n.opType!, cosineLoss: 1 - (await cosineOf(only.model, args.slice, reference)) });
  }
  sensitivity.sort((a, b) => b.cosineLoss - a.cosineLoss);
  // the same prefix search as --int8 (bisection; the best prefix when the target is out of reach)
  const ranked = sensitivity.slice(0, args.maxFloat);
  const tried = new Map<number, { q: SymmetricQdqExport; cos: number }>([[0, { q: all, cos: cosineAllInt8 }]]);
  const count = await searchPrefix(ranked.length, args.target, async (k) => {
    if (!tried.has(k)) {
      const q = exportSymmetricQdq(args.float, args.ranges, { exclude: [...base, ...ranked.slice(0, k).map((r) => r.layer)] });
      tried.set(k, { q, cos: await cosineOf(q.model, args.slice, reference) });
    }
    return tried.get(k)!.cos;
  });
  const { q: best, cos: cosine } = tried.get(count)!;
  const keptFloat: TensorrtMixedResult['keptFloat'] = ranked.slice(0, count).map((s) => ({
    layer: s.layer, op: s.op, reason: `sensitivity: output cosine loss ${s.cosineLoss.toExponential(2)} when quantized alone`,
  }));
  args.log?.(`TensorRT Q/DQ: output cosine ${cosine.toFixed(5)} with ${keptFloat.length} layer(s) float`);
  return { ...best, cosineAllInt8, cosine, target: args.target, met: cosine >= args.target, keptFloat, sensitivity };
}
