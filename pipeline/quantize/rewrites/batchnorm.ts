/**
 * Folding BatchNormalization into neighbouring linear layers. Inference BN is a per-channel affine map
 * y = a*x + b (a = gamma / sqrt(var + eps), b = beta - mean*a), so:
 *  - after a Conv or Gemm it folds into that layer's weights and bias exactly;
 *  - before a Gemm (possibly through a Flatten, as in IResNet's head BN2d -> Flatten -> FC) it folds exactly
 *    into the Gemm's weights and bias;
 *  - before a Conv with no padding it folds exactly; with zero padding the border taps would see `b`
 *    instead of 0, so that fold is approximate and only done when asked (`preConvPadded`).
 * Each fold removes a float island that quantized graphs would otherwise pay DQ/Q and layout changes for,
 * and makes FP32 faster too.
 */
import type { Graph } from '../../onnx/graph.js';
import { DataType, attrFloat, attrInt, attrInts, setAttr, type NodeProto } from '../../onnx/proto.js';

interface Affine { a: Float32Array; b: Float32Array }

function bnAffine(g: Graph, bn: NodeProto): Affine | undefined {
  const [, gs, bs, ms, vs] = bn.input ?? [];
  if (![gs, bs, ms, vs].every((t) => t && g.hasInitializer(t))) return undefined;
  const gamma = g.getFloat(gs!);
  const beta = g.getFloat(bs!);
  const mean = g.getFloat(ms!);
  const variance = g.getFloat(vs!);
  const eps = attrFloat(bn, 'epsilon', 1e-5);
  const a = new Float32Array(gamma.length);
  const b = new Float32Array(gamma.length);
  for (let c = 0; c < gamma.length; c++) {
    a[c] = gamma[c]! / Math.sqrt(variance[c]! + eps);
    b[c] = beta[c]! - mean[c]! * a[c]!;
  }
  return { a, b };
}

/** The only consumer of `t`, when `t` has exactly one and is not a graph output. */
function soleConsumer(g: Graph, t: string): NodeProto | undefined {
  const c = g.consumers(t);
  return c.length === 1 && !g.isGraphOutput(t) ? c[0] : undefined;
}

function ownedInitializer(g: Graph, name: string | undefined, user: NodeProto): boolean {
  return !!name && g.hasInitializer(name) && g.consumers(name).every((n) => n === user);
}

/** Conv -> BN  ==>  Conv with scaled weights and shifted bias. */
function foldAfterConv(g: Graph, conv: NodeProto, bn: NodeProto, aff: Affine): boolean {
  const [, wName, bName] = conv.input ?? [];
  if (!ownedInitializer(g, wName, conv) || (bName && !ownedInitializer(g, bName, conv))) return false;
  const w = g.getTensor(wName!);
  const out = w.dims[0]!;
  if (aff.a.length !== out) return false;
  const wf = g.getFloat(wName!);
  const inner = wf.length / out;
  const nw = new Float32Array(wf.length);
  for (let i = 0; i < wf.length; i++) nw[i] = wf[i]! * aff.a[Math.floor(i / inner)]!;
  const bias = bName ? g.getFloat(bName) : new Float32Array(out);
  const nb = new Float32Array(out);
  for (let c = 0; c < out; c++) nb[c] = bias[c]! * aff.a[c]! + aff.b[c]!;
  g.setTensor(wName!, DataType.FLOAT, w.dims, nw);
  const biasName = bName || g.uniqueName(`${conv.name || 'conv'}_bias`);
  g.setTensor(biasName, DataType.FLOAT, [out], nb);
  conv.input = [conv.input![0]!, wName!, biasName];
  return true;
}

/** True for a Gemm C of shape [], [1], [N], [1, 1] or [1, N]: the same bias for every row of A. */
function perFeatureShape(dims: readonly number[], n: number): boolean {
  if (dims.length > 2 || (dims.length === 2 && dims[0] !== 1)) return false;
  const last = dims.length === 0 ? 1 : dims[dims.length - 1]!;
  return last === 1 || last === n;
}

