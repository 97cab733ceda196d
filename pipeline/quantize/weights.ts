/**
 * The constants of quantized layers: int8 weights (per channel or per tensor, symmetric) with the nodes
 * that give their consumers float values back, and float biases corrected for the rounding of the
 * weights they go with, and the weight scales grown so int32 biases fit. Used by the QDQ rewriter (qdq.ts), phase 4.
 */
import type { Graph, NameScope } from '../onnx/graph.js';
import { DataType, makeNode, type NodeProto } from '../onnx/proto.js';
import { FaceoptError } from '../errors.js';
import { WEIGHT_QMAX, adjustWeightScalesForBias, firstNonFinite, quantizeBias, roundHalfEven, quantizeWeightsPerChannel, symmetricInt8FromAmax } from './qparams.js';
import type { QuantizeOptions } from './options.js';
import { PER_TENSOR } from './handlers.js';

/**
 * The values of constant `name`, refused (FACEOPT_ERR_GRAPH, naming it) when one is NaN or infinite:
 * the float model computes NaN or infinity with it, and quantized it silently became 0 (NaN) or a
 * saturated int32 bias, a model that computes something else.
 */
export function finiteConstant(g: Graph, name: string, what: string): Float32Array {
  const v = g.getFloat(name);
  const i = firstNonFinite(v);
  if (i >= 0) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', {
      reason: `${what} ${name} holds ${v[i]} at index ${i}, so the float model computes NaN or infinity with it; fix or re-export the model (or keep its layer float with --exclude)`,
    });
  }
  return v;
}

/** The symmetric int8 scale of a whole weight tensor (`--per-tensor`): its largest magnitude / qmax (127, or 64 reduced). */
export function perTensorWeightScale(values: Float32Array, qmax = WEIGHT_QMAX): number {
  let amax = 0;
  for (const v of values) amax = Math.max(amax, Math.abs(v));
  return symmetricInt8FromAmax(amax, qmax).scale;
}

/**
 * Weight `w` as int8 (`<w>_quantized`, `<w>_scale`, `<w>_zero_point` unless compact; suffixed where the
 * model already uses the name) and the nodes that produce `<w>_dequantized`: a DequantizeLinear, or for the weight-only int8 of a float layer ('cast-mul')
 * Cast + Mul by the scales shaped to broadcast along `axis`. Cast + Mul gives the same values
 * (q * scale), but onnxruntime folds it into a float initializer when the session loads, where a
 * DequantizeLinear on a constant runs at every inference (QuantizeOptions.foldableWeightOnly).
 * `scalesIn` overrides the per-channel scales, or per tensor raises the one scale (grown so int32 biases fit).
 */
export function int8Weight(g: Graph, w: string, axis: number, scalesIn: Float32Array | undefined, opts: QuantizeOptions, form: 'dequantize' | 'cast-mul', names = g.nameScope()): { scales: Float32Array; nodes: NodeProto[]; output: string } {
  const t = g.getTensor(w);
  const values = finiteConstant(g, w, 'weight');
  const perChannelAsked = opts.perChannel && axis !== PER_TENSOR;
  const qmax = opts.weightQmax ?? WEIGHT_QMAX;
  const q = perChannelAsked
    ? quantizeWeightsPerChannel(values, t.dims, axis, scalesIn, qmax)
    : quantizeWeightsPerChannel(values, [1, values.length], 0, [Math.max(perTensorWeightScale(values, qmax), scalesIn?.[0] ?? 0)], qmax);
  const { scales, data, zeroPoints: zp } = q;
  // one scale for every channel (the +-1 sign convolutions of sign-dw) is stored once: same values
  const compact = opts.compactConstants;
  const perCh = perChannelAsked && (!compact || scales.some((v) => v !== scales[0]));
  // names unique against the graph's own (`names`): `<w>_quantized` and so on unless the model uses them
  const wq = names.fresh(`${w}_quantized`);
  const ws = names.fresh(`${w}_scale`);
  g.setTensor(wq, DataType.INT8, t.dims, data);
  if (form === 'cast-mul') {
    g.setTensor(ws, DataType.FLOAT, perCh ? t.dims.map((d, i) => (i === axis ? d : 1)) : [], perCh ? scales : scales.subarray(0, 1));
    const asFloat = names.fresh(`${w}_int8_as_float`);
    const output = names.fresh(`${w}_dequantized`);
    return {
      scales,
      output,
      nodes: [
        makeNode('Cast', [wq], [asFloat], names.fresh(`${w}_Cast`), { to: DataType.FLOAT }),
        makeNode('Mul', [asFloat, ws], [output], names.fresh(`${w}_Mul`)),
      ],
    };
  }
  g.setTensor(ws, DataType.FLOAT, perCh ? [scales.length] : [], perCh ? scales : scales.subarray(0, 1));
  // symmetric: the zero point is 0, DequantizeLinear's default, but it is stored even in a compact
  // graph: onnxruntime's QLinearConv takes its symmetric-weight kernels only when the weight zero point
  // is a constant input (TryConvSymPrepack). Measured 2026-12-05 (alternating blocks, two threads):
  // the IResNet-50 fixture at batch 8 142.9 -> 135.8 ms with it (every block 1.05x), scrfd_500m 1.01x,
  // mobileface and the MobileFaceNet-512 fixture within noise; it costs one byte per output channel.
  const wz = names.fresh(`${w}_zero_point`);
  g.setTensor(wz, DataType.INT8, perCh ? [zp.length] : [], perCh ? zp : zp.subarray(0, 1));
  const output = names.fresh(`${w}_dequantized`);
  const dq = makeNode('DequantizeLinear', [wq, ws, wz], [output], names.fresh(`${w}_DequantizeLinear`));
  if (perCh) dq.attribute!.push({ name: 'axis', type: 2, i: axis });
  return { scales, nodes: [dq], output };
}

