import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { byteBreakdown, type ByteBreakdown } from '../../pipeline/onnx/bytes.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { seededFloats } from './compare.js';
import { tinyModel } from './tiny.js';

const part = (b: ByteBreakdown, name: string) => b.parts.find((p) => p.part === name);
const conv = () => tinyModel({
  opset: 11, input: { name: 'x', shape: [1, 4, 6, 6] }, outputs: ['y'],
  nodes: [makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), makeNode('Relu', ['c'], ['y'], 'relu')],
  initializers: [{ name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) }],
});

describe('byteBreakdown (inspect --bytes)', () => {
  it('float model: the weights and biases of weighted layers, the nodes, the rest; the parts add up to the file', () => {
    const m = conv();
    const b = byteBreakdown(m);
    expect(b.total).toBe(m.toBytes().length);
    expect(b.parts.reduce((s, p) => s + p.bytes, 0)).toBe(b.total);
    expect(part(b, 'float weights')).toMatchObject({ count: 1 });
    expect(part(b, 'float weights')!.bytes).toBeGreaterThanOrEqual(288 * 4);
    expect(part(b, 'float biases')).toMatchObject({ count: 1 });
    expect(part(b, 'graph nodes')).toMatchObject({ count: 2 });
    expect(part(b, 'int8 weights')).toBeUndefined();
    expect(b.parts[0]!.part).toBe('float weights'); // largest first
  });

  it('Q/DQ model: int8 weights, their per-channel scales and zero points, int32 biases and their scales, activation parameters', () => {
    const q = quantizeModel(conv(), { x: [-1, 1], c: [-6, 6], y: [0, 6] }).model;
    const b = byteBreakdown(q);
    expect(b.parts.reduce((s, p) => s + p.bytes, 0)).toBe(b.total);
    const int8 = part(b, 'int8 weights')!;
    expect(int8.count).toBe(1);
    expect(int8.bytes).toBeGreaterThanOrEqual(288);
    expect(int8.bytes).toBeLessThan(288 + 40); // one byte a weight, plus name and dims
    expect(part(b, 'weight scales')).toMatchObject({ count: 1 });
    expect(part(b, 'weight zero points')).toMatchObject({ count: 1 });
    expect(part(b, 'int32 biases')).toMatchObject({ count: 1 });
    expect(part(b, 'bias scales')!.count).toBeGreaterThanOrEqual(1);
    expect(part(b, 'activation scales and zero points')!.count).toBeGreaterThanOrEqual(2);
    expect(part(b, 'float weights')).toBeUndefined();
    expect(b.nameBytes).toBeGreaterThan(0);
  });

  it('weight-only int8 (int8 -> Cast -> Mul by scales -> float Conv) counts as int8 weights and weight scales', () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 2, 4, 4] }, outputs: ['y'],
      nodes: [
        makeNode('Cast', ['wq'], ['wf'], 'cast', { to: DataType.FLOAT }),
        makeNode('Mul', ['wf', 'ws'], ['w'], 'mul'),
        makeNode('Conv', ['x', 'w'], ['y'], 'conv'),
      ],
      initializers: [
        { name: 'wq', dataType: DataType.INT8, dims: [3, 2, 1, 1], data: [1, 2, 3, 4, 5, 6] },
        { name: 'ws', dims: [3, 1, 1, 1], data: [0.1, 0.2, 0.3] },
      ],
    });
    const b = byteBreakdown(m);
    expect(part(b, 'int8 weights')).toMatchObject({ count: 1 });
    expect(part(b, 'weight scales')).toMatchObject({ count: 1 });
    expect(part(b, 'other constants')).toBeUndefined();
  });
});
