/**
 * The QDQ rewriter: phases applied in a fixed order to a float graph whose activation ranges are known.
 *   1. fold   - Relu/Clip(0,·) after a quantized producer disappears into the producer's range (uint8:
 *               QuantizeLinear saturates at zero point 0, which is exactly Relu);
 *   2. mark   - each node's handler marks tensors (handlers.ts);
 *   3. params - scales/zero points from calibrated ranges, shared parameters resolved;
 *   4. insert - QuantizeLinear/DequantizeLinear pairs on activations, int8 weights and int32 biases
 *               behind DequantizeLinear (weights.ts; Cast + Mul for float layers' weight-only int8),
 *               consumers rewired;
 *   5. prune  - unused float initializers removed, nodes sorted.
 * Tensor names are deterministic: `<t>_QuantizeLinear` / `<t>_DequantizeLinear` nodes, `<t>_quantized`,
 * `<t>_dequantized`, `<t>_scale`, `<t>_zero_point`, so float and quantized graphs pair up by name; a
 * name the model already uses gets a numeric suffix instead (graph.ts NameScope), never overwritten. Weights
 * (symmetric int8) and int32 biases are stored without a zero point (DequantizeLinear's default 0), and
 * with one scale where every channel has the same one.
 */
import { FaceoptError } from '../errors.js';
import { WEIGHTED_OPS, type Graph } from '../onnx/graph.js';
import { inferElemTypes } from '../onnx/types.js';
import { DataType, attrFloat, getAttr, makeNode, type NodeProto } from '../onnx/proto.js';
import { asymmetricUint8, symmetricInt8, type QParams } from './qparams.js';
import { quantizeConstants } from './weights.js';
import { floatClosure, shieldFloatLayers, storesWeightOnly } from './float-layers.js';
import { HANDLERS, isDepthwise, isStrided, slowInt8Reason, type Handler, type MarkContext } from './handlers.js';
import type { QuantizeOptions } from './options.js';
import { splitQuantized } from './split-quantized.js';
import { padInputChannels, type PaddedInput } from './pad-input.js';

/** Calibrated ranges per tensor name. */
export type RangeTable = Record<string, readonly [number, number]>;

/**
 * Why a node stayed float: excluded by name or op type, producing or reading an activation mixed
 * precision keeps float, no int8 kernel for its op, or an int8 kernel slower than float.
 */
export type FloatCause = 'excluded' | 'produces-float' | 'reads-float' | 'no-int8-kernel' | 'slow-int8';

export interface QdqResult {
  /** Nodes whose handler ran (quantized). */
  quantizedNodes: string[];
  /** Nodes left in float, with the reason (for people) and its cause (for code). */
  floatNodes: { name: string; op: string; cause: FloatCause; reason: string }[];
  /** Relu/Clip nodes folded into their producer's range. */
  foldedActivations: string[];
  activations: number;
  weights: number;
  biases: number;
  /** Parameters chosen per activation tensor (for reports and TensorRT caches). */
  params: Record<string, { scale: number; zeroPoint: number; dtype: 'uint8' | 'int8' }>;
  /** Activations quantized without rounding of their own (they share their input's grid exactly). */
  exactActivations: string[];
  /** Graph inputs the int8 convolutions read padded to a multiple of 4 channels (pad-input.ts). */
  paddedInputs: PaddedInput[];
}

const excluded = (n: NodeProto, opts: QuantizeOptions) =>
  opts.exclude.includes(n.name ?? '') || opts.exclude.includes(n.opType ?? '') || (n.output ?? []).some((o) => opts.floatTensors.includes(o));

function clipBounds(g: Graph, n: NodeProto): [number, number] {
  if (n.opType === 'Relu') return [0, Infinity];
  const lo = n.input?.[1] ? g.getFloat(n.input[1])[0]! : typeof getAttr(n, 'min') === 'number' ? attrFloat(n, 'min', -Infinity) : -Infinity;
  const hi = n.input?.[2] ? g.getFloat(n.input[2])[0]! : typeof getAttr(n, 'max') === 'number' ? attrFloat(n, 'max', Infinity) : Infinity;
  return [lo, hi];
}

/** A Relu/Clip folded into its producer's output range: the removed node, restorable (restoreFolded). */
interface Folded { node: NodeProto; producer: NodeProto; input: string }

