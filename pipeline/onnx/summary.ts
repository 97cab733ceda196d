/**
 * Static facts about a model, read from the graph alone: versions, producer, inputs/outputs, op
 * histogram, parameter count and bytes, and whether it is already quantized. `faceopt inspect` prints
 * these; quantization refuses a graph that is already quantized.
 */
import { WEIGHTED_OPS, type ValueInfo } from './graph.js';
import type { OnnxModel } from './model.js';
import { DataType, dataTypeName, toNumber, type Int64 } from './proto.js';
import { numel, tensorByteSize } from './tensor.js';

export interface ModelSummary {
  irVersion: number;
  opsets: Record<string, number>;
  producer: string;
  graphName: string;
  inputs: { name: string; type: string; shape: (number | string | null)[] | null }[];
  outputs: { name: string; type: string; shape: (number | string | null)[] | null }[];
  nodes: number;
  ops: Record<string, number>;
  /** Number of values in numeric weight initializers (shape constants of int64 type excluded). */
  parameters: number;
  /** Bytes of all initializer payloads. */
  parameterBytes: number;
  quantized: { isQuantized: boolean; evidence: string[] };
}

const QUANT_OPS = new Set([
  'QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'QLinearAdd', 'QLinearMul', 'ConvInteger',
  'MatMulInteger', 'DynamicQuantizeLinear', 'QGemm', 'QLinearConcat', 'QLinearGlobalAveragePool', 'QLinearSigmoid',
  'QLinearLeakyRelu', 'QLinearAveragePool', 'DynamicQuantizeMatMul',
]);

function describeValue(v: ValueInfo) {
  return { name: v.name, type: dataTypeName(v.elemType), shape: v.shape };
}

/** Why a graph counts as quantized: quantization ops present, or int8/uint8 weights feeding a weighted op (WEIGHTED_OPS). */
export function quantizationEvidence(model: OnnxModel): string[] {
  const g = model.graph;
  const evidence: string[] = [];
  const ops = g.opHistogram();
  for (const [op, n] of Object.entries(ops)) {
    const bare = op.includes('.') ? op.slice(op.lastIndexOf('.') + 1) : op;
    if (QUANT_OPS.has(bare)) evidence.push(`${n} ${op}`);
  }
  for (const node of g.nodes) {
    if (!WEIGHTED_OPS.has(node.opType ?? '')) continue;
    const w = g.initializer(node.input?.[1] ?? '');
    if (w && (w.dataType === DataType.INT8 || w.dataType === DataType.UINT8)) {
      evidence.push(`${dataTypeName(w.dataType)} weights in ${node.name}`);
      break;
    }
  }
  return evidence;
}

/** Summarise a model without running it. */
export function summarizeModel(model: OnnxModel): ModelSummary {
  const g = model.graph;
  const opsets: Record<string, number> = {};
  for (const o of model.proto.opsetImport ?? []) opsets[o.domain || 'ai.onnx'] = toNumber(o.version as Int64);
  let parameters = 0;
  let parameterBytes = 0;
  for (const t of g.proto.initializer ?? []) {
    parameterBytes += tensorByteSize(t);
    if (t.dataType !== DataType.INT64) parameters += numel((t.dims ?? []).map((d) => toNumber(d as Int64)));
  }
  const evidence = quantizationEvidence(model);
  return {
    irVersion: model.irVersion,
    opsets,
    producer: [model.proto.producerName, model.proto.producerVersion].filter(Boolean).join(' '),
    graphName: g.proto.name ?? '',
    inputs: g.inputs.map(describeValue),
    outputs: g.outputs.map(describeValue),
    nodes: g.nodes.length,
    ops: g.opHistogram(),
    parameters,
    parameterBytes,
    quantized: { isQuantized: evidence.length > 0, evidence },
  };
}
