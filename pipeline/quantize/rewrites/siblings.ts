/**
 * Sibling convolutions merged into one. Convolutions that read the same tensor with the same kernel,
 * strides, pads and dilations (SCRFD's three heads per stride: 2 score, 8 box and 20 keypoint channels
 * from one 64-channel map) become one Conv with their weights stacked along the output channels,
 * followed by a Split back into the original outputs. Exact: every output channel is the same sum of
 * the same products. onnxruntime's NCHWc convolutions compute whole blocks of 16 output channels, so
 * the 2-channel head cost as much as a 16-channel one: measured on scrfd_500m_bnkps at 640x640 with one
 * thread, the three heads at stride 8 took 1.05 + 1.05 + 2.06 ms of a 20.7 ms frame (see docs/int8.md
 * for the merged timings).
 */
import type { Graph } from '../../onnx/graph.js';
import { DataType, attrInt, attrInts, attrString, makeNode, type NodeProto } from '../../onnx/proto.js';

export interface SiblingMerge {
  /** The merged Conv's name and its (new) output, which the Split reads. */
  node: string;
  output: string;
  /** The convolutions it replaces, in output-channel order. */
  merged: string[];
}

/** "5 sibling convolutions merged into 2", for logs. */
export function describeMerges(merges: readonly SiblingMerge[]): string {
  return `${merges.reduce((n, m) => n + m.merged.length, 0)} sibling convolutions merged into ${merges.length}`;
}

/** Everything that must match for two convolutions over one input to be one convolution. */
function signature(g: Graph, n: NodeProto): string | null {
  const [x, w, b] = n.input ?? [];
  if (n.opType !== 'Conv' || !x || !w || !g.hasInitializer(w) || (b && !g.hasInitializer(b))) return null;
  if (g.consumers(w).length !== 1 || (b && g.consumers(b).length !== 1)) return null;
  if (attrInt(n, 'group', 1) !== 1 || attrString(n, 'auto_pad', 'NOTSET') !== 'NOTSET') return null;
  const t = g.getTensor(w);
  if (t.dataType !== DataType.FLOAT || t.dims.length < 3) return null;
  return JSON.stringify([x, t.dims.slice(1), attrInts(n, 'kernel_shape') ?? null, attrInts(n, 'strides') ?? null, attrInts(n, 'pads') ?? null, attrInts(n, 'dilations') ?? null]);
}

/** Merge every set of sibling convolutions in place (the graph is left for the caller to toposort). */
export function mergeSiblingConvs(g: Graph): SiblingMerge[] {
  const sets = new Map<string, NodeProto[]>();
  for (const n of g.nodes) {
    const s = signature(g, n);
    if (!s) continue;
    if (!sets.has(s)) sets.set(s, []);
    sets.get(s)!.push(n);
  }
  const merges: SiblingMerge[] = [];
  for (const convs of sets.values()) {
    if (convs.length < 2) continue;
    const first = convs[0]!;
    const name = g.uniqueName(`${first.name || first.output![0]}_siblings`);
    const output = g.uniqueName(`${name}_out`);
    const weights = convs.map((c) => g.getTensor(c.input![1]!));
    const outs = weights.map((w) => w.dims[0]!);
    const total = outs.reduce((a, b) => a + b, 0);
    const inner = weights[0]!.dims.slice(1).reduce((a, b) => a * b, 1);
    const w = new Float32Array(total * inner);
    const bias = new Float32Array(total);
    let at = 0;
    convs.forEach((c, i) => {
      w.set(g.getFloat(c.input![1]!), at * inner);
      const b = c.input![2];
      if (b) bias.set(g.getFloat(b), at);
      at += outs[i]!;
    });
    const wName = g.uniqueName(`${name}_weight`);
    const bName = g.uniqueName(`${name}_bias`);
    g.setTensor(wName, DataType.FLOAT, [total, ...weights[0]!.dims.slice(1)], w);
    g.setTensor(bName, DataType.FLOAT, [total], bias);
    const splitName = g.uniqueName(`${name}_split_sizes`);
    g.setTensor(splitName, DataType.INT64, [outs.length], outs);
    const conv = makeNode('Conv', [first.input![0]!, wName, bName], [output], name);
    conv.attribute = (first.attribute ?? []).map((a) => ({ ...a }));
    const split = makeNode('Split', [output, splitName], convs.map((c) => c.output![0]!), `${name}_split`, { axis: 1 });
    g.addNode(conv, first);
    g.addNode(split, first);
    const oldInits = convs.flatMap((c) => c.input!.slice(1).filter(Boolean));
    g.removeNodes(convs);
    for (const t of oldInits) g.removeInitializer(t);
    merges.push({ node: name, output, merged: convs.map((c) => c.name || c.output![0]!) });
  }
  return merges;
}

