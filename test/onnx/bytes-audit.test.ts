/**
 * byteBreakdown (inspect --bytes), case by case: exact field sizes (the varint length boundary), name
 * bytes, recorded shapes, ties between equal parts, and which constants count as int8 weights.
 */
import { describe, expect, it } from 'vitest';
import { makeNode, onnx } from '../../pipeline/onnx/index.js';
import { makeValueInfo } from '../../pipeline/onnx/graph.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { byteBreakdown, type ByteBreakdown } from '../../pipeline/onnx/bytes.js';
import { tinyModel } from './tiny.js';

const part = (b: ByteBreakdown, name: string) => b.parts.find((p) => p.part === name);
const X = { name: 'x', shape: [1, 2, 4, 4] };

describe('byteBreakdown: sizes', () => {
  it('an initializer counts exactly the bytes it adds to a graph, on both sides of the 128-byte length boundary', () => {
    for (let n = 110; n <= 135; n++) {
      const m = tinyModel({
        opset: 13, input: X, outputs: ['y'], nodes: [makeNode('Relu', ['x'], ['y'], 'r')],
        initializers: [{ name: 'k', dataType: DataType.UINT8, dims: [n], data: new Uint8Array(n) }],
      });
      const t = m.graph.initializer('k')!;
      const alone = onnx.GraphProto.encode({ initializer: [t] }).finish().length;
      expect(part(byteBreakdown(m), 'other constants')!.bytes).toBe(alone);
    }
  });

  it('counts tensor and node names, and recorded shapes as their own part', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('Relu', ['x'], ['mid'], 'relu'), makeNode('Add', ['mid', 'bias'], ['y'], 'add')],
      initializers: [{ name: 'bias', dims: [1], data: [1] }],
    });
    m.graph.proto.valueInfo = [makeValueInfo('mid', DataType.FLOAT, [1, 2, 4, 4])];
    const b = byteBreakdown(m);
    const expected = ['bias', 'relu', 'x', 'mid', 'add', 'mid', 'bias', 'y'].join('').length;
    expect(b.nameBytes).toBe(expected);
    const vi = onnx.GraphProto.encode({ valueInfo: m.graph.proto.valueInfo }).finish().length;
    expect(part(b, 'recorded shapes (value_info)')).toEqual({ part: 'recorded shapes (value_info)', bytes: vi, count: 1 });
    expect(b.parts.reduce((s, p) => s + p.bytes, 0)).toBe(b.total);
  });

  it('equal parts are listed in BYTE_PARTS order (float weights before float biases)', () => {
    // 'w' [1,4] and 'bi' [4]: the longer name makes up for the shorter (packed) dims, so both encode to the same size
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 4] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'w', 'bi'], ['y'], 'gemm')],
      initializers: [{ name: 'bi', dims: [4], data: [1, 2, 3, 4] }, { name: 'w', dims: [1, 4], data: [1, 2, 3, 4] }],
    });
    const b = byteBreakdown(m);
    expect(part(b, 'float weights')!.bytes).toBe(part(b, 'float biases')!.bytes);
    const order = b.parts.map((p) => p.part);
    expect(order.indexOf('float weights')).toBeLessThan(order.indexOf('float biases'));
  });
});