/** Phase 1: fold Relu/Clip(0, max) into a quantized producer (uint8 only), keyed by the output tensor. */
function foldActivations(g: Graph, ranges: Record<string, [number, number]>, opts: QuantizeOptions, handlers: Record<string, Handler>): Map<string, Folded> {
  const folded = new Map<string, Folded>();
  if (!opts.foldRelu || opts.activationType !== 'uint8') return folded;
  for (const n of [...g.nodes]) {
    if ((n.opType !== 'Relu' && n.opType !== 'Clip') || excluded(n, opts)) continue;
    const x = n.input![0]!;
    const y = n.output![0]!;
    const p = g.producer(x);
    if (!p || !handlers[p.opType ?? ''] || excluded(p, opts) || g.consumers(x).length !== 1 || g.isGraphOutput(x)) continue;
    if (!['Conv', 'Gemm', 'MatMul', 'Add', 'Concat'].includes(p.opType ?? '')) continue;
    const [lo, hi] = clipBounds(g, n);
    if (lo !== 0) continue;
    const r = ranges[y] ?? ranges[x];
    if (!r) continue;
    ranges[y] = [0, Math.min(Math.max(r[1], 0), hi)];
    p.output = p.output!.map((o) => (o === x ? y : o));
    g.removeNodes([n]);
    folded.set(y, { node: n, producer: p, input: x });
  }
  return folded;
}

/** Put a folded Relu/Clip back after its producer: its output is not quantized after all, so no QuantizeLinear clamps it. */
function restoreFolded(g: Graph, y: string, f: Folded): void {
  f.producer.output = f.producer.output!.map((o) => (o === y ? f.input : o));
  g.addNode(f.node);
}

function paramsFor(lo: number, hi: number, opts: QuantizeOptions): QParams {
  if (opts.activationType === 'uint8') return asymmetricUint8(Math.min(lo, 0), Math.max(hi, 0));
  const amax = Math.max(Math.abs(lo), Math.abs(hi));
  return symmetricInt8(-amax, amax);
}

/**
 * Rewrite `g` (float, opset >= 13) to QDQ form using calibrated `ranges`. Mutates the graph.
 */