/**
 * The float bias of a Conv, corrected for the mean output shift that rounding its weights causes:
 * b_o -= sum_{i,taps} (Wq - W)[o, i, taps] * E[x_i] (borders of padded convs ignored), with E[x] the
 * per-channel input mean measured on calibration data. Without measurements the bias is returned as is.
 */
export function biasCorrected(g: Graph, b: string, input: string, weight: string, scales: Float32Array, opts: QuantizeOptions, node?: NodeProto): Float32Array {
  const bias = Float32Array.from(finiteConstant(g, b, 'bias'));
  const mean = opts.inputMeans?.get(input);
  const conv = node?.opType === 'Conv' ? node : g.consumers(b).find((n) => n.opType === 'Conv');
  if (!mean || !conv) return bias;
  const w = g.getTensor(weight);
  const wf = g.getFloat(weight);
  const [o, cpg] = w.dims as [number, number];
  const taps = w.dims.slice(2).reduce((p, q) => p * q, 1);
  const group = conv.attribute?.find((a) => a.name === 'group')?.i;
  const groups = group ? Number(group) : 1;
  if (mean.length !== cpg * groups || bias.length !== o) return bias;
  const outPerGroup = o / groups;
  for (let oc = 0; oc < o; oc++) {
    const s = scales.length === 1 ? scales[0]! : scales[oc]!;
    const gi = Math.floor(oc / outPerGroup);
    let shift = 0;
    for (let i = 0; i < cpg; i++) {
      const m = mean[gi * cpg + i]!;
      for (let t = 0; t < taps; t++) {
        const v = wf[(oc * cpg + i) * taps + t]!;
        const q = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(v / s))));
        shift += (q * s - v) * m;
      }
    }
    bias[oc] = bias[oc]! - shift;
  }
  return bias;
}

/**
 * Weight scales grown so each int32 bias fits (adjustWeightScalesForBias), by weight: per channel, or with
 * `perChannel` false the one scale the most demanding channel needs (a per-tensor weight's bias
 * saturated int32 without this: output off by 1.06 where per-channel was off by 0.004). Weights are
 * checked for NaN/Inf here first, so the refusal names the tensor.
 */
export function biasFitScales(
  g: Graph, biases: ReadonlyMap<string, { input: string; weight: string }>, weights: ReadonlyMap<string, number>,
  params: ReadonlyMap<string, { scale: number }>, perChannel: boolean, qmax = WEIGHT_QMAX,
): Map<string, Float32Array> {
  const adjusted = new Map<string, Float32Array>();
  for (const [b, { input, weight }] of biases) {
    const axis = weights.get(weight);
    if (axis === undefined) continue;
    const w = g.getTensor(weight);
    const values = finiteConstant(g, weight, 'weight');
    const inScale = params.get(input)?.scale;
    if (inScale === undefined) continue;
    const bias = g.getFloat(b);
    // the same per-channel rule int8Weight follows (a PER_TENSOR weight has one scale whatever is asked)
    if (perChannel && axis !== PER_TENSOR) {
      const q = quantizeWeightsPerChannel(values, w.dims, axis, undefined, qmax);
      if (bias.length !== q.scales.length) continue;
      adjusted.set(weight, adjustWeightScalesForBias(q.scales, bias, inScale));
    } else {
      // one scale for the whole tensor: the largest any channel's bias needs
      const s = perTensorWeightScale(values, qmax);
      const need = adjustWeightScalesForBias(new Float32Array(bias.length).fill(s), bias, inScale);
      adjusted.set(weight, Float32Array.of(need.reduce((a, v) => Math.max(a, v), s)));
    }
  }
  return adjusted;
}

