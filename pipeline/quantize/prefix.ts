/**
 * The float prefix: how far into the network the graph stays float before it hands over to int8,
 * chosen by timing the candidates side by side on this machine's onnxruntime (docs/int8.md, "Float
 * prefix and float borders").
 *
 * onnxruntime's CPU int8 kernels do not pay on a network's first layers: at high resolution with few
 * channels they are memory-bound, its int8 depthwise and 3-channel stem kernels are slower than its float
 * NCHWc ones (scrfd_500m at 640x640, one thread: stem 2.77 ms int8 against 1.60 ms float; a 48-channel
 * depthwise 3x3 at 160x160 1041 us against 322 us), and every border between a float and an int8 layer
 * costs a layout reorder, a QuantizeLinear and a Transpose of the tensor it crosses. How far the float
 * part should go depends on the model and its input size, so the candidates are measured: no prefix, and
 * a prefix through each of the first strided convolutions, whose border then sits on the strided layer's
 * output, a quarter of its input. The accuracy search runs afterwards, on the layers after the prefix.
 *
 * The float suffix (floatSuffixCandidates) is the same idea at the network's low-resolution end; it pays
 * off through the float tensors the accuracy search would keep there, so optimize/int8.ts judges it after
 * the search, not by a timing before it.
 */
import { WEIGHTED_OPS, type Graph } from '../onnx/graph.js';
import type { NodeProto } from '../onnx/proto.js';
import type { OnnxModel } from '../onnx/model.js';
import { createSession, type Session, type SessionOptions } from '../runtime.js';
import { pairedTimes, timeInTurns, timedRunner } from '../evaluate/speed.js';
import { quantizeModel, type QuantizeOptions, type RangeTable } from './index.js';
import { HANDLERS, isStrided } from './handlers.js';
import { quantizeToTarget, type MixedPrecisionResult } from './mixed.js';
import type { InputBatch } from '../calibrate/run.js';

/**
 * Prefixes measured besides none: through each of the first this many strided convolutions. A fourth
 * (scrfd_500m: int8 from 40x40 on; mobileface: nearly all float) was never the fastest in quiet phases
 * (2026-12-05), and each candidate costs calibrate+quantize time (goal: 4x one FP32 pass).
 */
export const MAX_PREFIX_CANDIDATES = 3;

/**
 * Suffixes measured besides none: after each of the last this many strided convolutions. The second
 * from the end lost to the last on mobileface (2.81-3.02 vs 2.67-2.69 ms) and to none on scrfd_500m, and
 * each costs a search and a timing.
 */
export const MAX_SUFFIX_CANDIDATES = 1;

/**
 * Timed runs per candidate (two blocks each, the candidates taking turns). One block was measurably
 * noisier: scrfd_500m took a prefix through 4 strided convs in a loaded minute (12:57), where two
 * blocks gave 3 in three runs out of three.
 */
export const PREFIX_TIMING_RUNS = 20;

export interface PrefixCandidate {
  /**
   * Prefix: how many strided convolutions the float part runs through; suffix: after the how-many-th
   * strided convolution from the end it begins (0: none).
   */
  strided: number;
  /** The strided convolution whose output the border sits on (float for a prefix, int8 for a suffix; null: none). */
  border: string | null;
  /** Activations kept float for this prefix (graph inputs included): QuantizeOptions.floatTensors. */
  floatTensors: string[];
  /** Names of the nodes the prefix keeps float, the border convolution included. */
  layers: string[];
}

/**
 * No prefix, then a prefix through each of the first `max` strided convolutions in graph order: every
 * activation produced before that convolution (and the graph inputs) stays float, so the convolution
 * reads a float tensor and is float itself, and its output is where int8 begins.
 */
