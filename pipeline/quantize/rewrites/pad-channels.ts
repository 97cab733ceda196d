/**
 * Channel padding for onnxruntime's int8 depthwise convolutions. A tensor whose channel count is not a
 * multiple of 16 gets zero channels up to the next multiple where that is exact: it is made by a
 * convolution (whose extra output channels get zero weights and zero bias, so they are 0), passes only
 * through Relu/Clip and depthwise convolutions, at least one (their extra channels: zero weights and
 * bias, 0 again), and ends in ordinary convolutions (whose weights for the extra input channels are
 * 0). Every original output is the same sum of the same products; the extra channels add exact zeros.
 * A convolution read only by a Split along the channels (SCRFD's merged heads) is padded too: the Split
 * gets a trailing part holding the zero channels, which nothing reads.
 *
 * Why: onnxruntime's channels-last int8 depthwise kernel handles a channel count that is not a multiple
 * of 16 slowly. Measured (2026-12-05, one 3x3 depthwise QLinearConv, two threads, profiler medians):
 * 40 channels at 160x160 775 us, 48 channels 302 us; 152 at 40x40 166 us, 160 94 us; float depthwise
 * convolutions (NCHWc, padded to blocks of 16 by onnxruntime itself) do not care. SCRFD-500M's
 * backbone has 40, 72 and 152 channels.
 */
import type { Graph } from '../../onnx/graph.js';
import { DataType, attrInt, setAttr, type NodeProto } from '../../onnx/proto.js';

/** Channel counts are padded to a multiple of this. */
export const CHANNEL_BLOCK = 16;

export interface PaddedChannels {
  /** The convolution whose output channels were padded. */
  producer: string;
  from: number;
  to: number;
  /** Depthwise convolutions padded with it, and the convolutions reading the padded channels. */
  depthwise: string[];
  readers: string[];
}

/** "7 channel sets padded to multiples of 16 (40 -> 48 x2, 72 -> 80 x3, 152 -> 160 x2)", for logs. */
export function describePadding(padded: readonly PaddedChannels[]): string {
  const counts = new Map<string, number>();
  for (const p of padded) counts.set(`${p.from} -> ${p.to}`, (counts.get(`${p.from} -> ${p.to}`) ?? 0) + 1);
  const parts = [...counts].map(([k, n]) => (n > 1 ? `${k} x${n}` : k));
  return `${padded.length} channel set${padded.length === 1 ? '' : 's'} padded to multiples of ${CHANNEL_BLOCK} (${parts.join(', ')})`;
}

/** The float weight initializer of a Conv, if it is one this rewrite may change (used by this node only). */
function ownWeights(g: Graph, n: NodeProto): number[] | null {
  const [, w, b] = n.input ?? [];
  if (!w || !g.hasInitializer(w) || g.consumers(w).length !== 1) return null;
  if (b && (!g.hasInitializer(b) || g.consumers(b).length !== 1)) return null;
  const t = g.getTensor(w);
  return t.dataType === DataType.FLOAT && t.dims.length >= 3 ? t.dims.map(Number) : null;
}

/** Zero-extend dim `axis` of a tensor [d0, d1, ...] (float weights here, int8 ones in pad-input.ts) from its size to `to`. */
export function padAxis<T extends Float32Array | Int8Array>(data: T, dims: readonly number[], axis: number, to: number): T {
  const outer = dims.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const from = dims[axis]!;
  const out = new (data.constructor as new (n: number) => T)(outer * to * inner);
  for (let o = 0; o < outer; o++) out.set(data.subarray(o * from * inner, (o + 1) * from * inner), o * to * inner);
  return out;
}

function padWeights(g: Graph, n: NodeProto, axis: number, to: number): void {
  const w = n.input![1]!;
  const dims = g.getTensor(w).dims.map(Number);
  g.setTensor(w, DataType.FLOAT, dims.map((d, i) => (i === axis ? to : d)), padAxis(g.getFloat(w), dims, axis, to));
  const b = n.input?.[2];
  if (axis === 0 && b) g.setTensor(b, DataType.FLOAT, [to], padAxis(g.getFloat(b), [dims[0]!], 0, to));
}

/**
 * The tensors and nodes the padding of `tensor` (`c` channels, a convolution's output) reaches, or null
 * when some reader is not a Relu/Clip, a depthwise convolution over `c` channels or an ordinary
 * convolution, or a tensor on the way is a graph output.
 */
