/**
 * Per-op quantization handlers, one small function per op family in one table. A handler only *marks*
 * tensors (quantize this activation, share that tensor's parameters, quantize this weight per channel,
 * this bias from that input and weight); `qdq.ts` applies the marks in fixed phases. An op without a
 * handler stays in float and reads dequantized inputs.
 */
import type { Graph } from '../onnx/graph.js';
import { attrInt, getAttr, type NodeProto } from '../onnx/proto.js';

/** The `axis` of a weight quantized with one scale even without `--per-tensor`. */
export const PER_TENSOR = -1;

export interface MarkContext {
  readonly graph: Graph;
  /** Quantize an activation with its own calibrated range. */
  activation(tensor: string): void;
  /** Quantize `output` with exactly the parameters of `input` (so the op can run on int8 directly). */
  share(output: string, input: string): void;
  /** Quantize a weight initializer symmetric int8, per channel along `axis` (per tensor with PER_TENSOR or `--per-tensor`). */
  weight(initializer: string, axis: number): void;
  /** Quantize a bias initializer to int32 with scale = scale(input) x scale(weight). */
  bias(initializer: string, input: string, weight: string): void;
  isInitializer(tensor: string): boolean;
}

export type Handler = (node: NodeProto, ctx: MarkContext) => void;

const ins = (n: NodeProto) => n.input ?? [];
const out0 = (n: NodeProto) => n.output![0]!;

/** Quantize every non-empty input (initializers as constants with their own range) and the output. */
const elementwise: Handler = (n, ctx) => {
  for (const t of ins(n)) if (t) ctx.activation(t);
  ctx.activation(out0(n));
};

/** Data-movement ops: the output reuses the input's parameters, so Q/DQ around them cancel. */
const passThrough: Handler = (n, ctx) => {
  ctx.activation(ins(n)[0]!);
  ctx.share(out0(n), ins(n)[0]!);
};

const conv: Handler = (n, ctx) => {
  const [x, w, b] = ins(n);
  if (!w || !ctx.isInitializer(w)) return; // dynamic weights: leave float
  ctx.activation(x!);
  ctx.weight(w, 0);
  if (b && ctx.isInitializer(b)) ctx.bias(b, x!, w);
  ctx.activation(out0(n));
};

const gemm: Handler = (n, ctx) => {
  const [a, b, c] = ins(n);
  if (!b || !ctx.isInitializer(b) || attrInt(n, 'transA', 0) !== 0) return;
  ctx.activation(a!);
  const axis = attrInt(n, 'transB', 0) ? 0 : 1;
  ctx.weight(b, axis);
  // an int32 bias only with one value per output column: onnxruntime's fused kernel adds C's int32 values
  // to each column as they are, so a broadcast C of shape [1] (quantized at column 0's scale) was wrong in
  // every other column; it stays float (the Gemm then runs unfused)
  const cDims = c && ctx.isInitializer(c) ? ctx.graph.getTensor(c).dims : null;
  if (cDims?.length === 1 && cDims[0] === ctx.graph.getTensor(b).dims[axis]) ctx.bias(c!, a!, b);
  ctx.activation(out0(n));
};

const matmul: Handler = (n, ctx) => {
  const [a, b] = ins(n);
  ctx.activation(a!);
  // a constant B is an int8 weight: [K, N] per output column (QLinearMatMul's per-column b_scale); a
  // batched [..., K, N] one per tensor (onnxruntime's QLinearMatMul takes no per-column scale for it, and
  // DequantizeLinear's one axis cannot say per batch and column); a 1-D one and run-time inputs are activations
  const rank = b && ctx.isInitializer(b) ? ctx.graph.getTensor(b).dims.length : 0;
  if (rank === 2) ctx.weight(b!, 1);
  else if (rank > 2) ctx.weight(b!, PER_TENSOR);
  else ctx.activation(b!);
  ctx.activation(out0(n));
};

/**
 * A depthwise Conv with constant weights: one input and one output channel per group (the kernel size
 * is the caller's to check). The sign-dw PRelu parts are the 1x1 ones.
 */
export function isDepthwise(g: Graph, n: NodeProto): boolean {
  const w = n.input?.[1];
  if (n.opType !== 'Conv' || !w || !g.hasInitializer(w)) return false;
  const dims = g.getTensor(w).dims.map(Number);
  return dims.length >= 3 && dims[1] === 1 && attrInt(n, 'group', 1) === dims[0];
}

/** A Conv with a stride above 1 on some axis. */
export function isStrided(n: NodeProto): boolean {
  const st = getAttr(n, 'strides');
  return n.opType === 'Conv' && Array.isArray(st) && st.some((v) => Number(v) > 1);
}

/**
 * Why onnxruntime's CPU int8 kernel for `n` would be slower than leaving it float, or null: grouped
 * convolutions with more than one channel per group (neither dense nor depthwise) fall off its fast
 * QLinearConv paths: measured on the MobileFaceNet-512 fixture (128 channels in 64 groups, 3x3, 56x56),
 * 6.5 ms in int8 against 0.8 ms in float, and the whole model 2.0x faster than FP32 instead of 3.4x.
 * (Image stems and other early high-resolution layers are the float prefix's to decide, by timing:
 * quantize/prefix.ts.)
 */
export function slowInt8Reason(g: Graph, n: NodeProto): string | null {
  if (n.opType !== 'Conv') return null;
  const group = attrInt(n, 'group', 1);
  const w = n.input?.[1];
  if (!w || !g.hasInitializer(w) || isDepthwise(g, n) || group === 1) return null;
  const [out, perGroup] = g.getTensor(w).dims.map(Number) as [number, number];
  return `grouped convolution (${perGroup} input and ${out / group} output channels per group): onnxruntime's int8 kernel for it is slower than float`;
}

/** The registry: op type -> handler. Ops not listed (PRelu, BatchNormalization, Softmax...) stay float. */
export const HANDLERS: Record<string, Handler> = {
  Conv: conv,
  Gemm: gemm,
  MatMul: matmul,
  Add: elementwise,
  Mul: elementwise,
  Concat: elementwise,
  Sigmoid: elementwise,
  // Relu/Clip that survive folding (int8 symmetric mode) are quantized like any unary op
  Relu: elementwise,
  Clip: (n, ctx) => { ctx.activation(ins(n)[0]!); ctx.activation(out0(n)); },
  AveragePool: elementwise,
  GlobalAveragePool: elementwise,
  MaxPool: passThrough,
  Resize: passThrough,
  Reshape: passThrough,
  Transpose: passThrough,
  Flatten: passThrough,
  Squeeze: passThrough,
  Unsqueeze: passThrough,
};
