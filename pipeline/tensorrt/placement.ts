/**
 * Where TensorRT wants Q/DQ: a handler table for `insertQdq` that follows NVIDIA's placement guidance
 * for explicit quantization (TensorRT developer guide, "Q/DQ Layer-Placement Recommendations";
 * TensorRT Model Optimizer's ONNX int8 mode does the same):
 *  - quantize every input of a weighted op (Conv, Gemm, MatMul): the data input and the weights
 *    (per channel, axis 0 once `prepareForTensorrt` has turned weights into [out, in] layout);
 *  - do NOT quantize the outputs of weighted ops, nor graph outputs; biases stay float (TensorRT
 *    folds the float bias into the fused int8 kernel; its DequantizeLayer takes int8 only);
 *  - residual Add: quantize the skip-connection input and leave the branch that ends in a fusible
 *    Conv/Gemm (+BN/activation) in float, so TensorRT fuses Conv + Add into one int8 kernel
 *    (ModelOpt's `build_non_residual_input_map`: the input on the longer path to the lowest common
 *    ancestor is the main branch). An Add of two non-fusible activations gets both inputs quantized;
 *  - pooling (MaxPool, AveragePool, GlobalAveragePool) and Concat inputs are quantized, as the
 *    pytorch-quantization QuantMaxPool/QuantAvgPool modules and ModelOpt do, so TensorRT can run them
 *    in int8 (it propagates DQ forward through them).
 * Ops not listed stay float between DequantizeLinear and the next QuantizeLinear.
 */
import { WEIGHTED_OPS, type Graph } from '../onnx/graph.js';
import { DataType, attrInt, type NodeProto } from '../onnx/proto.js';
import { inferElemTypes } from '../onnx/types.js';
import type { Handler, MarkContext } from '../quantize/handlers.js';

const ins = (n: NodeProto) => n.input ?? [];

/** Ops TensorRT fuses into a preceding Conv/Gemm as its epilogue (walked through to find the "backbone"). */
const EPILOGUE_OPS = new Set(['BatchNormalization', 'Relu', 'PRelu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Elu', 'Selu', 'Tanh']);

const isConstant = (g: Graph, t: string) => g.hasInitializer(t) || g.producer(t)?.opType === 'Constant';

// Element types per graph, computed once per marking pass (marking does not edit the graph).
const typeCache = new WeakMap<Graph, Map<string, number>>();
/** True when `t` is a float32 tensor (shape arithmetic in int64 is never quantized). */
function isFloat(g: Graph, t: string): boolean {
  let types = typeCache.get(g);
  if (!types) { types = inferElemTypes(g); typeCache.set(g, types); }
  return types.get(t) === DataType.FLOAT;
}

/** The weighted node a tensor comes out of through fusible epilogue ops only, or undefined. */
export function fusibleBackbone(g: Graph, tensor: string): NodeProto | undefined {
  let p = g.producer(tensor);
  for (let hops = 0; p && hops < 16; hops++) {
    if (WEIGHTED_OPS.has(p.opType ?? '')) return p;
    if (!EPILOGUE_OPS.has(p.opType ?? '')) return undefined;
    p = g.producer(ins(p)[0] ?? '');
  }
  return undefined;
}

/** Shortest distance (in nodes) from `tensor` back to each of its ancestor tensors (itself at 0). */
function ancestorDepths(g: Graph, tensor: string): Map<string, number> {
  const depth = new Map<string, number>([[tensor, 0]]);
  const queue = [tensor];
  while (queue.length) {
    const t = queue.shift()!;
    const p = g.producer(t);
    if (!p) continue;
    for (const i of ins(p)) {
      if (!i || g.hasInitializer(i) || depth.has(i)) continue;
      depth.set(i, depth.get(t)! + 1);
      queue.push(i);
    }
  }
  return depth;
}

/**
 * For a two-input Add, the input that is the main (non-residual) branch and must stay float so the
 * Conv that produces it fuses with the Add; undefined when the Add is not a residual Add.
 */
export function nonResidualInput(g: Graph, add: NodeProto): string | undefined {
  const [a, b] = ins(add);
  if (!a || !b || isConstant(g, a) || isConstant(g, b)) return undefined;
  if (!g.producer(a) || !g.producer(b)) return undefined;
  const ba = fusibleBackbone(g, a);
  const bb = fusibleBackbone(g, b);
  if (!ba && !bb) return undefined;
  const da = ancestorDepths(g, a);
  const db = ancestorDepths(g, b);
  let best: { t: string; d1: number; d2: number } | undefined;
  for (const [t, d1] of da) {
    const d2 = db.get(t);
    if (d2 === undefined) continue;
    if (!best || d1 + d2 < best.d1 + best.d2) best = { t, d1, d2 };
  }
  if (ba && bb) {
    if (ba === bb) return undefined;
    if (!best) return a;
    return best.d1 > best.d2 ? a : b;
  }
  const only = ba ? a : b;
  const backbone = (ba ?? bb)!;
  // ConvNeXt-like: the backbone is itself the common ancestor, so this is not a residual Add.
  if (best && g.producer(best.t) === backbone) return undefined;
  return only;
}

const weighted = (weightInput: number): Handler => (n, ctx) => {
  const x = ins(n)[0];
  const w = ins(n)[weightInput];
  if (!x || !w || !ctx.isInitializer(w)) return; // dynamic weights: leave float
  ctx.activation(x);
  ctx.weight(w, 0);
};

const gemm: Handler = (n, ctx) => {
  const [a, b] = ins(n);
  if (!a || !b || !ctx.isInitializer(b) || attrInt(n, 'transA', 0) !== 0) return;
  ctx.activation(a);
  ctx.weight(b, attrInt(n, 'transB', 0) ? 0 : 1);
};

const matmul: Handler = (n, ctx) => {
  const [a, b] = ins(n);
  if (!a || !b || !isFloat(ctx.graph, a)) return;
  ctx.activation(a);
  if (ctx.isInitializer(b) && ctx.graph.getTensor(b).dims.length === 2) ctx.weight(b, 1);
  else if (!ctx.isInitializer(b)) ctx.activation(b);
};

const residualAdd: Handler = (n, ctx: MarkContext) => {
  const g = ctx.graph;
  const inputs = ins(n).filter((t) => t && !isConstant(g, t));
  if (inputs.length !== 2 || !inputs.every((t) => isFloat(g, t))) return; // bias-like or shape Add: stays float
  const main = nonResidualInput(g, n);
  for (const t of inputs) if (t !== main) ctx.activation(t);
};

const dataInput: Handler = (n, ctx) => {
  const x = ins(n)[0];
  if (x && isFloat(ctx.graph, x)) ctx.activation(x);
};

const concat: Handler = (n, ctx) => {
  for (const t of ins(n)) if (t && !isConstant(ctx.graph, t) && isFloat(ctx.graph, t)) ctx.activation(t);
};

/** The TensorRT placement table, passed as `handlers` to `insertQdq`. */
export const TENSORRT_HANDLERS: Record<string, Handler> = {
  Conv: weighted(1),
  Gemm: gemm,
  MatMul: matmul,
  Add: residualAdd,
  MaxPool: dataInput,
  AveragePool: dataInput,
  GlobalAveragePool: dataInput,
  Concat: concat,
};