function reach(g: Graph, tensor: string, c: number): { tensors: string[]; depthwise: NodeProto[]; readers: NodeProto[] } | null {
  const tensors: string[] = [];
  const depthwise: NodeProto[] = [];
  const readers: NodeProto[] = [];
  const work = [tensor];
  while (work.length) {
    const t = work.pop()!;
    if (g.isGraphOutput(t)) return null;
    tensors.push(t);
    const users = g.consumers(t);
    if (!users.length) return null;
    for (const u of users) {
      if ((u.input ?? []).slice(1).includes(t)) return null;
      if (u.opType === 'Relu' || (u.opType === 'Clip' && (u.input ?? []).slice(1).every((x) => !x || g.hasInitializer(x)))) {
        work.push(u.output![0]!);
        continue;
      }
      const dims = u.opType === 'Conv' ? ownWeights(g, u) : null;
      const group = dims ? attrInt(u, 'group', 1) : 0;
      if (dims && group === c && dims[0] === c && dims[1] === 1) {
        if (!depthwise.includes(u)) { depthwise.push(u); work.push(u.output![0]!); }
      } else if (dims && group === 1 && dims[1] === c) {
        if (!readers.includes(u)) readers.push(u);
      } else {
        return null;
      }
    }
  }
  return { tensors, depthwise, readers };
}

/**
 * The Split that alone reads `tensor`, along the channels, with its sizes in an initializer of its own
 * (merged sibling heads: siblings.ts); null otherwise.
 */
function channelSplit(g: Graph, tensor: string): NodeProto | null {
  if (g.isGraphOutput(tensor)) return null;
  const users = g.consumers(tensor);
  const s = users.length === 1 ? users[0]! : null;
  if (!s || s.opType !== 'Split' || s.input?.[0] !== tensor || attrInt(s, 'axis', 0) !== 1) return null;
  const sizes = s.input[1];
  return sizes && g.hasInitializer(sizes) && g.consumers(sizes).length === 1 ? s : null;
}

/** Pad every channel set it can (in place); returns what it padded. Stale value_info of the padded tensors is dropped. */
export function padChannels(g: Graph, block = CHANNEL_BLOCK): PaddedChannels[] {
  const done: PaddedChannels[] = [];
  for (const p of [...g.nodes]) {
    if (p.opType !== 'Conv' || attrInt(p, 'group', 1) !== 1) continue;
    const dims = ownWeights(g, p);
    const c = dims?.[0];
    if (!c || c % block === 0) continue;
    const to = Math.ceil(c / block) * block;
    const split = channelSplit(g, p.output![0]!);
    if (split) {
      // a convolution read by a channel Split: the Split gets one more part, the zero channels, which
      // nothing reads. onnxruntime's int8 convolution with 30 output channels (SCRFD's merged heads,
      // 3x3 over 64 channels at 80x80, two threads) took 433-515 us, with 32 289 us (24: 289, 40: 419)
      padWeights(g, p, 0, to);
      const sizes = split.input![1]!;
      const parts = Array.from(g.getTensor(sizes).data as ArrayLike<number | bigint>, Number);
      g.setTensor(sizes, DataType.INT64, [parts.length + 1], [...parts, to - c]);
      split.output!.push(g.uniqueName(`${p.name || p.output![0]}_pad_channels`));
      g.dropValueInfo([p.output![0]!]);
      g.invalidate();
      done.push({ producer: p.name ?? p.output![0]!, from: c, to, depthwise: [], readers: [split.name ?? ''] });
      continue;
    }
    const r = reach(g, p.output![0]!, c);
    // the depthwise kernel is what pays; a set without one would only grow its ordinary convolutions
    if (!r || !r.readers.length || !r.depthwise.length) continue;
    padWeights(g, p, 0, to);
    for (const d of r.depthwise) { padWeights(g, d, 0, to); setAttr(d, 'group', to, 'int'); }
    for (const q of r.readers) padWeights(g, q, 1, to);
    g.dropValueInfo(r.tensors);
    done.push({ producer: p.name ?? p.output![0]!, from: c, to, depthwise: r.depthwise.map((d) => d.name ?? ''), readers: r.readers.map((q) => q.name ?? '') });
  }
  g.invalidate();
  return done;
}