export function insertQdq(g: Graph, rangesIn: RangeTable, optsIn: QuantizeOptions, handlers: Record<string, Handler> = HANDLERS): QdqResult {
  const ranges: Record<string, [number, number]> = {};
  for (const [k, v] of Object.entries(rangesIn)) ranges[k] = [v[0], v[1]];
  const opts = { ...optsIn, floatTensors: floatClosure(g, optsIn.floatTensors) };
  const folded = foldActivations(g, ranges, opts, handlers);

  // --- phase 2: mark ------------------------------------------------------------------------
  const activations = new Set<string>();
  const shared = new Map<string, string>();
  const weights = new Map<string, number>();
  const biases = new Map<string, { input: string; weight: string }>();
  const quantizedNodes: string[] = [];
  const floatNodes: QdqResult['floatNodes'] = [];
  const quantizedSet = new Set<NodeProto>();
  const ctx: MarkContext = {
    graph: g,
    activation: (t) => { if (t) activations.add(t); },
    share: (o, i) => { shared.set(o, i); },
    weight: (w, axis) => { weights.set(w, axis); },
    bias: (b, input, weight) => { biases.set(b, { input, weight }); },
    isInitializer: (t) => g.hasInitializer(t),
  };
  // layers kept float for their output activation only: weights int8 behind a DequantizeLinear
  const weightOnly = new Map<NodeProto, { weights: Map<string, number>; biases: Map<string, { input: string; weight: string }> }>();
  for (const n of g.nodes) {
    const h = handlers[n.opType ?? ''];
    if (excluded(n, opts)) {
      const byUser = opts.exclude.includes(n.name ?? '') || opts.exclude.includes(n.opType ?? '');
      const marks = !byUser && storesWeightOnly(g, n, opts) && (n.opType ?? '') in handlers && (!n.domain || n.domain === 'ai.onnx') ? weightMarks(g, n, h) : null;
      if (marks?.weights.size) weightOnly.set(n, marks);
      floatNodes.push({
        name: n.name ?? '', op: n.opType ?? '', cause: byUser ? 'excluded' : 'produces-float',
        reason: byUser ? 'excluded by option' : `produces an activation kept float (mixed precision)${marks?.weights.size ? '; weights int8 (weight-only)' : ''}`,
      });
      continue;
    }
    // a Relu/Clip left after a float layer (not folded: its producer was excluded) runs with it, in float
    const fp = n.opType === 'Relu' || n.opType === 'Clip' ? g.producer(n.input?.[0] ?? '') : undefined;
    if (opts.skipFloatOnlyActivations && fp && WEIGHTED_OPS.has(fp.opType ?? '') && excluded(fp, opts)) {
      floatNodes.push({ name: n.name ?? '', op: n.opType ?? '', cause: 'produces-float', reason: 'the activation function of a float layer' });
      continue;
    }
    if (!h || (n.domain && n.domain !== 'ai.onnx')) { floatNodes.push({ name: n.name ?? '', op: n.opType ?? '', cause: 'no-int8-kernel', reason: 'no int8 kernel for this op (stays float between DequantizeLinear and QuantizeLinear)' }); continue; }
    const slow = opts.floatSlowInt8 ? slowInt8Reason(g, n) : null;
    if (slow) { floatNodes.push({ name: n.name ?? '', op: n.opType ?? '', cause: 'slow-int8', reason: slow }); continue; }
    // quantized only when the handler marked something (a Conv with run-time weights marks nothing)
    let marked = false;
    h(n, {
      ...ctx,
      activation: (t) => { marked = true; ctx.activation(t); },
      share: (o, i) => { marked = true; ctx.share(o, i); },
      weight: (w, axis) => { marked = true; ctx.weight(w, axis); },
      bias: (b, input, weight) => { marked = true; ctx.bias(b, input, weight); },
    });
    if (!marked) { floatNodes.push({ name: n.name ?? '', op: n.opType ?? '', cause: 'no-int8-kernel', reason: 'nothing here its int8 handler can take (weights computed at run time, or a form without an int8 kernel): stays float' }); continue; }
    quantizedNodes.push(n.name ?? '');
    quantizedSet.add(n);
  }
  // only float tensors are quantized (shape arithmetic such as Shape -> Gather -> Concat stays int64);
  // graph outputs only when asked
  const types = inferElemTypes(g);
  const isFloat = (t: string) => (types.get(t) ?? DataType.FLOAT) === DataType.FLOAT;
  for (const t of [...activations]) {
    if (!isFloat(t) || (!opts.quantizeGraphOutputs && g.isGraphOutput(t)) || weights.has(t) || biases.has(t)) activations.delete(t);
  }
  for (const [o, i] of [...shared]) if (!isFloat(o) || !isFloat(i)) shared.delete(o);
  for (const [o] of shared) if (!opts.quantizeGraphOutputs && g.isGraphOutput(o)) shared.delete(o);
  for (const t of opts.floatTensors) { activations.delete(t); shared.delete(t); }
  // a weighted layer whose data input stays float cannot run in int8: it is a float layer too (its
  // weights float, or int8 behind a DequantizeLinear with weightOnlyFloatLayers), not a float conv on
  // weights dequantized at every run, which onnxruntime cannot pack into its fast NCHWc layout
  const keptFloat = new Set(opts.floatTensors);
  const makeFloat = (n: NodeProto, cause: FloatCause, reason: string) => {
    const [, w, b] = n.input ?? [];
    const marks = w && storesWeightOnly(g, n, opts) ? { weights: new Map([[w, weights.get(w)!]]), biases: new Map(b && biases.has(b) ? [[b, biases.get(b)!]] : []) } : null;
    if (w) weights.delete(w);
    if (b) biases.delete(b);
    if (marks) weightOnly.set(n, marks);
    const at = quantizedNodes.indexOf(n.name ?? '');
    if (at >= 0) quantizedNodes.splice(at, 1);
    quantizedSet.delete(n);
    floatNodes.push({ name: n.name ?? '', op: n.opType ?? '', cause, reason: `${reason}${marks ? '; weights int8 (weight-only)' : ''}` });
  };
  for (const n of g.nodes) {
    const [x, w] = n.input ?? [];
    if (!w || !weights.has(w) || !x || !keptFloat.has(x) || excluded(n, opts)) continue;
    makeFloat(n, 'reads-float', 'reads an activation kept float (mixed precision)');
  }
  // float borders (QuantizeOptions.floatStridedBorders): a stride-2 depthwise conv whose input only
  // float layers write and read stays float, so the region hands over on its 4x smaller output
  if (opts.floatSlowInt8 && opts.floatStridedBorders) {
    for (const n of g.nodes) { // topological order: a chain of them moves the border along
      const x = n.input?.[0];
      const p = x ? g.producer(x) : undefined;
      if (!x || !p || !quantizedSet.has(n) || quantizedSet.has(p) || !isDepthwise(g, n) || !isStrided(n)) continue;
      if (g.consumers(x).some((c) => c !== n && quantizedSet.has(c))) continue;
      makeFloat(n, 'slow-int8', 'strided depthwise conv reading a float layer: float, so the float region hands over to int8 on its smaller output');
    }
  }
  // no Q/DQ on an activation only float layers write and read (QuantizeOptions.skipFloatOnlyActivations)
  if (opts.skipFloatOnlyActivations) {
    for (const t of [...activations]) {
      const p = g.producer(t);
      const cs = g.consumers(t);
      if (!p || quantizedSet.has(p) || cs.length === 0 || cs.some((c) => quantizedSet.has(c)) || g.isGraphOutput(t)) continue;
      activations.delete(t);
    }
  }
  // nothing runs in int8 (every layer float by exclusion, float prefix or mixed precision): no Q/DQ pair
  // at all, which would only round activations (a graph output among them) for nothing
  if (quantizedSet.size === 0) { activations.clear(); shared.clear(); }
  // a Relu folded into a range that is not quantized after all lost its clamp: it comes back as a node
  for (const [y, f] of [...folded]) {
    if (activations.has(y)) continue;
    restoreFolded(g, y, f);
    folded.delete(y);
  }
  const foldedActivations = [...folded.values()].map((f) => f.node.name || f.node.output![0]!);

  // --- phase 3: parameters --------------------------------------------------------------------
  const params = new Map<string, QParams>();
  const rangeOf = (t: string): [number, number] => {
    if (ranges[t]) return ranges[t]!;
    if (g.hasInitializer(t)) {
      const v = g.getFloat(t);
      let lo = 0; let hi = 0;
      for (const x of v) { if (x < lo) lo = x; if (x > hi) hi = x; }
      return [lo, hi];
    }
    throw new FaceoptError('FACEOPT_ERR_QUANTIZE', { node: g.producer(t)?.name ?? t, reason: `no calibrated range for tensor ${t} (calibration did not see it${g.producer(t)?.opType === 'Constant' ? ': a Constant node of a form faceopt does not read' : ''}); with --stats, calibrate this graph again (those stats may belong to another graph); else leave the node float with --exclude ${g.producer(t)?.name ?? t} and report the model` });
  };
  const resolve = (t: string, seen = new Set<string>()): QParams => {
    const got = params.get(t);
    if (got) return got;
    const src = shared.get(t);
    const qp = src && !seen.has(src) ? (seen.add(t), resolve(src, seen)) : (() => { const [lo, hi] = rangeOf(t); return paramsFor(lo, hi, opts); })();
    params.set(t, qp);
    return qp;
  };
  for (const t of [...activations, ...shared.keys()]) resolve(t);
  const exactActivations = opts.exactSignConvs ? exactSignConvGrids(g, params, ranges, opts) : [];
  if (exactActivations.length > 0) {
    // tensors sharing an overridden tensor's parameters (Reshape after it, ...) follow it
    for (const o of shared.keys()) params.delete(o);
    for (const o of shared.keys()) resolve(o);
  }

  // --- phase 4: insert ------------------------------------------------------------------------
  const qType = opts.activationType === 'uint8' ? DataType.UINT8 : DataType.INT8;
  const newNodes: NodeProto[] = [];
  // DequantizeLinear output -> quantized tensor, for the float-layer shield below
  const dequantized = new Map<string, string>();
  // activation -> its QuantizeLinear output, for the float-layer shield below
  const quantizedOf = new Map<string, string>();
  // every generated name is unique against the model's own names and each other: `<t>_scale` and the
  // rest when free (the usual case), `<t>_scale_1`, ... when the model already uses that name
  const names = g.nameScope();
  const addQdq = (t: string) => {
    const qp = params.get(t)!;
    // a graph output some node produces: the producer writes a float copy, and the DequantizeLinear
    // writes the output itself, which the graph's other readers then read (dequantized, as everywhere
    // else). A graph input that is also a graph output stays as it is, and its readers are rewired.
    const isOut = g.isGraphOutput(t) && g.producer(t) !== undefined;
    const src = isOut ? names.fresh(`${t}_float`) : t;
    if (isOut) {
      const p = g.producer(t)!;
      p.output = p.output!.map((o) => (o === t ? src : o));
      g.invalidate();
    }
    const scale = names.fresh(`${t}_scale`);
    const zero = names.fresh(`${t}_zero_point`);
    g.setTensor(scale, DataType.FLOAT, [], [qp.scale]);
    g.setTensor(zero, qType, [], [qp.zeroPoint]);
    const deq = isOut ? t : names.fresh(`${t}_dequantized`);
    const quantized = names.fresh(`${t}_quantized`);
    dequantized.set(deq, t);
    quantizedOf.set(t, quantized);
    if (!isOut) g.replaceAllUses(t, deq);
    newNodes.push(makeNode('QuantizeLinear', [src, scale, zero], [quantized], names.fresh(`${t}_QuantizeLinear`)));
    newNodes.push(makeNode('DequantizeLinear', [quantized, scale, zero], [deq], names.fresh(`${t}_DequantizeLinear`)));
  };
  const toQuantize = new Set([...activations, ...shared.keys()]);
  for (const t of toQuantize) {
    if (!g.isRead(t)) continue;
    addQdq(t);
  }
  newNodes.push(...quantizeConstants(g, {
    weights, biases, weightOnly, params, opts, names,
    takesInt8: (c) => Boolean(handlers[c.opType ?? ''] && !excluded(c, opts)),
    // a float layer that reads a quantized activation and whose output is quantized again: its weights
    // stay behind a DequantizeLinear (folded float weights there are what onnxruntime's own weight
    // quantization would take)
    betweenQdq: (c) => dequantized.has(c.input?.[0] ?? '') && toQuantize.has(c.output?.[0] ?? ''),
  }));
  if (opts.shieldFloatLayers) {
    const quantized = new Set(newNodes.filter((q) => q.opType === 'QuantizeLinear').map((q) => q.input![0]!));
    newNodes.push(...shieldFloatLayers(g, params, dequantized, qType, quantized, quantizedOf, names));
  }
  for (const n of newNodes) g.addNode(n);
  if (opts.splitQuantized) splitQuantized(g);
  const paddedInputs = opts.padInputChannels ? padInputChannels(g) : [];

  // --- phase 5: prune and order ---------------------------------------------------------------
  g.pruneUnused();
  g.toposort();
  const outParams: QdqResult['params'] = {};
  for (const [t, qp] of params) outParams[t] = { scale: qp.scale, zeroPoint: qp.zeroPoint, dtype: qp.dtype };
  return {
    quantizedNodes, floatNodes, foldedActivations, exactActivations,
    activations: toQuantize.size, weights: weights.size, biases: biases.size, params: outParams, paddedInputs,
  };
}

