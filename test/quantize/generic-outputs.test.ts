import { describe, expect } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { measuredRanges } from './generic-helpers.js';
import { itExactInt8 } from '../helpers/int8-exact.js';

const X = { name: 'x', shape: [1, 4, 6, 6] };
const inits = [
  { name: 'w1', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b1', dims: [8], data: seededFloats(8, 2) },
  { name: 'w2', dims: [8, 8, 3, 3], data: Float32Array.from(seededFloats(576, 3), (v) => v * 0.3) }, { name: 'b2', dims: [8], data: seededFloats(8, 4) },
];

describe('generic path: graph outputs read inside the graph', () => {
  itExactInt8('an output another node reads: that node reads the dequantized output, not a float copy', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['c', 'y'],
      nodes: [
        makeNode('Conv', ['x', 'w1', 'b1'], ['c'], 'conv1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Sigmoid', ['c'], ['s'], 'sig'),
        makeNode('Conv', ['s', 'w2', 'b2'], ['y'], 'conv2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      ],
      initializers: inits,
    });
    const q = quantizeModel(m, await measuredRanges(m, X.shape));
    const g = q.model.graph;
    expect(g.producer('c')!.opType).toBe('DequantizeLinear');
    const copy = g.producer('c')!.input![0]!; // the quantized output ...
    const floatCopy = g.producer(copy)!.input![0]!; // ... of the QuantizeLinear reading conv1's float output
    expect(g.producer(floatCopy)!.name).toBe('conv1');
    expect(g.consumers(floatCopy).map((n) => n.opType)).toEqual(['QuantizeLinear']);
    expect(g.node('sig')!.input![0]).toBe('c');
    const { maxAbs } = await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape);
    expect(maxAbs).toBeLessThan(0.3);
  });
  itExactInt8('a graph input that is also a graph output: quantized for its readers, passed through unchanged', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['x', 'y'],
      nodes: [makeNode('Conv', ['x', 'w1', 'b1'], ['y'], 'conv1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })],
      initializers: inits,
    });
    const q = quantizeModel(m, await measuredRanges(m, X.shape));
    const g = q.model.graph;
    expect(g.producer(g.node('conv1')!.input![0]!)!.opType).toBe('DequantizeLinear');
    expect(g.outputs.map((o) => o.name)).toEqual(['x', 'y']);
    const { maxAbs } = await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape);
    expect(maxAbs).toBeLessThan(0.2);
  });
});
