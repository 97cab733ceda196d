/** Test helper: the one-input model builder lives with the fixtures (the benches use it too). */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeNode, onnx } from '../../pipeline/onnx/index.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { tinyModel } from '../fixtures/tiny.js';

export { tinyModel, type TinySpec } from '../fixtures/tiny.js';

/**
 * A Q/DQ graph with one int8 conv (`n1`: per-tensor DequantizeLinear input, int8 weights behind a
 * DequantizeLinear, output into a QuantizeLinear, so onnxruntime fuses it into QLinearConv) and one float
 * conv (`n0`, reads x).
 */
export function oneInt8OneFloatConv(): ReturnType<typeof tinyModel> {
  return tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 1, 4, 4] }, outputs: ['y', 'z'],
    nodes: [
      makeNode('QuantizeLinear', ['x', 's', 'zp'], ['xq'], 'q'), makeNode('DequantizeLinear', ['xq', 's', 'zp'], ['xd'], 'dq'),
      makeNode('DequantizeLinear', ['wq', 'ws'], ['wd'], 'wdq'),
      makeNode('Conv', ['xd', 'wd'], ['c1'], 'n1'),
      makeNode('QuantizeLinear', ['c1', 's', 'zp'], ['yq'], 'yq'), makeNode('DequantizeLinear', ['yq', 's', 'zp'], ['y'], 'ydq'),
      makeNode('Conv', ['x', 'w'], ['z'], 'n0'),
    ],
    initializers: [
      { name: 'w', dims: [1, 1, 1, 1], data: [0.5] }, { name: 's', dims: [], data: [0.1] }, { name: 'zp', dataType: DataType.UINT8, dims: [], data: [0] },
      { name: 'wq', dataType: DataType.INT8, dims: [1, 1, 1, 1], data: [64] }, { name: 'ws', dims: [], data: [0.5 / 64] },
    ],
  });
}

/** A model whose weight `w` lives in `weights.bin` beside it; returns the .onnx path. */
export function externalModel(dir: string): string {
  const m = tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 256] }, outputs: ['y'],
    nodes: [makeNode('Mul', ['x', 'w'], ['y'], 'mul')],
    initializers: [{ name: 'w', dims: [256], data: new Float32Array(256).fill(0.5) }],
  });
  const w = m.graph.initializer('w')!;
  writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(w.rawData!));
  w.rawData = new Uint8Array();
  w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  w.externalData = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: '1024' }];
  const file = path.join(dir, 'ext.onnx');
  writeFileSync(file, m.toBytes());
  return file;
}