/**
 * Give every part of each merged convolution's output the range [-1, 1], so that one int8 scale fits
 * them all: part i (calibrated range [lo, hi]) has its weights and bias mapped by y -> (y - c) / k with
 * c = (hi + lo) / 2, k = (hi - lo) / 2, and a float Mul by k and Add of c after the Split restore the
 * original tensor. Quantized with the union of their ranges instead, SCRFD's score, box and keypoint
 * parts (e.g. [-9.6, -1.0], [0.04, 4.3], [-2.2, 2.7] at stride 8) lost so much that mixed precision kept
 * the merged outputs float. Sets the merged outputs' ranges in `ranges` and returns the tensors of the float
 * Mul and Add (the restored ones are what the original graph computed). Merges whose parts lack a range are left alone.
 */
export function normalizeSiblingRanges(g: Graph, merges: readonly SiblingMerge[], ranges: Record<string, readonly [number, number]>): string[] {
  const restored: string[] = [];
  for (const m of merges) {
    const conv = g.producer(m.output);
    const split = g.consumers(m.output).find((n) => n.opType === 'Split');
    if (!conv || !split) continue;
    const parts = split.output ?? [];
    // a part nothing reads (the zero channels of pad-channels.ts) keeps its weights and needs no range
    if (!parts.every((p) => !g.isRead(p) || ranges[p])) continue;
    const sizes = Array.from(g.getTensor(split.input![1]!).data as ArrayLike<number | bigint>, Number);
    const w = g.getFloat(conv.input![1]!);
    const b = g.getFloat(conv.input![2]!);
    const inner = w.length / b.length;
    const nw = Float32Array.from(w);
    const nb = Float32Array.from(b);
    let at = 0;
    parts.forEach((p, i) => {
      if (!g.isRead(p)) { at += sizes[i]!; return; }
      const [lo, hi] = ranges[p]!;
      const c = (hi + lo) / 2;
      const k = (hi - lo) / 2 > 1e-12 ? (hi - lo) / 2 : 1;
      for (let o = at; o < at + sizes[i]!; o++) {
        for (let j = 0; j < inner; j++) nw[o * inner + j] = w[o * inner + j]! / k;
        nb[o] = (b[o]! - c) / k;
      }
      at += sizes[i]!;
      const norm = g.uniqueName(`${p}_normalized`);
      const scaled = g.uniqueName(`${p}_rescaled`);
      const kName = g.uniqueName(`${p}_range_half`);
      const cName = g.uniqueName(`${p}_range_mid`);
      g.setTensor(kName, DataType.FLOAT, [], [k]);
      g.setTensor(cName, DataType.FLOAT, [], [c]);
      split.output![i] = norm;
      g.invalidate();
      g.addNode(makeNode('Mul', [norm, kName], [scaled], `${p}_rescale`));
      g.addNode(makeNode('Add', [scaled, cName], [p], `${p}_recenter`));
      ranges[norm] = [-1, 1];
      restored.push(scaled, p);
    });
    g.setTensor(conv.input![1]!, DataType.FLOAT, g.getTensor(conv.input![1]!).dims, nw);
    g.setTensor(conv.input![2]!, DataType.FLOAT, [nb.length], nb);
    ranges[m.output] = [-1, 1];
  }
  g.invalidate();
  g.toposort();
  return restored;
}