/** What phase 4 of the QDQ rewriter hands quantizeConstants (qdq.ts insertQdq). */
export interface ConstantMarks {
  /** Marked weights and the axis of their output channels (PER_TENSOR: one scale). */
  weights: ReadonlyMap<string, number>;
  /** Marked biases and the input and weight their int32 scale comes from. */
  biases: ReadonlyMap<string, { input: string; weight: string }>;
  /** Float layers whose weights are stored int8 (weight-only), with their own marks. */
  weightOnly: ReadonlyMap<NodeProto, { weights: Map<string, number>; biases: Map<string, { input: string; weight: string }> }>;
  /** Activation parameters (an int32 bias takes its input's scale). */
  params: ReadonlyMap<string, { scale: number }>;
  opts: QuantizeOptions;
  names: NameScope;
  /** A consumer that runs in int8 (has a handler, not excluded): it reads the dequantized constant. */
  takesInt8: (n: NodeProto) => boolean;
  /** A float layer between a DequantizeLinear and a QuantizeLinear (its weight-only weights stay behind a DequantizeLinear). */
  betweenQdq: (n: NodeProto) => boolean;
}

/**
 * Phase 4's constants: every marked weight int8 (behind a DequantizeLinear; Cast + Mul for a weight-only
 * layer onnxruntime may fold), the float bias of a weight-only layer corrected for its rounded weights,
 * and every marked bias int32 with scale = input scale x weight scale (weight scales grown first where a
 * bias would not fit). Consumers are rewired; returns the new nodes.
 */
export function quantizeConstants(g: Graph, c: ConstantMarks): NodeProto[] {
  const { weights, biases, weightOnly, params, opts, names } = c;
  const newNodes: NodeProto[] = [];
  const weightScales = new Map<string, Float32Array>();
  // biases first decide whether a weight scale must grow so the int32 bias fits
  const adjusted = biasFitScales(g, biases, weights, params, opts.perChannel, opts.weightQmax ?? WEIGHT_QMAX);
  const weightOnlyAxes = new Map<string, number>();
  for (const { weights: ws } of weightOnly.values()) for (const [w, axis] of ws) if (!weights.has(w)) weightOnlyAxes.set(w, axis);
  for (const [w, axis] of [...weights, ...weightOnlyAxes]) {
    const form = weightOnlyAxes.has(w) && opts.foldableWeightOnly && !g.consumers(w).some(c.betweenQdq) ? 'cast-mul' : 'dequantize';
    const { scales, nodes, output } = int8Weight(g, w, axis, adjusted.get(w), opts, form, names);
    weightScales.set(w, scales);
    newNodes.push(...nodes);
    for (const n of g.consumers(w)) {
      if (c.takesInt8(n) || weightOnly.get(n)?.weights.has(w)) g.replaceInput(n, w, output);
    }
  }
  // the float bias of a weight-only layer absorbs the output shift its rounded weights cause
  for (const [n, { biases: bs }] of weightOnly) {
    for (const [b, { input, weight }] of bs) {
      const ws = weightScales.get(weight);
      if (!ws || !g.hasInitializer(b) || g.consumers(b).length !== 1) continue;
      const corrected = names.fresh(`${b}_weight_only_corrected`);
      g.setTensor(corrected, DataType.FLOAT, g.getTensor(b).dims, biasCorrected(g, b, input, weight, ws, opts, n));
      g.replaceInput(n, b, corrected);
    }
  }
  for (const [b, { input, weight }] of biases) {
    const inScale = params.get(input)?.scale;
    const ws = weightScales.get(weight);
    if (inScale === undefined || !ws) continue;
    const bias = biasCorrected(g, b, input, weight, ws, opts);
    const q = quantizeBias(bias, inScale, ws.length === bias.length ? ws : ws[0]!);
    const compact = opts.compactConstants;
    const perCh = q.scales.length > 1 && (!compact || q.scales.some((v) => v !== q.scales[0]));
    const bq = names.fresh(`${b}_quantized`);
    const bs = names.fresh(`${b}_scale`);
    g.setTensor(bq, DataType.INT32, [bias.length], q.data);
    g.setTensor(bs, DataType.FLOAT, perCh ? [q.scales.length] : [], perCh ? q.scales : q.scales.subarray(0, 1));
    // int32 has no zero point in DequantizeLinear (ONNX: it is 0): a compact graph stores none
    const bz = compact ? '' : names.fresh(`${b}_zero_point`);
    if (bz) g.setTensor(bz, DataType.INT32, perCh ? [q.scales.length] : [], new Int32Array(perCh ? q.scales.length : 1));
    const bd = names.fresh(`${b}_dequantized`);
    const dq = makeNode('DequantizeLinear', [bq, bs, ...(bz ? [bz] : [])], [bd], names.fresh(`${b}_DequantizeLinear`));
    if (perCh) dq.attribute!.push({ name: 'axis', type: 2, i: 0 });
    newNodes.push(dq);
    for (const n of g.consumers(b)) if (c.takesInt8(n)) g.replaceInput(n, b, bd);
  }
  return newNodes;
}
