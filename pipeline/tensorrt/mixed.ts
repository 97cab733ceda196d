/**
 * Accuracy-aware exclusion for the TensorRT Q/DQ graph, the same search `--int8` runs but with the
 * TensorRT placement: build the all-int8 graph, measure the mean output cosine against the float graph
 * on a held-apart slice; when it misses the target, measure each weighted layer's sensitivity (cosine
 * loss when only that layer, its weights and its input, is quantized, every other node float) and keep
 * the shortest prefix of that ranking float (TensorRT then runs those layers in fp16/fp32) that meets the
 * target, at most `maxFloat` (searchPrefix). As `--int8` does, the ranking runs on the slice's first
 * samples (rankingBatches) and each layer only on the float graph after the latest cut before it
 * (pipeline/quantize/cuts.ts): mobileface_paddle_128d's ranking took 3.1 s instead of 10.2 s,
 * scrfd_500m_bnkps 7.5 s instead of 25.8 s, with the same Q/DQ graphs byte for byte as before; ranking
 * each layer truly alone changed the float set of the dynamic SCRFD graph at 640x480 (docs/tensorrt.md).
 *
 * Why it matters: per-tensor int8 activations crush the quiet channels of a depthwise conv input, and
 * a folded BatchNorm then amplifies that noise per channel; on mobileface_paddle_128d quantizing the
 * depthwise inputs alone drops the embedding cosine to ~0.2, while their weights alone cost < 0.01.
 */
import { sampleCount, type InputBatch } from '../calibrate/run.js';
import type { OnnxModel } from '../onnx/model.js';
import type { RangeTable } from '../quantize/qdq.js';
import { WEIGHTED_OPS } from '../onnx/graph.js';
import { createSession } from '../runtime.js';
import { describeCuts, latestCutBefore, rankingCuts } from '../quantize/cuts.js';
import { candidateCosine, meanCosine, outputsPerSample as samples, rankingBatches, searchPrefix } from '../quantize/mixed.js';
import { exportSymmetricQdq, type SymmetricQdqExport } from './qdq-export.js';

/** Re-exported for callers of this module. */
export { meanCosine };

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
  /** Most bytes of float values at cuts kept for the ranking (rankingCuts; 0: every layer runs the whole graph). */
  cutBytes?: number;
  log?: (line: string) => void;
}): Promise<TensorrtMixedResult> {
  const base = args.exclude ?? [];
  const ref = await createSession(args.float.toBytes(), { optimization: 'all' });
  let reference: Float32Array[];
  try { reference = await samples(ref, args.slice); } finally { await ref.release(); }
  const all = exportSymmetricQdq(args.float, args.ranges, { exclude: base });
  const cosineAllInt8 = await candidateCosine(all.model, args.slice, reference);
  args.log?.(`TensorRT Q/DQ: output cosine ${cosineAllInt8.toFixed(5)} with every layer int8 (target ${args.target})`);
  if (cosineAllInt8 >= args.target || args.maxFloat === 0) {
    return { ...all, cosineAllInt8, cosine: cosineAllInt8, target: args.target, met: cosineAllInt8 >= args.target, keptFloat: [], sensitivity: null };
  }
  const g = args.float.graph;
  const layers = g.nodes.filter((n) => WEIGHTED_OPS.has(n.opType ?? '') && !base.includes(n.name ?? '') && n.input?.[1] && g.hasInitializer(n.input[1]));
  // as --int8 ranks: on the slice's first samples (rankingBatches; the search checks on the whole
  // slice), each layer quantized alone on the float graph after the latest cut before it, fed the
  // cut's values computed once (pipeline/quantize/cuts.ts)
  const t0 = performance.now();
  const few = rankingBatches(args.slice);
  const fewReference = reference.slice(0, sampleCount(few));
  const cuts = await rankingCuts(args.float, Object.keys(args.ranges).filter((t) => g.producer(t)), layers, few, args.cutBytes);
  if (cuts.length) args.log?.(`TensorRT Q/DQ: ${describeCuts(cuts, 'layer')}`);
  const sensitivity: TensorrtMixedResult['sensitivity'] = [];
  // alone: every other node float too (the Adds, pools and Concats TensorRT's placement also quantizes
  // would otherwise weigh on every layer after them, and differently on the graph after a cut)
  const others = g.nodes.map((x) => x.name ?? '').filter((x) => x !== '');
  for (const n of layers) {
    const cut = latestCutBefore(cuts, n);
    const only = exportSymmetricQdq(cut?.model ?? args.float, args.ranges, { exclude: [...base, ...others.filter((x) => x !== n.name && x !== n.opType)] });
    sensitivity.push({ layer: n.name!, op: n.opType!, cosineLoss: 1 - (await candidateCosine(only.model, cut?.inputs ?? few, fewReference)) });
  }
  cuts.length = 0; // the cut values are not needed by the search
  sensitivity.sort((a, b) => b.cosineLoss - a.cosineLoss);
  args.log?.(`TensorRT Q/DQ: sensitivities of ${layers.length} layers measured on ${fewReference.length} of the ${reference.length} inputs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // the same prefix search as --int8 (bisection; the best prefix when the target is out of reach)
  const ranked = sensitivity.slice(0, args.maxFloat);
  const tried = new Map<number, { q: SymmetricQdqExport; cos: number }>([[0, { q: all, cos: cosineAllInt8 }]]);
  const count = await searchPrefix(ranked.length, args.target, async (k) => {
    if (!tried.has(k)) {
      const q = exportSymmetricQdq(args.float, args.ranges, { exclude: [...base, ...ranked.slice(0, k).map((r) => r.layer)] });
      tried.set(k, { q, cos: await candidateCosine(q.model, args.slice, reference) });
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