export function floatPrefixCandidates(g: Graph, max = MAX_PREFIX_CANDIDATES): PrefixCandidate[] {
  const out: PrefixCandidate[] = [{ strided: 0, border: null, floatTensors: [], layers: [] }];
  const produced = g.inputs.map((i) => i.name);
  const layers: string[] = [];
  // a prefix must leave some weighted layer with an int8 kernel after it: one through the last of them
  // (a Conv1d net whose only strided conv is its last layer) would make an "int8" file with nothing int8
  const weighted = (n: NodeProto) => WEIGHTED_OPS.has(n.opType ?? '') && (n.opType ?? '') in HANDLERS && (!n.domain || n.domain === 'ai.onnx');
  let weightedLeft = g.nodes.filter(weighted).length;
  for (const n of g.nodes) {
    if (out.length > max) break;
    layers.push(n.name ?? '');
    if (weighted(n)) weightedLeft--;
    if (isStrided(n) && weightedLeft > 0) out.push({ strided: out.length, border: n.name ?? '', floatTensors: [...produced], layers: [...layers] });
    produced.push(...(n.output ?? []).filter(Boolean));
  }
  return out;
}

/**
 * The float suffix: none, then float from the output of each of the last `max` strided convolutions on
 * (that convolution and its Relu stay int8; every later layer is float, graph outputs included), so a network's
 * low-resolution tail, where int8 kernels gain least and each float tensor the accuracy search keeps
 * makes two borders, runs float in one piece. Candidates start after `after` (the prefix's border), so
 * prefix and suffix never meet.
 */
export function floatSuffixCandidates(g: Graph, after: string | null = null, max = MAX_SUFFIX_CANDIDATES): PrefixCandidate[] {
  const out: PrefixCandidate[] = [{ strided: 0, border: null, floatTensors: [], layers: [] }];
  const start = after === null ? -1 : g.nodes.findIndex((n) => n.name === after);
  const strided = g.nodes.filter((n, i) => i > start && isStrided(n));
  for (let k = 1; k <= Math.min(max, strided.length); k++) {
    const s = strided[strided.length - k]!;
    // the conv's own activation function stays with it (folded into its int8 output)
    let from = g.nodes.indexOf(s) + 1;
    const next = g.nodes[from];
    if (next && (next.opType === 'Relu' || next.opType === 'Clip') && next.input?.[0] === s.output?.[0] && g.consumers(s.output![0]!).length === 1) from++;
    const tail = g.nodes.slice(from);
    out.push({ strided: k, border: s.name ?? '', floatTensors: tail.flatMap((n) => n.output ?? []).filter(Boolean), layers: tail.map((n) => n.name ?? '') });
  }
  return out;
}

/**
 * Candidates within this fraction of the fastest count as tied, and the shortest prefix among them wins
 * (more of the graph int8, a smaller file, and no choice made by timing noise: two runs on mobileface
 * timed its first three candidates within 0.08 ms of each other, 2.32-2.40 and 2.49-2.53 ms).
 */
export const PREFIX_TIE = 0.03;

/** Index of the shortest candidate whose time is within PREFIX_TIE of the fastest. */
export function fastestShortest(ms: readonly number[]): number {
  const best = Math.min(...ms);
  return ms.findIndex((t) => t <= best * (1 + PREFIX_TIE));
}

export interface PrefixChoice {
  chosen: PrefixCandidate;
  /** Latency of each candidate's graph (everything after its prefix int8), paired with the first candidate's (timeModels), in candidate order. */
  timings: { strided: number; border: string | null; ms: number }[];
}

/**
 * Time each candidate's graph (its float part float, every other layer int8 as far as the quantizer
 * goes) at batch 1 with the candidates taking turns in blocks, and return the fastest (fastestShortest).
 * Prefix candidates unless `candidates` are given (floatSuffixCandidates for the suffix).
 */
