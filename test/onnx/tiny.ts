/**
 * Test helper: build a one-input model around a list of nodes at a chosen opset, fully in code.
 */
import { OnnxModel } from '../../pipeline/onnx/model.js';
import { makeValueInfo } from '../../pipeline/onnx/graph.js';
import { onnx, DataType, type NodeProto } from '../../pipeline/onnx/proto.js';
import { makeTensor, type TypedArray } from '../../pipeline/onnx/tensor.js';

export interface TinySpec {
  opset: number;
  nodes: NodeProto[];
  input: { name: string; shape: (number | string)[] };
  outputs: string[];
  initializers?: { name: string; dataType?: number; dims: number[]; data: TypedArray | number[] }[];
  irVersion?: number;
}

/** A model with one float input, the given nodes/initializers, and float outputs. */
export function tinyModel(spec: TinySpec): OnnxModel {
  const proto = onnx.ModelProto.create({
    irVersion: spec.irVersion ?? (spec.opset >= 13 ? 7 : 6),
    producerName: 'faceopt-test',
    opsetImport: [{ domain: '', version: spec.opset }],
    graph: {
      name: 'tiny',
      node: spec.nodes,
      input: [makeValueInfo(spec.input.name, DataType.FLOAT, spec.input.shape)],
      output: spec.outputs.map((o) => makeValueInfo(o, DataType.FLOAT, null)),
      initializer: (spec.initializers ?? []).map((t) => makeTensor(t.name, t.dataType ?? DataType.FLOAT, t.dims, t.data)),
    },
  });
  return new OnnxModel(onnx.ModelProto.decode(onnx.ModelProto.encode(proto).finish()));
}