/** A foldable Gemm's operands: B and C owned initializers, A not transposed. */
interface GemmOperands { bName: string; cName: string | undefined; transB: number; alpha: number; beta: number; B: ReturnType<Graph['getTensor']>; r: number; c: number }

function gemmOperands(g: Graph, gemm: NodeProto): GemmOperands | null {
  const [, bName, cName] = gemm.input ?? [];
  if (!ownedInitializer(g, bName, gemm) || (cName && !ownedInitializer(g, cName, gemm))) return null;
  if (attrInt(gemm, 'transA', 0) !== 0) return null;
  const B = g.getTensor(bName!);
  const [r, c] = B.dims as [number, number];
  // C broadcasts to [M, N]: only a C with one value per output feature (or one in all) can be folded
  // into; a [M, N] or [M, 1] bias (per row) is no per-feature bias, whatever its length
  if (cName && !perFeatureShape(g.getTensor(cName).dims.map(Number), attrInt(gemm, 'transB', 0) ? r : c)) return null;
  return { bName: bName!, cName: cName || undefined, transB: attrInt(gemm, 'transB', 0), alpha: attrFloat(gemm, 'alpha', 1), beta: attrFloat(gemm, 'beta', 1), B, r, c };
}

/** Write the folded B and C of a Gemm, alpha and beta now 1. */
function setGemmOperands(g: Graph, gemm: NodeProto, op: GemmOperands, nb: Float32Array, nc: Float32Array): true {
  g.setTensor(op.bName, DataType.FLOAT, op.B.dims, nb);
  const biasName = op.cName ?? g.uniqueName(`${gemm.name || 'gemm'}_bias`);
  g.setTensor(biasName, DataType.FLOAT, [nc.length], nc);
  gemm.input = [gemm.input![0]!, op.bName, biasName];
  setAttr(gemm, 'alpha', 1, 'float');
  setAttr(gemm, 'beta', 1, 'float');
  return true;
}

/** Gemm -> BN(features)  ==>  Gemm with scaled weights and shifted bias (alpha/beta folded in). */
function foldAfterGemm(g: Graph, gemm: NodeProto, aff: Affine): boolean {
  const op = gemmOperands(g, gemm);
  if (!op) return false;
  const { transB, alpha, beta, r, c } = op;
  const n = transB ? r : c;
  if (aff.a.length !== n) return false;
  const bf = g.getFloat(op.bName);
  const nb = new Float32Array(bf.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) {
    const o = transB ? i : j;
    nb[i * c + j] = bf[i * c + j]! * alpha * aff.a[o]!;
  }
  const C = op.cName ? g.getFloat(op.cName) : new Float32Array(n); // [n] or one value: gemmOperands checked its shape
  const nc = new Float32Array(n);
  for (let o = 0; o < n; o++) nc[o] = (C.length === 1 ? C[0]! : C[o]!) * beta * aff.a[o]! + aff.b[o]!;
  return setGemmOperands(g, gemm, op, nb, nc);
}

/**
 * BN -> [Flatten] -> Gemm  ==>  Gemm: input feature k belongs to channel floor(k / spatial), so
 * B'[k, o] = B[k, o] * a[ch(k)] and C'[o] = C[o] + sum_k b[ch(k)] * B[k, o].
 */
function foldBeforeGemm(g: Graph, aff: Affine, gemm: NodeProto): boolean {
  const op = gemmOperands(g, gemm);
  if (!op) return false;
  const { transB, alpha, beta, r, c } = op;
  const K = transB ? c : r;
  const N = transB ? r : c;
  const channels = aff.a.length;
  if (K % channels !== 0) return false;
  const spatial = K / channels;
  const bf = g.getFloat(op.bName);
  const C = op.cName ? g.getFloat(op.cName) : new Float32Array(N);
  const nb = new Float32Array(bf.length);
  const nc = new Float32Array(N);
  for (let o = 0; o < N; o++) nc[o] = (C.length === 1 ? C[0]! : C[o]!) * beta;
  for (let k = 0; k < K; k++) {
    const ch = Math.floor(k / spatial);
    for (let o = 0; o < N; o++) {
      const idx = transB ? o * K + k : k * N + o;
      const v = bf[idx]! * alpha;
      nb[idx] = v * aff.a[ch]!;
      nc[o] = nc[o]! + v * aff.b[ch]!;
    }
  }
  return setGemmOperands(g, gemm, op, nb, nc);
}

