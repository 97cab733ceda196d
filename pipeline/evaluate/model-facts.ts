/**
 * What an evaluation needs to know about the two models before it runs them: the role (from the
 * reference graph, the way InsightFace's router decides, or forced), the variant's precision read from
 * its graph (Q/DQ, QOperator, float16), and the input dims the side-by-side speed runs use. Read once,
 * from the graphs themselves, so `faceopt evaluate` works on any variant file whoever made it.
 */
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { summarizeModel } from '../faces/graph-summary.js';
import { guessRole, type Role } from '../faces/profile.js';
import type { OnnxModel } from '../onnx/model.js';
import { loadModel } from '../onnx/model.js';
import { DataType, type NodeProto } from '../onnx/proto.js';
import { WEIGHTED_OPS, type Graph } from '../onnx/graph.js';
import { WEIGHT_QUANTIZED_BY_ORT } from '../quantize/float-layers.js';
import { assertOneFloatInput } from '../quantize/index.js';
import type { ModelRole } from '../report/types.js';

const QOPERATOR_OPS = new Set(['QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'QLinearAdd', 'QLinearMul', 'DynamicQuantizeLinear']);

/**
 * The precision label a report shows for a graph: `int8-qdq-symmetric` (every Q/DQ int8 with zero
 * point 0, as TensorRT needs), `int8-qdq`, `int8-qoperator`, `fp16` (float16 weights) or `fp32`.
 */
export function precisionOf(model: OnnxModel): string {
  const g = model.graph;
  const nodes = g.nodes;
  if (nodes.some((n) => QOPERATOR_OPS.has(n.opType ?? ''))) return 'int8-qoperator';
  const qdq = nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
  if (qdq.length) {
    // an absent zero point means uint8 (the ONNX default), so it is not symmetric int8
    const symmetric = qdq.every((n) => {
      const zp = n.input?.[2];
      if (!zp || !g.hasInitializer(zp) || g.initializer(zp)!.dataType !== DataType.INT8) return false;
      return Array.from(g.getTensor(zp).data as ArrayLike<number>).every((v) => Number(v) === 0);
    });
    return symmetric ? 'int8-qdq-symmetric' : 'int8-qdq';
  }
  const floats = (g.proto.initializer ?? []).filter((t) => t.dataType === DataType.FLOAT || t.dataType === DataType.FLOAT16);
  const halves = floats.filter((t) => t.dataType === DataType.FLOAT16).length;
  return floats.length && halves * 2 > floats.length ? 'fp16' : 'fp32';
}

/**
 * The weighted layers of a quantized graph that compute in float, read from the graph. In a Q/DQ graph a
 * layer runs as an int8 kernel only where onnxruntime can fuse it (int8Kernel); every other one
 * dequantizes its input and computes in float: a layer fed by a float tensor (as `--int8`'s weight-only
 * layers are), one behind a per-channel "shield" DequantizeLinear (how `--int8` keeps a float layer
 * float between int8 ones), a convolution whose output is not quantized. In a QOperator graph every
 * float Conv/Gemm/MatMul left. Null for a float graph (nothing was quantized). A report that `optimize`
 * writes lists them with its own reasons; `faceopt evaluate` of a file alone and `faceopt inspect` use
 * this list.
 */
export function floatComputeLayers(model: OnnxModel, precision: string): { layer: string; op: string; reason: string }[] | null {
  if (!precision.startsWith('int8')) return null;
  const g = model.graph;
  const qoperator = precision === 'int8-qoperator';
  return g.nodes
    .filter((n) => WEIGHTED_OPS.has(n.opType ?? '') && (qoperator || !int8Kernel(g, n)))
    .map((n) => ({ layer: n.name || (n.output?.[0] ?? ''), op: n.opType ?? '', reason: 'computes in float in the variant graph (read from the graph by evaluate; the report of the run that made it says why)' }));
}

/**
 * Whether onnxruntime's CPU provider runs weighted node `n` of a Q/DQ graph as an int8 kernel: its input
 * comes from a per-tensor DequantizeLinear, its weights from a DequantizeLinear (or are constant float
 * weights, an initializer or folded from initializers such as int8 ones cast back, which onnxruntime
 * quantizes itself, since 1.20, for a Conv/Gemm between Q/DQ pairs), and a convolution's one consumer is
 * a QuantizeLinear (DQ -> Conv -> Q becomes QLinearConv; without the Q it stays float). Checked against
 * onnxruntime 1.30's optimized graphs of each case (test/evaluate/evaluate-split.test.ts lists them).
 */
function int8Kernel(g: Graph, n: NodeProto): boolean {
  const x = g.producer(n.input?.[0] ?? '');
  if (x?.opType !== 'DequantizeLinear' || !isScalar(g, x.input?.[1] ?? '')) return false;
  const consumers = g.consumers(n.output?.[0] ?? '');
  const quantizedOut = consumers.length === 1 && consumers[0]!.opType === 'QuantizeLinear' && !g.isGraphOutput(n.output![0]!);
  const w = n.input?.[1] ?? '';
  const weights = g.producer(w)?.opType === 'DequantizeLinear'
    || (WEIGHT_QUANTIZED_BY_ORT.has(n.opType ?? '') && quantizedOut && constantTensor(g, w));
  if (!weights) return false;
  return n.opType === 'Conv' || n.opType === 'ConvTranspose' ? quantizedOut : true;
}

/** True when `t` is an initializer or computed from initializers alone (onnxruntime folds it at load), not through a DequantizeLinear. */
function constantTensor(g: Graph, t: string, depth = 0): boolean {
  if (g.hasInitializer(t)) return true;
  const p = g.producer(t);
  if (!p || depth > 4 || p.opType === 'DequantizeLinear') return false;
  if (p.opType === 'Constant') return true;
  return (p.input ?? []).every((i) => i === '' || constantTensor(g, i, depth + 1));
}

/** True when `t` is a one-value initializer (a per-tensor scale). */
function isScalar(g: Graph, t: string): boolean {
  return g.hasInitializer(t) && g.getTensor(t).dims.reduce((a, d) => a * Number(d), 1) === 1;
}

export interface ModelFacts {
  role: ModelRole;
  precision: string;
  /** Weighted layers computing in float in a quantized graph (floatComputeLayers); null for float graphs. */
  floatLayers: { layer: string; op: string; reason: string }[] | null;
  /** First graph input's declared shape (numbers fixed; strings/null dynamic). */
  inputShape: (number | string | null)[];
  batchDynamic: boolean;
}

/** Read a model's role (null role -> `generic`), precision and input shape. */
export function modelFacts(file: string, role?: Role): ModelFacts {
  const model = loadModel(file);
  assertOneFloatInput(model, file);
  const gs = summarizeModel(model.proto);
  const shape = [...(model.graph.inputs[0]?.shape ?? [])];
  const b = shape[0];
  const precision = precisionOf(model);
  return {
    role: role ?? guessRole(gs) ?? 'generic',
    precision,
    floatLayers: floatComputeLayers(model, precision),
    inputShape: shape,
    batchDynamic: !(typeof b === 'number' && b > 0),
  };
}

/**
 * The reference's facts with the variant checked against them: the reference is a float model
 * (FACEOPT_ERR_ALREADY_QUANTIZED otherwise) and both are the same kind of model (FACEOPT_ERR_MODEL_ROLE
 * names the variant otherwise), so a detector is never compared to a recognizer.
 */
export function pairFacts(reference: string, variant: string, role?: Role): { reference: ModelFacts; variant: ModelFacts; role: ModelRole } {
  const r = modelFacts(reference, role);
  // the reference is what the variant is measured against: a quantized one would hide the variant's loss
  if (r.precision.startsWith('int8')) throw new FaceoptError('FACEOPT_ERR_ALREADY_QUANTIZED', { path: reference, ops: r.precision === 'int8-qoperator' ? 'QLinear* nodes' : 'QuantizeLinear/DequantizeLinear nodes' });
  const v = modelFacts(variant, role);
  if (r.role !== v.role) {
    // either may be the mistake: the hint names the reference too (it only blamed --model)
    throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path: variant, expected: r.role, actual: v.role, hint: ` as --reference ${reference} is, or as --reference the float model ${path.basename(variant)} was made from (or set both roles with --role)` });
  }
  return { reference: r, variant: v, role: r.role };
}

/**
 * Input dims at batch 1 that both graphs accept, for the speed runs: each axis takes a size either graph
 * fixes (the variant's first), else the detector size for H/W, 3 for channels; batch 8 is timed only
 * when both graphs have a dynamic batch.
 */
export function speedDims(reference: ModelFacts, variant: ModelFacts, detSize = 640): { dims: number[]; dynamicBatch: boolean } {
  const rank = Math.max(reference.inputShape.length, variant.inputShape.length);
  const fixed = (d: number | string | null | undefined): number | null => (typeof d === 'number' && d > 0 ? d : null);
  const dims = Array.from({ length: rank }, (_, i) => {
    // batch 1, or the batch a model fixes (it refuses any other: a fixed batch of 4 failed here)
    if (i === 0) return fixed(variant.inputShape[0]) ?? fixed(reference.inputShape[0]) ?? 1;
    return fixed(variant.inputShape[i]) ?? fixed(reference.inputShape[i]) ?? (i >= 2 ? detSize : 3);
  });
  return { dims, dynamicBatch: reference.batchDynamic && variant.batchDynamic };
}
