/**
 * Layers kept float in a QDQ graph, made to cost as little as possible: the float region around a kept
 * activation, which float layers store weight-only int8 weights, and the shield that keeps onnxruntime
 * from quantizing float layers on its own.
 *
 * The float region: when mixed precision keeps an activation float, the
 * depthwise 1x1 convolutions of a `sign-dw` PRelu that read it (the Relu(+-x) halves and the slope) and
 * the Add that joins them would otherwise get their own QuantizeLinear/DequantizeLinear pairs: the halves
 * are int8-exact only on an int8 input's grid, so on a float input they only add rounding, and every
 * Q/DQ pair splits the float island into pieces onnxruntime cannot fuse. Measured on mobileface with
 * 24 tensors kept float: the PRelu of a float pre-activation ran as float convolutions with a
 * Quantize/Dequantize round trip between each, plus layout Transposes at every boundary.
 */
import type { Graph, NameScope } from '../onnx/graph.js';
import { DataType, getAttr, makeNode, type NodeProto } from '../onnx/proto.js';
import { isDepthwise } from './handlers.js';
import type { QParams } from './qparams.js';
import type { QuantizeOptions } from './options.js';

/** A depthwise 1x1 Conv without bias: the sign halves and the slope of the `sign-dw` PRelu form. */
function isPointwiseScale(g: Graph, n: NodeProto | undefined): boolean {
  if (!n || !isDepthwise(g, n) || (n.input?.[2] ?? '') !== '') return false;
  const dims = g.getTensor(n.input![1]!).dims.map(Number);
  return dims.length === 4 && dims[2] === 1 && dims[3] === 1;
}

/** A pointwise-scale Conv, or the Relu right after one (a rectified half before Relu folding). */
function isPreluPart(g: Graph, n: NodeProto | undefined): boolean {
  return isPointwiseScale(g, n) || (n?.opType === 'Relu' && isPointwiseScale(g, g.producer(n.input?.[0] ?? '')));
}

/** Whether the PRelu part producing `part` (a pointwise-scale Conv, maybe behind its Relu) reads `x`. */
function readsThrough(g: Graph, part: string, x: string): boolean {
  let n = g.producer(part);
  if (n?.opType === 'Relu') n = g.producer(n.input?.[0] ?? '');
  return n?.input?.[0] === x;
}

/**
 * `floatTensors` grown over the PRelu parts that read them: a pointwise-scale Conv (see above) or the
 * Relu after one whose input is float makes a float output, and an Add whose inputs all come from such
 * parts and include a float one makes a float output. Other ops are left alone, so a float region never
 * spreads along the residual path. Runs before Relu folding, so a float half keeps its Relu.
 */
export function floatClosure(g: Graph, floatTensors: readonly string[]): string[] {
  const floats = new Set(floatTensors);
  if (!floats.size) return [];
  for (const n of g.nodes) { // topological order: one pass reaches the fixpoint
    const y = n.output?.[0];
    if (!y || floats.has(y)) continue;
    const ins = (n.input ?? []).filter((t) => t && !g.hasInitializer(t));
    if (isPreluPart(g, n) && floats.has(ins[0]!)) floats.add(y);
    // the Add joining sign-dw halves, or residual-dw's x + Relu((a-1)x) once its input x is float
    else if (n.opType === 'Add' && ins.length === 2 && ins.some((t) => floats.has(t)) && ins.every((t) => isPreluPart(g, g.producer(t)) || (floats.has(t) && ins.some((u) => u !== t && isPreluPart(g, g.producer(u)) && readsThrough(g, u, t))))) floats.add(y);
  }
  return [...floats];
}

/**
 * Whether a float layer stores weight-only int8 weights: always with `true`, never with `false`, and with
 * 'auto' when it is a 1x1 or depthwise Conv holding at least 16,384 weights. onnxruntime dequantizes
 * such weights at every run and cannot pack them, which slowed the float islands of mobileface (2.0x
 * instead of 2.5x with every float layer weight-only); for these layers it cost nothing measurable
 * (mobileface, 16 tensors float: 4.03 vs 4.13 ms at batch 1, 29.8 vs 29.5 ms at batch 8) and took the
 * file from 0.51x to 0.39x.
 */