/** True when a Conv pads its input, by `pads` or by `auto_pad` SAME_UPPER / SAME_LOWER. */
function convPadded(conv: NodeProto): boolean {
  const autoPad = conv.attribute?.find((x) => x.name === 'auto_pad');
  const mode = autoPad ? Buffer.from(autoPad.s ?? []).toString() : 'NOTSET';
  return (attrInts(conv, 'pads') ?? []).some((p) => p !== 0) || (mode !== 'NOTSET' && mode !== 'VALID');
}

/** BN -> Conv  ==>  Conv with W'[o,i] = W[o,i]*a[i] and bias += sum W[o,i]*b[i]; exact without padding. */
function foldBeforeConv(g: Graph, aff: Affine, conv: NodeProto, allowPadded: boolean): boolean {
  const [, wName, bName] = conv.input ?? [];
  if (!ownedInitializer(g, wName, conv) || (bName && !ownedInitializer(g, bName, conv))) return false;
  if (convPadded(conv) && !allowPadded) return false;
  const group = attrInt(conv, 'group', 1);
  const w = g.getTensor(wName!);
  const [out, cin, ...k] = w.dims as number[];
  const taps = k.reduce((x, y) => x * y, 1);
  if (cin! * group !== aff.a.length) return false;
  const wf = g.getFloat(wName!);
  const nw = new Float32Array(wf.length);
  const bias = bName ? Float32Array.from(g.getFloat(bName)) : new Float32Array(out!);
  const outPerGroup = out! / group;
  for (let o = 0; o < out!; o++) {
    const gi = Math.floor(o / outPerGroup);
    for (let i = 0; i < cin!; i++) {
      const ch = gi * cin! + i;
      for (let t = 0; t < taps; t++) {
        const idx = (o * cin! + i) * taps + t;
        nw[idx] = wf[idx]! * aff.a[ch]!;
        bias[o] = bias[o]! + wf[idx]! * aff.b[ch]!;
      }
    }
  }
  g.setTensor(wName!, DataType.FLOAT, w.dims, nw);
  const biasName = bName || g.uniqueName(`${conv.name || 'conv'}_bias`);
  g.setTensor(biasName, DataType.FLOAT, [out!], bias);
  conv.input = [conv.input![0]!, wName!, biasName];
  return true;
}

/**
 * A BatchNormalization that cannot be folded (IResNet's BN in front of a padded Conv) becomes a
 * depthwise 1x1 Conv with weights a and bias b: the same function, but one that quantizes to an int8
 * kernel with one weight scale per channel instead of staying a float island. Only done where every
 * consumer is a Conv (so the input is a 4-D feature map).
 */
