import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { collectActivationStats, type InputBatch } from '../../pipeline/calibrate/run.js';
import { quantizeToTarget } from '../../pipeline/quantize/mixed.js';
import { INT8_REWRITES, prepareFloatGraph } from '../../pipeline/quantize/index.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

// the mixed-precision test's model, every node unnamed, deeper
const unnamed = () => tinyModel({
  opset: 13, input: { name: 'x', shape: ['N', 4, 12, 12] }, outputs: ['y'],
  nodes: [
    makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], '', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    makeNode('PRelu', ['c1', 'slope'], ['p'], ''),
    makeNode('Conv', ['p', 'w2', 'b2'], ['c2'], '', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    makeNode('Relu', ['c2'], ['r'], ''),
    makeNode('Conv', ['r', 'w3', 'b3'], ['y'], '', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
  ],
  initializers: [
    { name: 'w1', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b1', dims: [8], data: seededFloats(8, 2) },
    { name: 'slope', dims: [8, 1, 1], data: seededFloats(8, 3).map((v) => v * 3) },
    { name: 'w2', dims: [8, 8, 3, 3], data: seededFloats(576, 4) }, { name: 'b2', dims: [8], data: seededFloats(8, 5) },
    { name: 'w3', dims: [8, 8, 3, 3], data: seededFloats(576, 6) }, { name: 'b3', dims: [8], data: seededFloats(8, 7) },
  ],
});
const batches = (seed: number, n: number): InputBatch[] => Array.from({ length: n }, (_, i) => ({ data: seededFloats(4 * 4 * 144, seed + i), dims: [4, 4, 12, 12] }));

describe('generic path: unnamed nodes', () => {
  it('get deterministic unique names when the graph is prepared', () => {
    const a = unnamed();
    prepareFloatGraph(a, INT8_REWRITES);
    const names = a.graph.nodes.map((n) => n.name ?? '');
    expect(names.every((n) => n !== '')).toBe(true);
    expect(new Set(names).size).toBe(names.length);
    const b = unnamed();
    prepareFloatGraph(b, INT8_REWRITES);
    expect(b.graph.nodes.map((n) => n.name)).toEqual(names);
  });
  it('the mixed-precision search runs on them', async () => {
    const m = unnamed();
    prepareFloatGraph(m, INT8_REWRITES);
    const stats = await collectActivationStats(m, batches(10, 4), { method: 'minmax' });
    const ranges = Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const));
    const r = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice: batches(50, 3), target: 0.99999, maxFloat: 4 });
    expect(r.cosine).toBeGreaterThanOrEqual(r.cosineAllInt8);
  });
});