/** The weight and bias marks `h` makes for `n` (activations and sharing ignored). */
function weightMarks(g: Graph, n: NodeProto, h: Handler): { weights: Map<string, number>; biases: Map<string, { input: string; weight: string }> } {
  const weights = new Map<string, number>();
  const biases = new Map<string, { input: string; weight: string }>();
  h(n, {
    graph: g, activation: () => {}, share: () => {},
    weight: (w, axis) => { if (g.hasInitializer(w) && g.getTensor(w).dataType === DataType.FLOAT) weights.set(w, axis); },
    bias: (b, input, weight) => { biases.set(b, { input, weight }); },
    isInitializer: (t) => g.hasInitializer(t),
  });
  return { weights, biases };
}

/**
 * A depthwise 1x1 Conv with every weight +1 (or every weight -1), no bias, and its Relu folded into a
 * [0, hi] range is exactly Relu(x) (or Relu(-x)): the values are already on x's grid. Giving its output
 * x's scale with zero point 0 makes it exact, where a range of its own re-rounds every value onto a finer,
 * misaligned grid. These are the rectified halves of the `sign-dw` and `sign-concat` PRelu forms (uint8
 * only). A Concat whose inputs all sit on one grid (the `sign-concat` halves) takes that grid too, so
 * joining them is exact as well.
 */
