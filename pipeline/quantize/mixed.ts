/**
 * Accuracy-aware mixed precision: quantize everything, measure the output cosine against the float
 * graph on a held-apart slice of calibration inputs, and when it misses the target, measure each
 * activation's and weight's sensitivity (output cosine loss when only it is quantized), then keep the
 * shortest prefix of that ranking float that meets the target (searchPrefix). The result says which were
 * kept and why.
 */
import type { OnnxModel } from '../onnx/model.js';
import type { NodeProto } from '../onnx/proto.js';
import { createSession, floatTensor, runSession, type Session } from '../runtime.js';
import { sampleCount, type InputBatch } from '../calibrate/run.js';
import { quantizeModel, resolveQuantizeOptions, type QuantizeOptions, type QdqResult, type RangeTable } from './index.js';
import { insertQdq } from './qdq.js';
import { WEIGHTED_OPS } from '../onnx/graph.js';
import { describeCuts, latestCutBefore, rankingCuts } from './cuts.js';
import type { Handler } from './handlers.js';

/**
 * Default output-cosine target of mixed precision by model role, for `--int8` and the TensorRT Q/DQ
 * graph alike. Detectors: the raw head outputs' cosine on 8 held-apart frames is a loose proxy for
 * detections; on SCRFD-500M 0.998 kept every face where 0.99 lost 2 of 271 (`--int8`), and found 226
 * of 227 faces where 0.99 found 222 (`--tensorrt` with percentile ranges, 2026-12-05).
 */
export function defaultTargetCosine(role: 'recognizer' | 'detector' | 'generic'): number {
  return role === 'recognizer' ? 0.995 : role === 'detector' ? 0.998 : 0.99;
}

/**
 * Default margin the search aims above the target: the greedy search picks its best prefix on a small
 * slice, which flatters it (mobileface, --int8: slice 0.99506 -> 0.99451 on 300 held-apart faces;
 * --tensorrt without a margin: slice 0.99514 -> 0.99501 on 1546 faces against the 0.995 gate).
 */
export const TARGET_MARGIN = 0.001;

/**
 * The cosine the search aims at on the held-apart slice (`slice` names it in the log line): the given
 * or the role's target plus the given or default margin, at most 1.
 */
export function searchTarget(role: 'recognizer' | 'detector' | 'generic', o: { targetCosine?: number; targetMargin?: number }, slice: string, log: (line: string) => void): { target: number; margin: number; aimed: number } {
  const target = o.targetCosine ?? defaultTargetCosine(role);
  const margin = o.targetMargin ?? TARGET_MARGIN;
  const aimed = Math.min(1, target + margin);
  if (margin > 0) log(`mixed precision: target ${target} + margin ${margin} for the ${slice} = ${aimed.toFixed(4)}`);
  return { target, margin, aimed };
}

/** Flattened outputs per sample for every batch of the slice (all outputs of one sample concatenated). */
export async function outputsPerSample(session: Session, slice: readonly InputBatch[]): Promise<Float32Array[]> {
  const input = session.inputNames[0]!;
  const samples: Float32Array[] = [];
  for (const b of slice) {
    const out = await runSession(session, { [input]: floatTensor(b.data, b.dims) }, undefined, 'accuracy slice');
    const n = b.dims[0] ?? 1;
    const parts = session.outputNames.map((k) => out[k]!.data as Float32Array);
    for (let i = 0; i < n; i++) {
      const per = parts.map((p) => p.subarray((i * p.length) / n, ((i + 1) * p.length) / n));
      const flat = new Float32Array(per.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of per) { flat.set(p, o); o += p.length; }
      samples.push(flat);
    }
    for (const v of Object.values(out)) v.dispose?.();
  }
  return samples;
}

/**
 * Mean cosine of a candidate model's outputs on `batches` against `reference` (one entry per sample),
 * in a short-lived session without an arena (see SessionOptions.arena). Both mixed-precision searches
 * (this one and the TensorRT export's) score candidates with it.
 */
export async function candidateCosine(model: OnnxModel, batches: readonly InputBatch[], reference: readonly Float32Array[]): Promise<number> {
  const s = await createSession(model.toBytes(), { arena: false });
  try { return meanCosine(reference, await outputsPerSample(s, batches)); } finally { await s.release(); }
}

/** Mean per-sample cosine between two lists of flattened outputs. */
export function meanCosine(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    let d = 0; let na = 0; let nb = 0;
    const x = a[i]!; const y = b[i]!;
    for (let k = 0; k < x.length; k++) { d += x[k]! * y[k]!; na += x[k]! * x[k]!; nb += y[k]! * y[k]!; }
    sum += na > 0 && nb > 0 ? d / Math.sqrt(na * nb) : na === nb ? 1 : 0;
  }
  return sum / Math.max(1, a.length);
}