export function storesWeightOnly(g: Graph, n: NodeProto, opts: QuantizeOptions): boolean {
  if (opts.weightOnlyFloatLayers !== 'auto') return opts.weightOnlyFloatLayers;
  if (n.opType !== 'Conv' || !g.hasInitializer(n.input?.[1] ?? '')) return false;
  const d = g.getTensor(n.input![1]!).dims.map(Number);
  return d.reduce((a, b) => a * b, 1) >= 16384 && ((d[2] === 1 && d[3] === 1) || d[1] === 1);
}

/** Ops whose float weights onnxruntime's WeightBiasQuantization (1.20+) quantizes between Q/DQ pairs. */
export const WEIGHT_QUANTIZED_BY_ORT: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose', 'Gemm']);

/**
 * Give every float Conv/ConvTranspose/Gemm with a float weight initializer, fed by one of our per-tensor
 * DequantizeLinear nodes, its own DequantizeLinear with the same scale and zero point repeated per
 * channel (axis 1: a Gemm with transA reads [K, M], so M, and no shield where M is not recorded), so
 * onnxruntime's WeightBiasQuantization (which needs a scalar input scale) leaves its weights float. Values are identical; the int8 layers keep the shared per-tensor node. Only layers
 * whose output is quantized (the transformer's pattern) get one.
 */
export function shieldFloatLayers(g: Graph, params: Map<string, QParams>, dequantized: Map<string, string>, qType: number, quantized: ReadonlySet<string>, quantizedOf: ReadonlyMap<string, string> = new Map(), names: NameScope = g.nameScope()): NodeProto[] {
  const out: NodeProto[] = [];
  // activation -> its per-channel DequantizeLinear output (one per activation)
  const made = new Map<string, string>();
  for (const n of g.nodes) {
    if (!WEIGHT_QUANTIZED_BY_ORT.has(n.opType ?? '')) continue;
    // the transformer only takes a layer whose output goes to a QuantizeLinear; a layer inside a float
    // region needs no shield (and its per-channel DequantizeLinear cost time)
    if (!quantized.has(n.output?.[0] ?? '')) continue;
    const x = n.input?.[0] ?? '';
    const w = n.input?.[1] ?? '';
    const t = dequantized.get(x);
    if (t === undefined || !g.hasInitializer(w)) continue;
    const qp = params.get(t);
    const dims = g.getTensor(w).dims.map(Number);
    let channels: number;
    if (n.opType === 'Conv') channels = (dims[1] ?? 0) * Number(getAttr(n, 'group') ?? 1);
    else if (n.opType === 'ConvTranspose') channels = dims[0] ?? 0;
    else if (Number(getAttr(n, 'transA') ?? 0) === 1) {
      // A is [K, M]: axis 1 is M, known only from a recorded shape (the scale's length must match it)
      const m = g.valueInfo(t)?.shape?.[1];
      channels = typeof m === 'number' ? m : 0;
    } else channels = Number(getAttr(n, 'transB') ?? 0) === 1 ? dims[1] ?? 0 : dims[0] ?? 0;
    if (!qp || !(channels > 0)) continue;
    let name = made.get(t);
    if (name === undefined) {
      const base = `${t}_dequantized_per_channel`;
      name = names.fresh(base);
      made.set(t, name);
      const scale = names.fresh(`${base}_scale`);
      const zero = names.fresh(`${base}_zero_point`);
      g.setTensor(scale, DataType.FLOAT, [channels], new Float32Array(channels).fill(qp.scale));
      g.setTensor(zero, qType, [channels], qType === DataType.UINT8 ? new Uint8Array(channels).fill(qp.zeroPoint) : new Int8Array(channels).fill(qp.zeroPoint));
      const dq = makeNode('DequantizeLinear', [quantizedOf.get(t) ?? `${t}_quantized`, scale, zero], [name], names.fresh(`${base}_DequantizeLinear`));
      dq.attribute!.push({ name: 'axis', type: 2, i: 1 });
      out.push(dq);
    }
    g.replaceInput(n, x, name);
  }
  return out;
}
