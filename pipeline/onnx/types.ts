/**
 * Element-type propagation for intermediate tensors. Exposing an intermediate tensor as a graph output
 * (calibration, MAC counting, per-layer error) needs its element type; exporters rarely record value_info
 * for every tensor, so types are propagated from inputs and initializers through the few ops that change
 * them (Shape, Cast, quantization ops, comparisons) and otherwise follow the first data input.
 */
import type { Graph } from './graph.js';
import { DataType, attrInt, type NodeProto } from './proto.js';

const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);

function outputType(n: NodeProto, typeOf: (t: string) => number | undefined, g: Graph): number | undefined {
  const op = n.opType ?? '';
  if (INT64_OUT.has(op)) return DataType.INT64;
  if (BOOL_OUT.has(op)) return DataType.BOOL;
  if (op === 'Cast') return attrInt(n, 'to', DataType.FLOAT);
  if (op === 'DequantizeLinear') return DataType.FLOAT;
  if (op === 'QuantizeLinear') return n.input?.[2] ? typeOf(n.input[2]) ?? DataType.UINT8 : DataType.UINT8;
  if (op === 'DynamicQuantizeLinear') return DataType.UINT8;
  if (op === 'ConvInteger' || op === 'MatMulInteger') return DataType.INT32;
  if (op.startsWith('QLinear')) return n.input?.[7] ? typeOf(n.input[7]) : typeOf(n.input?.[0] ?? '');
  if (op === 'Constant') return g.constantValue(n.output![0]!)?.dataType ?? undefined;
  if (op === 'ConstantOfShape') {
    const v = n.attribute?.find((a) => a.name === 'value')?.t;
    return v?.dataType ?? DataType.FLOAT;
  }
  if (op === 'Where') return typeOf(n.input?.[1] ?? '');
  for (const i of n.input ?? []) if (i) { const t = typeOf(i); if (t) return t; }
  return undefined;
}

/** Element type of every tensor in the graph that can be determined (name -> ONNX data type). */
export function inferElemTypes(g: Graph): Map<string, number> {
  const types = new Map<string, number>();
  for (const v of [...(g.proto.input ?? []), ...(g.proto.valueInfo ?? []), ...(g.proto.output ?? [])]) {
    const t = v.type?.tensorType?.elemType;
    if (v.name && t) types.set(v.name, t);
  }
  for (const t of g.proto.initializer ?? []) if (t.name && t.dataType) types.set(t.name, t.dataType);
  const typeOf = (t: string) => types.get(t);
  for (const n of g.nodes) {
    const t = outputType(n, typeOf, g);
    if (t === undefined) continue;
    for (const [k, o] of (n.output ?? []).entries()) {
      if (!o || types.has(o)) continue;
      // second outputs of these ops are indices
      if (k > 0 && (n.opType === 'TopK' || n.opType === 'MaxPool')) types.set(o, DataType.INT64);
      else types.set(o, t);
    }
  }
  return types;
}