/**
 * The prefix of a ranking (0..n) to keep float: the first one whose cosine reaches `target`, found by
 * bisection in ~log2(n) measurements instead of one per prefix (mobileface: 5 instead of 24, the same 24
 * layers kept); the longest prefix is assumed to reach the target until a shorter one has not and it is
 * measured itself. When even the longest misses, every prefix is measured and the best wins (a later
 * step can lower the cosine again, and then fewer float layers are better). `cosineAt(0)` is the
 * all-int8 graph. Greedy by ranking, most costly first: candidates are kept even when one alone does
 * not help (measured on mobileface, keeping the GDC input float only pays off together with its
 * neighbours, 0.970 -> 0.988, and a skip-if-no-gain rule stalled at 0.975 where prefixes reach 0.994).
 */
export async function searchPrefix(n: number, target: number, cosineAt: (k: number) => Promise<number>): Promise<number> {
  const seen = new Map<number, number>();
  const at = async (k: number) => { if (!seen.has(k)) seen.set(k, await cosineAt(k)); return seen.get(k)!; };
  let lo = 0;
  let hi = n;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((await at(mid)) >= target) hi = mid; else lo = mid;
  }
  if (hi > 0 && (await at(hi)) >= target) return hi;
  if ((await at(0)) >= target) return 0;
  let best = 0;
  for (let k = 1; k <= n; k++) if ((await at(k)) > (await at(best))) best = k;
  return best;
}

/**
 * The kept-float set without the candidates the target does not need. The prefix search keeps the most
 * sensitive candidates float until the target is met, but sensitivities measured one at a time do not
 * add up: once its neighbours are float, a candidate's loss can vanish. Each candidate, least sensitive
 * first (`kept` is most sensitive first), goes back to int8 when `cosineWithout(rest) >= target`: one
 * trial per candidate, and every accepted set met the target when it was measured.
 */
export async function pruneKept<T>(kept: readonly T[], target: number, cosineWithout: (rest: readonly T[]) => Promise<number>): Promise<T[]> {
  let current = [...kept];
  for (const c of [...kept].reverse()) {
    const rest = current.filter((k) => k !== c);
    if ((await cosineWithout(rest)) >= target) current = rest;
  }
  return current;
}

/** A tensor kept float by the search: an activation (no Q/DQ on it) or a layer's weights (the node stays float). */
export type KeptCandidate = { kind: 'activation' | 'weights'; name: string; op: string };

/** A candidate with its measured sensitivity (output cosine loss when only it is int8). */
export type RankedCandidate = KeptCandidate & { metric: number };

export interface MixedPrecisionResult {
  model: OnnxModel;
  result: QdqResult;
  /** Output cosine of the all-int8 graph and of the returned graph on the slice. */
  cosineAllInt8: number;
  cosine: number;
  target: number;
  met: boolean;
  keptFloat: { layer: string; op: string; reason: string }[];
  /** Every candidate's sensitivity when the search ranked them (most sensitive first), for `sensitivities`. */
  ranked: RankedCandidate[] | null;
  /** The float graph's outputs on the slice, for `reference`. */
  reference: readonly Float32Array[];
  /** Per-layer sensitivity, when the search ran (most sensitive first). */
  sensitivity: { layer: string; op: string; metric: number }[] | null;
}

/**
 * The batches sensitivities are ranked on: whole batches of the slice until 8 samples, i.e. its first
 * batch for recognizers (16 faces), 8 frames for detectors. Measured on mobileface: ranking on exactly
 * 8 faces took 9.8 s instead of 15.9 s but needed 29 float layers instead of 24 for the same cosine.
 */
export function rankingBatches(slice: readonly InputBatch[]): InputBatch[] {
  const out: InputBatch[] = [];
  let count = 0;
  for (const b of slice) { if (count >= 8) break; out.push(b); count += b.dims[0] ?? 1; }
  return out;
}

/**
 * Quantize with the fewest float activations that meet `target` (mean output cosine on `slice`). When
 * the all-int8 graph misses it, each activation's sensitivity is measured by quantizing that tensor
 * alone (weights float), on the graph after the latest cut before it (rankingCuts); the shortest prefix
 * of the most sensitive that meets it goes back to float, at most `maxFloat` (searchPrefix).
 */
