/**
 * Single-tensor cuts of a float graph, so that a sensitivity measurement runs only the part of the
 * graph after the tensor it changes.
 *
 * Ranking candidates for mixed precision quantizes one tensor (or one layer's weights) of the float
 * graph and runs the whole graph on a slice of faces; everything before the quantized tensor computes
 * the same values every time. A cut is an activation through which every path from the graph input to
 * the graph outputs runs (the output of a block with no skip connection across it): the graph after it
 * reads nothing but the cut, the weights and what it computes itself, so it can run alone on the cut's
 * float values, computed once. Each candidate runs on the latest cut before it.
 */
import { DataType, type NodeProto } from '../onnx/proto.js';
import type { Graph } from '../onnx/graph.js';
import { makeValueInfo } from '../onnx/graph.js';
import type { OnnxModel } from '../onnx/model.js';
import { createSession, floatTensor, runSession } from '../runtime.js';
import { exposeTensors, fixedBatchOf, itemDims, sampleCount, type InputBatch } from '../calibrate/run.js';

/** A cut: the tensor, and the nodes that run after it (those the outputs need when it is given). */
export interface Cut {
  tensor: string;
  after: ReadonlySet<NodeProto>;
}

/**
 * The nodes the graph outputs need once `tensor` is given, or null when `tensor` is not a cut: the
 * outputs also need the graph input by another path (a skip connection across it), another output of
 * its producer, or the tensor is a graph output itself. Graphs with subgraphs (If, Loop) have no cuts.
 */
export function nodesAfter(g: Graph, tensor: string): Set<NodeProto> | null {
  const p = g.producer(tensor);
  if (!p || g.isGraphOutput(tensor)) return null;
  const inputs = new Set(g.inputs.map((v) => v.name).filter((n) => !g.hasInitializer(n)));
  const after = new Set<NodeProto>();
  const seen = new Set<string>([tensor]);
  const work = g.outputs.map((o) => o.name);
  while (work.length) {
    const t = work.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (inputs.has(t)) return null;
    const n = g.producer(t);
    if (!n || after.has(n)) continue;
    if (n === p) return null;
    if (n.attribute?.some((a) => a.g || a.graphs?.length)) return null;
    after.add(n);
    for (const i of n.input ?? []) if (i) work.push(i);
  }
  return after;
}

/** Every cut among `tensors`, in graph order (each one's `after` contains the later ones'). */
export function findCuts(g: Graph, tensors: Iterable<string>): Cut[] {
  const order = new Map<NodeProto, number>(g.nodes.map((n, i) => [n, i]));
  const cuts: { cut: Cut; at: number }[] = [];
  for (const t of new Set(tensors)) {
    const after = nodesAfter(g, t);
    if (after?.size) cuts.push({ cut: { tensor: t, after }, at: order.get(g.producer(t)!) ?? -1 });
  }
  return cuts.sort((a, b) => a.at - b.at).map((c) => c.cut);
}

/**
 * The latest cut after which `node` runs, if any, in a list of cuts in any order: the one with the
 * fewest nodes after it (a later cut's nodes are a subset of an earlier one's).
 */
export function latestCutBefore<C extends Cut>(cuts: readonly C[], node: NodeProto): C | undefined {
  let best: C | undefined;
  for (const c of cuts) if (c.after.has(node) && (!best || c.after.size < best.after.size)) best = c;
  return best;
}

/**
 * The graph after a cut as a model of its own: the cut tensor is its only input (float, with the
 * given per-sample dims after a symbolic batch dim), and only the nodes and initializers the outputs
 * need stay.
 */
export function modelAfter(model: OnnxModel, cut: string, sampleDims: readonly number[]): OnnxModel {
  const m = model.clone();
  const g = m.graph;
  const after = nodesAfter(g, cut);
  if (!after) throw new Error(`modelAfter: ${cut} is not a cut of ${model.sourcePath ?? 'the model'}`);
  g.proto.node = g.nodes.filter((n) => after.has(n));
  g.proto.input = [makeValueInfo(cut, DataType.FLOAT, ['N', ...sampleDims])];
  g.dropValueInfo([cut]);
  g.invalidate();
  g.pruneUnused();
  return m;
}

