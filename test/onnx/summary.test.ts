import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { quantizationEvidence } from '../../pipeline/onnx/summary.js';
import { tinyModel } from './tiny.js';

/** One weighted op of type `op` reading int8 weights directly (a weight-only quantized file, no Q/DQ ops). */
function int8WeightsIn(op: string) {
  return tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 1, 4, 4] }, outputs: ['y'],
    nodes: [makeNode(op, ['x', 'w'], ['y'], 'layer')],
    initializers: [{ name: 'w', dataType: DataType.INT8, dims: [1, 1, 1, 1], data: [3] }],
  });
}

describe('quantizationEvidence', () => {
  it.each(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])('finds int8 weights fed straight into %s', (op) => {
    expect(quantizationEvidence(int8WeightsIn(op))).toEqual(['int8 weights in layer']);
  });

  it('finds nothing in a float graph', () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 1, 4, 4] }, outputs: ['y'],
      nodes: [makeNode('ConvTranspose', ['x', 'w'], ['y'], 'layer')],
      initializers: [{ name: 'w', dims: [1, 1, 1, 1], data: [0.5] }],
    });
    expect(quantizationEvidence(m)).toEqual([]);
  });
});