export function batchNormsToDepthwise(g: Graph): string[] {
  const done: string[] = [];
  for (const bn of [...g.nodes]) {
    if (bn.opType !== 'BatchNormalization' || (bn.output?.length ?? 0) > 1 && bn.output!.slice(1).some((o) => o)) continue;
    const aff = bnAffine(g, bn);
    const y = bn.output![0]!;
    const consumers = g.consumers(y);
    if (!aff || !consumers.length || consumers.some((c) => c.opType !== 'Conv') || g.isGraphOutput(y)) continue;
    // the kernel has as many spatial axes as the Convs reading it (a Conv1d's BN gets [C, 1, 1]; a 2-D
    // kernel there failed to load)
    const ranks = new Set(consumers.flatMap((n) => (n.input?.[1] && g.hasInitializer(n.input[1]) ? [g.getTensor(n.input[1]).dims.length] : [])));
    const known = g.valueInfo(bn.input![0]!)?.shape?.length;
    if (known !== undefined) ranks.add(known);
    const rank = ranks.size === 0 ? 4 : ranks.size === 1 ? [...ranks][0]! : 0;
    if (rank < 3) continue;
    const c = aff.a.length;
    const w = g.uniqueName(`${bn.name || 'bn'}_dw_weight`);
    const b = g.uniqueName(`${bn.name || 'bn'}_dw_bias`);
    g.setTensor(w, DataType.FLOAT, [c, ...new Array<number>(rank - 1).fill(1)], aff.a);
    g.setTensor(b, DataType.FLOAT, [c], aff.b);
    bn.opType = 'Conv';
    bn.input = [bn.input![0]!, w, b];
    bn.output = [y];
    bn.attribute = [];
    setAttr(bn, 'group', c, 'int');
    setAttr(bn, 'kernel_shape', new Array<number>(rank - 2).fill(1), 'ints');
    done.push(bn.name ?? y);
  }
  g.invalidate();
  g.pruneUnused();
  return done;
}

export interface BatchNormFoldResult {
  /** BN nodes removed, with where each went. */
  folded: { bn: string; into: string; how: 'after-conv' | 'after-gemm' | 'before-gemm' | 'before-conv' | 'before-conv-padded' }[];
}

/**
 * Fold every BatchNormalization that can be folded. `preConvPadded` also folds BN into a following
 * padded Conv (approximate at the borders; measure before shipping it).
 */
export function foldBatchNorms(g: Graph, opts: { preConvPadded?: boolean } = {}): BatchNormFoldResult {
  const folded: BatchNormFoldResult['folded'] = [];
  for (const bn of [...g.nodes]) {
    if (bn.opType !== 'BatchNormalization' || (bn.output?.length ?? 0) > 1 && bn.output!.slice(1).some((o) => o)) continue;
    const aff = bnAffine(g, bn);
    if (!aff) continue;
    const x = bn.input![0]!;
    const y = bn.output![0]!;
    const producer = g.producer(x);
    const remove = (how: BatchNormFoldResult['folded'][number]['how'], into: NodeProto, rewire: () => void) => {
      rewire();
      g.removeNodes([bn]);
      folded.push({ bn: bn.name ?? '', into: into.name ?? '', how });
    };
    // after Conv / Gemm: the producer takes over the BN's output name
    if (producer && soleConsumer(g, x) === bn && !g.isGraphOutput(x)) {
      if (producer.opType === 'Conv' && foldAfterConv(g, producer, bn, aff)) {
        remove('after-conv', producer, () => { producer.output = [y]; });
        continue;
      }
      if (producer.opType === 'Gemm' && foldAfterGemm(g, producer, aff)) {
        remove('after-gemm', producer, () => { producer.output = [y]; });
        continue;
      }
    }
    // before Gemm (through Flatten) or Conv: consumers read the BN's input instead
    const next = soleConsumer(g, y);
    if (!next) continue;
    if (next.opType === 'Flatten' && attrInt(next, 'axis', 1) === 1) {
      const gemm = soleConsumer(g, next.output![0]!);
      if (gemm?.opType === 'Gemm' && gemm.input![0] === next.output![0] && foldBeforeGemm(g, aff, gemm)) {
        remove('before-gemm', gemm, () => g.replaceInput(next, y, x));
        continue;
      }
    }
    if (next.opType === 'Gemm' && next.input![0] === y && foldBeforeGemm(g, aff, next)) {
      remove('before-gemm', next, () => g.replaceInput(next, y, x));
      continue;
    }
    if (next.opType === 'Conv' && next.input![0] === y) {
      const padded = convPadded(next); // before the fold: it does not change the attributes
      if (foldBeforeConv(g, aff, next, !!opts.preConvPadded)) {
        remove(padded ? 'before-conv-padded' : 'before-conv', next, () => g.replaceInput(next, y, x));
      }
    }
  }
  g.pruneUnused();
  return { folded };
}