/** A cut chosen for ranking: the graph after it as a model, and its float values on the ranking faces. */
export interface RankingCut extends Cut {
  model: OnnxModel;
  /** The cut tensor's values, one batch per batch of the ranking slice. */
  inputs: InputBatch[];
  bytes: number;
}

/** "16 cuts of the float graph, each candidate run from the latest before it (63 MiB of cut values)", for logs. */
export function describeCuts(cuts: readonly RankingCut[], each: string): string {
  const mib = cuts.reduce((a, c) => a + c.bytes, 0) / 2 ** 20;
  return `${cuts.length} cut${cuts.length === 1 ? '' : 's'} of the float graph, each ${each} run from the latest before it (${mib.toFixed(0)} MiB of cut values)`;
}

/**
 * Most memory the cut values of the ranking slice may take; the earliest cuts are the largest and save
 * the least, so they go first. Measured on mobileface (16 ranking faces, 144 candidates, README main
 * command with --float-prefix 0 --float-suffix 1): whole graph 10.8 s; all 26 cuts (179 MiB) 6.9 s; the
 * latest 16 (63 MiB, this budget) 6.6 s; the same int8 file every time.
 */
export const CUT_VALUES_BYTES = 64 * 2 ** 20;

/**
 * The cuts worth running the ranking from, latest first: for each of `nodes` (the candidates' layers)
 * the latest cut among `tensors` before it, with the float graph's values there on `slice`, computed
 * once. At most `budget` bytes of values are kept (the latest cuts); a candidate with no cut before it
 * runs on the whole graph.
 */
export async function rankingCuts(model: OnnxModel, tensors: Iterable<string>, nodes: Iterable<NodeProto>, slice: readonly InputBatch[], budget = CUT_VALUES_BYTES): Promise<RankingCut[]> {
  const g = model.graph;
  const all = findCuts(g, tensors);
  const used = new Set<Cut>();
  for (const n of nodes) { const c = latestCutBefore(all, n); if (c) used.add(c); }
  let chosen = all.filter((c) => used.has(c));
  if (!chosen.length || !slice.length || budget <= 0) return [];
  const session = await createSession(exposeTensors(model, chosen.map((c) => c.tensor)), { arena: false });
  try {
    const input = session.inputNames[0]!;
    const samples = sampleCount(slice);
    // per-sample dims from one sample; a tensor whose first dim is not the batch cannot be cut
    const dims = await itemDims(session, chosen.map((c) => c.tensor), input, slice[0]!, fixedBatchOf(model));
    chosen = chosen.filter((c) => dims.get(c.tensor)![0] === 1);
    const bytesOf = (c: Cut) => dims.get(c.tensor)!.slice(1).reduce((a, d) => a * d, 1) * 4 * samples;
    let total = chosen.reduce((a, c) => a + bytesOf(c), 0);
    while (chosen.length && total > budget) total -= bytesOf(chosen.shift()!);
    if (!chosen.length) return [];
    const inputs = new Map<string, InputBatch[]>(chosen.map((c) => [c.tensor, []]));
    const perBatch = new Set<string>(chosen.map((c) => c.tensor));
    for (const b of slice) {
      const out = await runSession(session, { [input]: floatTensor(b.data, b.dims) }, chosen.map((c) => c.tensor), 'ranking cuts');
      for (const c of chosen) {
        const t = out[c.tensor]!;
        const d = t.dims.map(Number);
        // a leading 1 that was not the batch after all: the batch's samples are not its first dim
        if (d[0] !== (b.dims[0] ?? 1) || d.slice(1).join() !== dims.get(c.tensor)!.slice(1).join()) perBatch.delete(c.tensor);
        else inputs.get(c.tensor)!.push({ data: (t.data as Float32Array).slice(), dims: d });
        t.dispose?.();
      }
    }
    chosen = chosen.filter((c) => perBatch.has(c.tensor));
    return chosen.reverse().map((c) => ({ ...c, model: modelAfter(model, c.tensor, dims.get(c.tensor)!.slice(1)), inputs: inputs.get(c.tensor)!, bytes: bytesOf(c) }));
  } finally {
    await session.release();
  }
}
