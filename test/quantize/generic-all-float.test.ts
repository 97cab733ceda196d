import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { floatPrefixCandidates } from '../../pipeline/quantize/prefix.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { measuredRanges } from './generic-helpers.js';

const C = 8;
const X = { name: 'x', shape: [1, 1, 64] };
// a Conv1d model whose only strided conv is its last layer
const conv1d = () => tinyModel({
  opset: 13, input: X, outputs: ['y'],
  nodes: [
    makeNode('Conv', ['x', 'w1', 'b1'], ['a'], 'c1', { kernel_shape: [5], pads: [2, 2] }), makeNode('Relu', ['a'], ['r'], 'r1'),
    makeNode('Conv', ['r', 'w2', 'b2'], ['y'], 'c2', { kernel_shape: [3], pads: [1, 1], strides: [2] }),
  ],
  initializers: [
    { name: 'w1', dims: [C, 1, 5], data: seededFloats(C * 5, 1) }, { name: 'b1', dims: [C], data: seededFloats(C, 2) },
    { name: 'w2', dims: [C, C, 3], data: seededFloats(C * C * 3, 3) }, { name: 'b2', dims: [C], data: seededFloats(C, 4) },
  ],
});

describe('generic path: an int8 variant with nothing int8', () => {
  it('float-prefix candidates never cover every weighted layer', () => {
    const c = floatPrefixCandidates(conv1d().graph);
    expect(c.map((x) => x.border)).toEqual([null]);
  });
  it('when nothing is quantized, no Q/DQ pair is added (the output is not rounded for nothing)', async () => {
    const m = conv1d();
    const ranges = await measuredRanges(m, X.shape);
    const q = quantizeModel(m, ranges, { floatTensors: ['x', 'a', 'r'] });
    expect(q.result.quantizedNodes).toEqual([]);
    const ops = q.model.graph.opHistogram();
    expect(ops.QuantizeLinear).toBeUndefined();
    expect(ops.DequantizeLinear).toBeUndefined();
  });
});
