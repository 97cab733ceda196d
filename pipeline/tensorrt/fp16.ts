/**
 * A float16 copy of a float graph for strongly typed builds. TensorRT 11 removed `--fp16` (every
 * network is strongly typed: precision comes from the ONNX types), so an FP16 engine there needs an
 * FP16 graph — what ModelOpt AutoCast produces with `keep_io_types`. This converter does the plain
 * version: every float initializer and Constant becomes float16, Cast-to-float becomes Cast-to-float16,
 * and Cast nodes at the boundary keep the graph's inputs and outputs float32, so callers feed and
 * read the same tensors as with the float graph. Resize `roi`/`scales` stay float32 (ONNX requires
 * float scales). Values beyond the float16 range are clamped and counted.
 */
import { FaceoptError } from '../errors.js';
import type { OnnxModel } from '../onnx/model.js';
import { DataType, makeNode, setAttr, attrInt } from '../onnx/proto.js';
import { floatToHalf, makeTensor, readTensor } from '../onnx/tensor.js';

const HALF_MAX = 65504;

export interface Float16Result {
  model: OnnxModel;
  /** Initializers and constants converted. */
  converted: number;
  /** Weight values clamped to ±65504. */
  clamped: number;
}

/** Inputs that must stay float32 whatever the data type (op type -> input indexes). */
const KEEP_FLOAT_INPUTS: Record<string, number[]> = { Resize: [1, 2] };

/** Convert a float graph (not modified) to float16 with float32 inputs and outputs. */
export function toFloat16(floatModel: OnnxModel): Float16Result {
  const model = floatModel.clone();
  const g = model.graph;
  if (g.nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear')) {
    throw new FaceoptError('FACEOPT_ERR_ALREADY_QUANTIZED', { path: floatModel.sourcePath ?? 'model', ops: 'QuantizeLinear/DequantizeLinear' });
  }
  // If/Loop/Scan bodies would keep float32 types the converted outer graph no longer matches (the file
  // failed ONNX type checking, for onnxruntime and TensorRT alike): refused rather than shipped
  const withBody = g.nodes.find((n) => (n.attribute ?? []).some((a) => a.g || a.graphs?.length));
  if (withBody) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `the float16 conversion does not convert the subgraphs of ${withBody.opType} node ${withBody.name || '(unnamed)'}; build this model with --precision fp32 or int8` });
  }
  // an initializer also declared as a graph input keeps a float32 declaration its float16 data would
  // contradict: as constants they need no input entry
  g.dropInitializerInputs();
  const keepFloat = new Set<string>();
  for (const n of g.nodes) for (const i of KEEP_FLOAT_INPUTS[n.opType ?? ''] ?? []) if (n.input?.[i]) keepFloat.add(n.input[i]!);

  let converted = 0;
  let clamped = 0;
  const toHalf = (values: Float32Array): Uint16Array => Uint16Array.from(values, (v) => {
    if (v > HALF_MAX || v < -HALF_MAX) { clamped++; v = Math.sign(v) * HALF_MAX; }
    return floatToHalf(v);
  });
  g.proto.initializer = g.proto.initializer!.map((t) => {
    if (t.dataType !== DataType.FLOAT || keepFloat.has(t.name ?? '')) return t;
    converted++;
    const d = readTensor(t);
    return makeTensor(t.name ?? '', DataType.FLOAT16, d.dims, toHalf(d.data as Float32Array));
  });
  for (const n of g.nodes) {
    if (n.opType === 'Constant') {
      const a = n.attribute?.find((x) => x.name === 'value');
      if (a?.t && a.t.dataType === DataType.FLOAT && !keepFloat.has(n.output?.[0] ?? '')) {
        const d = readTensor(a.t);
        a.t = makeTensor(a.t.name ?? '', DataType.FLOAT16, d.dims, toHalf(d.data as Float32Array));
        converted++;
      }
    } else if (n.opType === 'Cast' && attrInt(n, 'to', 0) === DataType.FLOAT) {
      setAttr(n, 'to', DataType.FLOAT16, 'int');
    } else if (n.opType === 'ConstantOfShape') {
      const a = n.attribute?.find((x) => x.name === 'value');
      if (a?.t && a.t.dataType === DataType.FLOAT) {
        const d = readTensor(a.t);
        a.t = makeTensor(a.t.name ?? '', DataType.FLOAT16, d.dims, toHalf(d.data as Float32Array));
      }
    }
  }
  // float32 boundary: Cast after each float input, Cast before each float output
  const casts = [];
  for (const v of g.inputs) {
    if (v.elemType !== DataType.FLOAT) continue;
    const half = g.uniqueName(`${v.name}_fp16`);
    g.replaceAllUses(v.name, half);
    casts.push(makeNode('Cast', [v.name], [half], g.uniqueName(`${v.name}_to_fp16`), { to: DataType.FLOAT16 }));
  }
  for (const o of g.proto.output!) {
    if (o.type?.tensorType?.elemType !== DataType.FLOAT) continue;
    const name = o.name!;
    const half = g.uniqueName(`${name}_fp16`);
    const p = g.producer(name);
    if (!p) continue;
    p.output = p.output!.map((x) => (x === name ? half : x));
    for (const c of g.consumers(name)) c.input = c.input!.map((x) => (x === name ? half : x));
    g.invalidate();
    g.addNode(makeNode('Cast', [half], [name], g.uniqueName(`${name}_to_fp32`), { to: DataType.FLOAT }));
  }
  g.proto.node = [...casts, ...g.nodes];
  g.dropValueInfo(g.proto.valueInfo!.map((v) => v.name ?? ''));
  g.invalidate();
  g.toposort();
  return { model, converted, clamped };
}