function exactSignConvGrids(g: Graph, params: Map<string, QParams>, ranges: Record<string, [number, number]>, opts: QuantizeOptions): string[] {
  if (opts.activationType !== 'uint8') return [];
  const exact: string[] = [];
  for (const n of g.nodes) {
    if (n.opType === 'Concat' && !excluded(n, opts)) {
      const grids = (n.input ?? []).map((i) => params.get(i));
      const first = grids[0];
      const py = params.get(n.output![0]!);
      if (py && first && grids.every((p) => p && p.scale === first.scale && p.zeroPoint === first.zeroPoint)) {
        params.set(n.output![0]!, { ...py, scale: first.scale, zeroPoint: first.zeroPoint });
        exact.push(n.output![0]!);
      }
      continue;
    }
    if (!isDepthwise(g, n) || (n.input?.[2] ?? '') !== '' || excluded(n, opts)) continue;
    const [x, w] = n.input!;
    const y = n.output![0]!;
    const px = params.get(x ?? '');
    const py = params.get(y);
    if (!px || !py || !w || (ranges[y]?.[0] ?? -1) < 0) continue;
    const dims = g.getTensor(w).dims.map(Number);
    if (dims.length !== 4 || dims[2] !== 1 || dims[3] !== 1) continue;
    const v = g.getFloat(w);
    const sign = v[0];
    if ((sign !== 1 && sign !== -1) || v.some((e) => e !== sign)) continue;
    params.set(y, { ...py, scale: px.scale, zeroPoint: 0 });
    exact.push(y);
  }
  return exact;
}