export async function quantizeToTarget(args: {
  floatModel: OnnxModel;
  ranges: RangeTable;
  options: Partial<QuantizeOptions>;
  slice: readonly InputBatch[];
  target: number;
  maxFloat?: number;
  /** How candidates are ranked: cosine loss when only it is int8, or gain when only it is float. */
  ranking?: 'alone' | 'leave-one-out';
  /** After the prefix search, return the kept-float candidates the target does not need to int8 (pruneKept; default false). */
  prune?: boolean;
  /**
   * Sensitivities measured by an earlier search of the same graph ('alone' ranking: each candidate
   * quantized alone, every other tensor float, so they do not depend on what else is kept float):
   * reused for the candidates this graph has, instead of measuring again.
   */
  sensitivities?: readonly RankedCandidate[];
  /** The float graph's outputs on `slice` (outputsPerSample), when an earlier search computed them. */
  reference?: readonly Float32Array[];
  /** Most bytes of float values at cuts kept to rank candidates on the graph after them (rankingCuts; 0: whole graph). */
  cutBytes?: number;
  log?: (line: string) => void;
}): Promise<MixedPrecisionResult> {
  const log = args.log ?? (() => undefined);
  const maxFloat = args.maxFloat ?? 16;
  const rankingSlice = rankingBatches(args.slice);
  const rankingCount = sampleCount(rankingSlice);
  const reference = args.reference ?? await (async () => {
    const floatSession = await createSession(args.floatModel.toBytes());
    try { return await outputsPerSample(floatSession, args.slice); } finally { await floatSession.release(); }
  })();
  // the greedy steps are checked on the whole slice, the ranking on its first faces (or on their values
  // at a cut, `inputs`)
  const cosineOf = (model: OnnxModel, few = false, inputs?: readonly InputBatch[]) =>
    candidateCosine(model, inputs ?? (few ? rankingSlice : args.slice), few ? reference.slice(0, rankingCount) : reference);
  type Candidate = KeptCandidate;
  const quantizeWith = async (kept: readonly Candidate[]) => quantizeModel(args.floatModel, args.ranges, {
    ...args.options,
    floatTensors: [...(args.options.floatTensors ?? []), ...kept.filter((k) => k.kind === 'activation').map((k) => k.name)],
    exclude: [...(args.options.exclude ?? []), ...kept.filter((k) => k.kind === 'weights').map((k) => k.name)],
  });
  const score = async (kept: readonly Candidate[]) => {
    const q = await quantizeWith(kept);
    return { q, cos: await cosineOf(q.model) };
  };
  const all = await score([]);
  if (!reference.length) log('mixed precision: no held-apart samples (synthetic calibration or too few images): every layer int8, accuracy unchecked');
  else log(`mixed precision: all-int8 output cosine ${all.cos.toFixed(5)} on ${reference.length} held-apart samples (target ${args.target})`);
  if (all.cos >= args.target || !args.slice.length || maxFloat === 0) {
    return { model: all.q.model, result: all.q.result, cosineAllInt8: all.cos, cosine: all.cos, target: args.target, met: all.cos >= args.target, keptFloat: [], ranked: null, reference, sensitivity: null };
  }
  // sensitivity of each activation quantized alone, and of each layer's weights quantized alone
  const g = args.floatModel.graph;
  // what int8 represents exactly costs nothing and is not measured: activations on their input's grid
  // (the Relu(+-x) halves of sign-dw) and weights with one value per output channel (depthwise 1x1
  // convolutions: per-channel int8 holds each as +-127 times its own scale). On mobileface this skips
  // 165 of 344 candidates and half of the ranking time.
  const exact = new Set(all.q.result.exactActivations);
  const oneWeightPerChannel = (n: NodeProto) => {
    const dims = g.getTensor(n.input![1]!).dims.map(Number);
    return args.options.perChannel !== false && n.opType === 'Conv' && dims.length > 1 && dims.slice(1).every((d) => d === 1);
  };
  const quantizedNodes = new Set(all.q.result.quantizedNodes);
  const activations = Object.keys(all.q.result.params).filter((t) => g.producer(t));
  const weighted = g.nodes.filter((n) => WEIGHTED_OPS.has(n.opType ?? '') && g.hasInitializer(n.input?.[1] ?? '') && quantizedNodes.has(n.name ?? ''));
  const candidates: Candidate[] = [
    ...activations.filter((t) => !exact.has(t)).map((t): Candidate => ({ kind: 'activation', name: t, op: g.producer(t)?.opType ?? '' })),
    ...weighted.filter((n) => !oneWeightPerChannel(n)).map((n): Candidate => ({ kind: 'weights', name: n.name ?? '', op: n.opType ?? '' })),
  ];
  const skipped = activations.length + weighted.length - candidates.length;
  const t0 = performance.now();
  const opts = resolveQuantizeOptions(args.options);
  const reuse = args.sensitivities && args.ranking !== 'leave-one-out' ? new Map(args.sensitivities.map((r) => [`${r.kind}:${r.name}`, r.metric])) : null;
  if (reuse) log(`mixed precision: reusing the measured sensitivities of ${candidates.length} activations and weights`);
  else log(`mixed precision: measuring the sensitivity of ${candidates.length} activations and weights (${skipped} exact in int8, skipped)`);
  const allRanking = args.ranking === 'leave-one-out' ? await cosineOf(all.q.model, true) : 0;
  const alone = args.ranking !== 'leave-one-out' && candidates.some((c) => !reuse?.has(`${c.kind}:${c.name}`));
  const nodeOf = (c: Candidate) => (c.kind === 'activation' ? g.producer(c.name) : g.node(c.name));
  const cuts = alone ? await rankingCuts(args.floatModel, activations, candidates.map(nodeOf).filter((n) => n !== undefined), rankingSlice, args.cutBytes) : null;
  if (cuts?.length) log(`mixed precision: ${describeCuts(cuts, 'candidate')}`);
  const measured: (Candidate & { metric: number })[] = [];
  for (const c of candidates) {
    const known = reuse?.get(`${c.kind}:${c.name}`);
    if (known !== undefined) { measured.push({ ...c, metric: known }); continue; }
    let metric: number;
    if (args.ranking === 'leave-one-out') {
      // how much the all-int8 graph gains when only this candidate goes back to float
      metric = (await cosineOf((await quantizeWith([c])).model, true)) - allRanking;
    } else {
      const node = nodeOf(c);
      const cut = node && cuts ? latestCutBefore(cuts, node) : undefined;
      const m = (cut?.model ?? args.floatModel).clone();
      const only: Record<string, Handler> = {};
      for (const n of m.graph.nodes) {
        only[n.opType ?? ''] = c.kind === 'activation'
          ? (node, ctx) => { if (node.output?.includes(c.name)) ctx.activation(c.name); }
          : (node, ctx) => { if (node.name === c.name) ctx.weight(node.input![1]!, node.opType === 'Gemm' && !node.attribute?.some((a) => a.name === 'transB' && Number(a.i) === 1) ? 1 : node.opType === 'MatMul' ? 1 : 0); };
      }
      insertQdq(m.graph, args.ranges, { ...opts, foldRelu: false, floatTensors: [] }, only);
      metric = 1 - (await cosineOf(m, true, cut?.inputs));
    }
    measured.push({ ...c, metric });
  }
  // the cut values (up to cutBytes) are not needed by the search
  if (cuts) cuts.length = 0;
  measured.sort((a, b) => b.metric - a.metric);
  if (!reuse) log(`mixed precision: sensitivities measured in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const sensitivity = measured.map((m) => ({ layer: m.kind === 'weights' ? `${m.name} (weights)` : m.name, op: m.op, metric: m.metric }));
  // prefixes of the ranking, most costly first (see searchPrefix)
  const ranked = measured.slice(0, maxFloat);
  const scores = new Map<number, Awaited<ReturnType<typeof score>>>([[0, all]]);
  const count = await searchPrefix(ranked.length, args.target, async (k) => {
    let r = scores.get(k);
    if (!r) {
      r = await score(ranked.slice(0, k));
      scores.set(k, r);
      const last = ranked[k - 1]!;
      log(`mixed precision: ${k} kept float (up to ${last.kind} ${last.name}) -> output cosine ${r.cos.toFixed(5)}`);
    }
    return r.cos;
  });
  let best = scores.get(count)!;
  let keptList = ranked.slice(0, count);
  if (count) log(`mixed precision: keeping the first ${count} (output cosine ${best.cos.toFixed(5)})`);
  if (args.prune && count > 0 && best.cos >= args.target) {
    const t1 = performance.now();
    let trials = 0;
    keptList = await pruneKept(keptList, args.target, async (trial) => {
      trials++;
      const r = await score(trial);
      if (r.cos >= args.target) best = r;
      return r.cos;
    });
    log(`mixed precision: pruning returned ${count - keptList.length} of ${count} to int8 in ${trials} trials, ${((performance.now() - t1) / 1000).toFixed(1)} s: ${keptList.length} kept float (output cosine ${best.cos.toFixed(5)})`);
  }
  const kept: MixedPrecisionResult['keptFloat'] = keptList.map((s) => ({
    layer: s.name, op: s.op,
    reason: `${s.kind === 'weights' ? 'weight' : 'activation'} sensitivity: output cosine loss ${s.metric.toExponential(2)} when only this ${s.kind === 'weights' ? "layer's weights are" : 'tensor is'} int8`,
  }));
  return { model: best.q.model, result: best.q.result, cosineAllInt8: all.cos, cosine: best.cos, target: args.target, met: best.cos >= args.target, keptFloat: kept, ranked: measured.map(({ kind, name, op, metric }) => ({ kind, name, op, metric })), reference, sensitivity };
}