describe('byteBreakdown: roles of constants', () => {
  it('int8 weights cast back through Cast, Mul and Reshape still count as int8 weights and weight scales', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('Cast', ['wq'], ['wf'], 'cast', { to: DataType.FLOAT }), makeNode('Mul', ['wf', 'ws'], ['wm'], 'mul'),
        makeNode('Reshape', ['wm', 'shape'], ['w'], 'reshape'), makeNode('Conv', ['x', 'w'], ['y'], 'conv'),
      ],
      initializers: [
        { name: 'wq', dataType: DataType.INT8, dims: [6], data: [1, 2, 3, 4, 5, 6] }, { name: 'ws', dims: [6], data: [1, 1, 1, 1, 1, 1] },
        { name: 'shape', dataType: DataType.INT64, dims: [4], data: [3, 2, 1, 1] },
      ],
    });
    const b = byteBreakdown(m);
    expect(part(b, 'int8 weights')).toMatchObject({ count: 1 });
    expect(part(b, 'weight scales')).toMatchObject({ count: 1 });
    expect(part(b, 'other constants')).toMatchObject({ count: 1 }); // the shape
  });

  it('int8 constants that are not a weighted op\'s weight, and float constants cast to float, are other constants', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y', 'z', 'v'],
      nodes: [
        // dequantized int8 constant read as a Conv's data input (not its weight)
        makeNode('DequantizeLinear', ['kq', 'ks'], ['k'], 'kdq'), makeNode('Conv', ['k', 'x'], ['y'], 'conv'),
        // dequantized int8 constant added to the activations
        makeNode('DequantizeLinear', ['aq', 'as'], ['a'], 'adq'), makeNode('Add', ['x', 'a'], ['z'], 'add'),
        // a float constant cast to float and used as a weight: not int8
        makeNode('Cast', ['wf'], ['w'], 'cast', { to: DataType.FLOAT }), makeNode('Conv', ['x', 'w'], ['v'], 'conv2'),
      ],
      initializers: [
        { name: 'kq', dataType: DataType.INT8, dims: [1, 2, 4, 4], data: new Int8Array(32) }, { name: 'ks', dims: [], data: [0.1] },
        { name: 'aq', dataType: DataType.INT8, dims: [1], data: [3] }, { name: 'as', dims: [], data: [0.1] },
        { name: 'wf', dims: [1, 2, 1, 1], data: [1, 2] },
      ],
    });
    const b = byteBreakdown(m);
    expect(part(b, 'int8 weights')).toBeUndefined();
    expect(part(b, 'other constants')).toMatchObject({ count: 3 });
  });

  it('a Mul feeding a weight counts as weight scales only when it scales a Cast of int8 data', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('Mul', ['wf', 'k'], ['w'], 'mul'), makeNode('Conv', ['x', 'w'], ['y'], 'conv')],
      initializers: [{ name: 'wf', dims: [1, 2, 1, 1], data: [1, 2] }, { name: 'k', dims: [], data: [0.5] }],
    });
    const b = byteBreakdown(m);
    expect(part(b, 'weight scales')).toBeUndefined();
    expect(part(b, 'other constants')).toMatchObject({ count: 2 });
  });

  it('a weighted op\'s float bias is a float bias; an int32 bias\'s zero point is a bias parameter, not a weight zero point', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('DequantizeLinear', ['bq', 'bs', 'bz'], ['b'], 'bdq'),
        makeNode('Conv', ['x', 'w', 'b'], ['y'], 'conv'),
      ],
      initializers: [
        { name: 'w', dims: [1, 2, 1, 1], data: [1, 2] }, { name: 'bq', dataType: DataType.INT32, dims: [1], data: [7] },
        { name: 'bs', dims: [], data: [0.1] }, { name: 'bz', dataType: DataType.INT32, dims: [], data: [0] },
      ],
    });
    const b = byteBreakdown(m);
    expect(part(b, 'float weights')).toMatchObject({ count: 1 });
    expect(part(b, 'int32 biases')).toMatchObject({ count: 1 });
    expect(part(b, 'bias scales')).toMatchObject({ count: 2 });
    expect(part(b, 'weight zero points')).toBeUndefined();
  });

  it('a QuantizeLinear of a float constant: the constant is other constants, its scale an activation parameter', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('QuantizeLinear', ['c', 's'], ['cq'], 'q'), makeNode('DequantizeLinear', ['cq', 's'], ['cd'], 'dq'), makeNode('Add', ['x', 'cd'], ['y'], 'add')],
      initializers: [{ name: 'c', dims: [1], data: [0.5] }, { name: 's', dims: [], data: [0.1] }],
    });
    const b = byteBreakdown(m);
    expect(part(b, 'other constants')).toMatchObject({ count: 1 });
    expect(part(b, 'activation scales and zero points')).toMatchObject({ count: 1 });
  });

  it('the scale and zero point of an activation\'s DequantizeLinear are activation parameters', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      // the DequantizeLinear comes first, so it is the parameters' first consumer
      nodes: [makeNode('DequantizeLinear', ['xq', 'ds', 'dz'], ['y'], 'dq'), makeNode('QuantizeLinear', ['x', 'ds', 'dz'], ['xq'], 'q')],
      initializers: [{ name: 'ds', dims: [], data: [0.1] }, { name: 'dz', dataType: DataType.UINT8, dims: [], data: [128] }],
    });
    expect(part(byteBreakdown(m), 'activation scales and zero points')).toMatchObject({ count: 2 });
  });
});