export async function chooseFloatPart(args: {
  floatModel: OnnxModel;
  ranges: RangeTable;
  options: Partial<QuantizeOptions>;
  /** Input dims at batch 1. */
  dims: number[];
  session?: SessionOptions;
  candidates?: PrefixCandidate[];
  runs?: number;
}): Promise<PrefixChoice> {
  const candidates = args.candidates ?? floatPrefixCandidates(args.floatModel.graph);
  const models = candidates.map((c) => quantizeModel(args.floatModel, args.ranges, { ...args.options, floatTensors: [...(args.options.floatTensors ?? []), ...c.floatTensors] }).model);
  const ms = await timeModels(models, args.dims, args.session, args.runs);
  const timings = candidates.map((c, i) => ({ strided: c.strided, border: c.border, ms: ms[i]! }));
  return { chosen: candidates[fastestShortest(ms)]!, timings };
}

/**
 * Latency at batch 1 of each model, timed side by side in blocks taking turns (timeInTurns): the first
 * model's p50, and each other's as that divided by its paired speed-up over the first (pairedTimes), so a
 * change of the host's pace between rounds does not choose the candidate.
 */
export async function timeModels(models: readonly OnnxModel[], dims: number[], session?: SessionOptions, runs = PREFIX_TIMING_RUNS): Promise<number[]> {
  const sessions: Session[] = [];
  try {
    for (const m of models) sessions.push(await createSession(m.toBytes(), session));
    const runners = [];
    for (const s of sessions) runners.push(await timedRunner(s, dims));
    const times = await timeInTurns(runners, runs);
    return pairedTimes(times);
  } finally {
    for (const s of sessions) await s.release();
  }
}

/**
 * The float suffix, judged after the accuracy search (`searched`): a float tail pays off through the
 * float tensors the search would keep there (each one two borders), which a timing before the search
 * cannot see. For each suffix candidate the search runs again with the tail float, reusing the
 * sensitivities it measured (each ranked alone, so they do not depend on what else is float: only its
 * few quantize-and-measure steps repeat); the graphs that meet the target are timed side by side with
 * `searched`'s and the fastest wins (fastestShortest). Null when there is nothing to choose between (no
 * candidate, no slice, an unmet or unranked search, or no tail that meets the target).
 */
export async function chooseFloatSuffix(searched: MixedPrecisionResult, candidates: PrefixCandidate[], args: {
  floatModel: OnnxModel;
  ranges: RangeTable;
  /** The options `searched` was made with (prefix included). */
  options: Partial<QuantizeOptions>;
  slice: readonly InputBatch[];
  target: number;
  /** Input dims at batch 1. */
  dims: number[];
  session?: SessionOptions;
  maxFloat?: number;
  ranking?: 'alone' | 'leave-one-out';
  prune?: boolean;
  runs?: number;
  /** Called with each candidate's search result, before the timing. */
  onSearched?: (candidate: PrefixCandidate, result: MixedPrecisionResult) => void;
}): Promise<{ mixed: MixedPrecisionResult; chosen: PrefixCandidate; timings: { strided: number; border: string | null; ms: number }[] } | null> {
  if (candidates.length < 2 || !args.slice.length || !searched.met || !searched.ranked) return null;
  const options: { mixed: MixedPrecisionResult; candidate: PrefixCandidate }[] = [{ mixed: searched, candidate: candidates[0]! }];
  for (const cand of candidates.slice(1)) {
    const r = await quantizeToTarget({
      floatModel: args.floatModel, ranges: args.ranges, options: { ...args.options, floatTensors: [...(args.options.floatTensors ?? []), ...cand.floatTensors] },
      slice: args.slice, target: args.target, maxFloat: args.maxFloat, ranking: args.ranking, prune: args.prune,
      sensitivities: searched.ranked, reference: searched.reference,
    });
    args.onSearched?.(cand, r);
    if (r.met) options.push({ mixed: { ...r, sensitivity: searched.sensitivity }, candidate: cand });
  }
  if (options.length < 2) return null;
  const ms = await timeModels(options.map((x) => x.mixed.model), args.dims, args.session, args.runs);
  const best = options[fastestShortest(ms)]!;
  return { mixed: best.mixed, chosen: best.candidate, timings: options.map((x, i) => ({ strided: x.candidate.strided, border: x.candidate.border, ms: ms[i]! })) };
}
