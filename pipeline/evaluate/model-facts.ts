/**
 * What an evaluation needs to know about the two models before it runs them: the role (from the
 * reference graph, the way InsightFace's router decides, or forced), the variant's precision read from
 * its graph (Q/DQ, QOperator, float16), and the input dims the side-by-side speed runs use. Read once,
 * from the graphs themselves, so `faceopt evaluate` works on any variant file whoever made it.
 */
import { FaceoptError } from '../errors.js';
import { summarizeModel } from '../faces/graph-summary.js';
import { guessRole, type Role } from '../faces/profile.js';
import type { OnnxModel } from '../onnx/model.js';
import { loadModel } from '../onnx/model.js';
import { DataType } from '../onnx/proto.js';
import { WEIGHTED_OPS } from '../onnx/graph.js';
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
 * The weighted layers of a quantized graph that compute in float, read from the graph: in a Q/DQ graph
 * those whose input is not a DequantizeLinear output (onnxruntime fuses the others into int8 kernels),
 * in a QOperator graph every float Conv/Gemm/MatMul left. Null for a float graph (nothing was
 * quantized). A report that `optimize` writes lists them with its own reasons; `faceopt evaluate` of a
 * file alone uses this list, so its report does not say 0 where the search kept layers float (on the
 * README command's mobileface file both count 19).
 */
export function floatComputeLayers(model: OnnxModel, precision: string): { layer: string; op: string; reason: string }[] | null {
  if (!precision.startsWith('int8')) return null;
  const g = model.graph;
  const qoperator = precision === 'int8-qoperator';
  return g.nodes
    .filter((n) => WEIGHTED_OPS.has(n.opType ?? '') && (qoperator || g.producer(n.input?.[0] ?? '')?.opType !== 'DequantizeLinear'))
    .map((n) => ({ layer: n.name || (n.output?.[0] ?? ''), op: n.opType ?? '', reason: 'computes in float in the variant graph (read from the graph by evaluate; the report of the run that made it says why)' }));
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
 * The reference's facts with the variant checked against them: both must be the same kind of model
 * (FACEOPT_ERR_MODEL_ROLE names the variant otherwise), so a detector is never compared to a recognizer.
 */
export function pairFacts(reference: string, variant: string, role?: Role): { reference: ModelFacts; variant: ModelFacts; role: ModelRole } {
  const r = modelFacts(reference, role);
  const v = modelFacts(variant, role);
  if (r.role !== v.role) {
    throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path: variant, expected: r.role, actual: v.role });
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
    if (i === 0) return 1;
    return fixed(variant.inputShape[i]) ?? fixed(reference.inputShape[i]) ?? (i >= 2 ? detSize : 3);
  });
  return { dims, dynamicBatch: reference.batchDynamic && variant.batchDynamic };
}
