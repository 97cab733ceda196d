import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { makeTensor } from '../../pipeline/onnx/tensor.js';
import { INT8_REWRITES, prepareFloatGraph, quantizeModel } from '../../pipeline/quantize/index.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { measuredRanges } from './generic-helpers.js';
import { itExactInt8 } from '../helpers/int8-exact.js';

const X = { name: 'x', shape: [1, 3, 8, 8] };
const C = 8;
const constant = (name: string, dims: number[], data: Float32Array) =>
  makeNode('Constant', [], [name], `${name}_const`, { value: makeTensor('', DataType.FLOAT, dims, data) });

describe('generic path: weights given by Constant nodes', () => {
  itExactInt8('become initializers when the graph is prepared, and are quantized', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        constant('w1', [C, 3, 3, 3], seededFloats(C * 27, 1)), constant('b1', [C], seededFloats(C, 2)),
        constant('w2', [C, C, 3, 3], Float32Array.from(seededFloats(C * C * 9, 3), (v) => v * 0.3)),
        makeNode('Conv', ['x', 'w1', 'b1'], ['a'], 'c1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), makeNode('Relu', ['a'], ['r'], 'r1'),
        makeNode('Conv', ['r', 'w2'], ['y'], 'c2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      ],
    });
    const f = m.clone();
    prepareFloatGraph(f, INT8_REWRITES);
    expect(f.graph.opHistogram().Constant).toBeUndefined();
    expect(f.graph.hasInitializer('w1') && f.graph.hasInitializer('b1') && f.graph.hasInitializer('w2')).toBe(true);
    const q = quantizeModel(f, await measuredRanges(f, X.shape));
    expect(q.result.quantizedNodes).toEqual(expect.arrayContaining(['c1', 'c2']));
    expect(q.result.weights).toBe(2);
    expect(q.model.graph.getTensor('w2_quantized').dataType).toBe(DataType.INT8);
    const { maxAbs } = await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape);
    expect(maxAbs).toBeLessThan(0.3);
  });
  itExactInt8('value_float and value_floats constants become initializers too (a value_float scale stopped quantization with "no calibrated range")', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        constant('w1', [C, 3, 3, 3], seededFloats(C * 27, 1)),
        { ...makeNode('Constant', [], ['half'], 'half_const'), attribute: [{ name: 'value_float', type: 1, f: 0.5 }] },
        { ...makeNode('Constant', [], ['shift'], 'shift_const'), attribute: [{ name: 'value_floats', type: 6, floats: [0.25] }] },
        makeNode('Conv', ['x', 'w1'], ['a'], 'c1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Mul', ['a', 'half'], ['m'], 'mul'), makeNode('Add', ['m', 'shift'], ['s'], 'add'),
        makeNode('Conv', ['s', 'w1b'], ['y'], 'c2', { kernel_shape: [1, 1] }),
      ],
      initializers: [{ name: 'w1b', dims: [C, C, 1, 1], data: seededFloats(C * C, 3) }],
    });
    const f = m.clone();
    prepareFloatGraph(f, INT8_REWRITES);
    expect(f.graph.opHistogram().Constant).toBeUndefined();
    expect(f.graph.getTensor('half')).toMatchObject({ dims: [] });
    expect([...f.graph.getFloat('half')]).toEqual([0.5]);
    expect([...f.graph.getFloat('shift')]).toEqual([0.25]);
    const q = quantizeModel(f, await measuredRanges(f, X.shape));
    expect(q.result.quantizedNodes).toEqual(expect.arrayContaining(['c1', 'c2']));
    const { maxAbs } = await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape);
    expect(maxAbs).toBeLessThan(0.3);
  });

  it('a Conv whose weights are computed at run time is not counted int8', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('Mul', ['w0', 'k'], ['w'], 'scale_w'),
        makeNode('Conv', ['x', 'w'], ['y'], 'dyn', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      ],
      initializers: [{ name: 'w0', dims: [C, 3, 3, 3], data: seededFloats(C * 27, 1) }, { name: 'k', dims: [], data: [0.5] }],
    });
    const q = quantizeModel(m, await measuredRanges(m, X.shape));
    expect(q.result.quantizedNodes).not.toContain('dyn');
    expect(q.result.floatNodes.map((n) => n.name)).toContain('dyn');
  });
});
