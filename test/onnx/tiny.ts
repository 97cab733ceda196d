/** Test helper: the one-input model builder lives with the fixtures (the benches use it too). */
import { makeNode } from '../../pipeline/onnx/index.js';
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
