import { describe, expect, it } from 'vitest';
import { floatComputeLayers } from '../../pipeline/evaluate/model-facts.js';
import { makeNode } from '../../pipeline/onnx/index.js';
import { byComputeLayer } from '../../pipeline/optimize/int8-evaluate.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const conv = (name: string, input: string, out: string, seed: number) => ({
  node: makeNode('Conv', [input, `w_${name}`, `b_${name}`], [out], name, { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
  inits: [{ name: `w_${name}`, dims: [4, 4, 3, 3], data: seededFloats(144, seed) }, { name: `b_${name}`, dims: [4], data: seededFloats(4, seed + 1) }],
});

describe("optimize's float layers in the report", () => {
  it('are the layers that compute in float in the written graph, each with the reason of the activation it reads or writes', () => {
    const layers = [conv('c1', 'x', 'a', 1), conv('c2', 'a', 'b', 3), conv('c3', 'b', 'y', 5)];
    const m = tinyModel({ opset: 13, input: { name: 'x', shape: [1, 4, 8, 8] }, outputs: ['y'], nodes: layers.map((l) => l.node), initializers: layers.flatMap((l) => l.inits) });
    const q = quantizeModel(m, { x: [-1, 1], a: [-4, 4], b: [-4, 4], y: [-4, 4] }, { floatTensors: ['a'] }).model;
    const truth = floatComputeLayers(q, 'int8-qdq')!.map((l) => l.layer);
    expect(truth).toEqual(['c1', 'c2']); // c1 writes float a, c2 reads it
    const rows = byComputeLayer(q, [
      { layer: 'a', op: 'Conv', reason: 'activation sensitivity: loss 1e-3' },
      { layer: 'elsewhere', op: 'Add', reason: 'kept by hand' },
    ]);
    expect(rows).toEqual([
      { layer: 'c1', op: 'Conv', reason: 'writes activation a, kept float: activation sensitivity: loss 1e-3' },
      { layer: 'c2', op: 'Conv', reason: 'reads activation a, kept float: activation sensitivity: loss 1e-3' },
      { layer: 'elsewhere', op: 'Add', reason: 'kept by hand' }, // matches no layer: kept as it was
    ]);
  });
});
