import { describe, expect } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { measuredRanges } from './generic-helpers.js';
import { itExactInt8 } from '../helpers/int8-exact.js';

const X = { name: 'x', shape: [1, 3, 8, 8] };

/** A model whose own tensor names are the names the quantizer generates for other tensors. */
function clashing() {
  return tinyModel({
    opset: 13, input: X, outputs: ['y'],
    nodes: [
      makeNode('Mul', ['x', 'x_scale'], ['xs'], 'mulx'),
      makeNode('Add', ['xs', 'x_zero_point'], ['xn'], 'addx'),
      makeNode('Conv', ['xn', 'w1', 'b1'], ['a'], 'c1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Relu', ['a'], ['a_quantized'], 'r1'),
      makeNode('Mul', ['a_quantized', 'w1_scale'], ['am'], 'mula'),
      makeNode('Conv', ['am', 'w2', 'b2'], ['y_float'], 'c2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Add', ['y_float', 'b2_quantized'], ['y'], 'addy'),
    ],
    initializers: [
      { name: 'x_scale', dims: [1, 3, 1, 1], data: [0.5, 2, 4] },
      { name: 'x_zero_point', dims: [1, 3, 1, 1], data: [1, -1, 0.5] },
      { name: 'w1_scale', dims: [], data: [0.75] },
      { name: 'b2_quantized', dims: [], data: [0.125] },
      { name: 'w1', dims: [8, 3, 3, 3], data: seededFloats(216, 1) },
      { name: 'b1', dims: [8], data: seededFloats(8, 2) },
      { name: 'w2', dims: [8, 8, 3, 3], data: Float32Array.from(seededFloats(576, 3), (v) => v * 0.3) },
      { name: 'b2', dims: [8], data: seededFloats(8, 4) },
    ],
  });
}

describe('generic path: generated tensor names', () => {
  itExactInt8('never take over a name the model already uses (its x_scale, a_quantized, y_float, ... keep their values)', async () => {
    const m = clashing();
    const ranges = await measuredRanges(m, X.shape);
    const q = quantizeModel(m, ranges);
    const g = q.model.graph;
    // the model's own constants are unchanged
    expect(Array.from(g.getFloat('x_scale'))).toEqual([0.5, 2, 4]);
    expect(Array.from(g.getFloat('x_zero_point'))).toEqual([1, -1, 0.5]);
    expect(Array.from(g.getFloat('w1_scale'))).toEqual([0.75]);
    expect(Array.from(g.getFloat('b2_quantized'))).toEqual([0.125]);
    // every tensor has one producer, every initializer one entry
    const produced = g.nodes.flatMap((n) => n.output ?? []);
    expect(new Set(produced).size).toBe(produced.length);
    const inits = g.initializerNames();
    expect(new Set(inits).size).toBe(inits.length);
    for (const t of inits) expect(produced).not.toContain(t);
    const nodeNames = g.nodes.map((n) => n.name);
    expect(new Set(nodeNames).size).toBe(nodeNames.length);
    // names that clash nothing stay as they were
    expect(g.hasInitializer('w2_quantized')).toBe(true);
    expect(g.hasInitializer('b1_quantized')).toBe(true);
    expect(g.node('w2_DequantizeLinear')).toBeDefined();
    const { maxAbs } = await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape);
    const yr = ranges.y!;
    expect(maxAbs).toBeLessThan(0.05 * (yr[1] - yr[0]));
  });
});
