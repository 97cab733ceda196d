/**
 * countMacs (inspect's MAC count) and concreteShape, case by case, on tiny graphs run in onnxruntime:
 * Gemm with and without transB, a MatMul on an intermediate tensor, per-op sums, and the quantized
 * layers whose probe outputs need the right element type (QLinearConv uint8/int8, ConvInteger).
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { makeValueInfo } from '../../pipeline/onnx/graph.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { concreteShape, countMacs } from '../../pipeline/onnx/macs.js';
import { tinyModel } from './tiny.js';

describe('concreteShape', () => {
  it('symbolic, unknown and zero dims: batch first, H and W last for 4-D inputs, else 1', () => {
    expect(concreteShape(['N', 3, 'H', 'W'])).toEqual([1, 3, 640, 640]);
    expect(concreteShape(['N', 3, null, 'W'], { batch: 2, spatial: [112, 96] })).toEqual([2, 3, 112, 96]);
    expect(concreteShape(['N', 'T', 'C'])).toEqual([1, 1, 1]);
    expect(concreteShape([0, 3])).toEqual([1, 3]);
    expect(concreteShape(null)).toEqual([]);
  });
});

describe('countMacs', () => {
  it('Gemm: K is the weight\'s second dim with transB, its first without', async () => {
    const gemm = (transB: number, dims: number[]) => tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 4] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'w'], ['y'], 'gemm', transB ? { transB } : {})],
      initializers: [{ name: 'w', dims, data: new Float32Array(12) }],
    });
    const t = await countMacs(gemm(1, [3, 4]));
    expect(t.total).toBe(3 * 4);
    expect(t.inputShapes).toEqual({ x: [1, 4] });
    expect((await countMacs(gemm(0, [4, 3]))).total).toBe(3 * 4);
  });

  it('MatMul on an intermediate tensor: output elements x the shared dim', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 2, 5] }, outputs: ['y'],
      nodes: [makeNode('Relu', ['x'], ['r'], 'relu'), makeNode('MatMul', ['r', 'w'], ['y'], 'mm')],
      initializers: [{ name: 'w', dims: [5, 3], data: new Float32Array(15) }],
    });
    const r = await countMacs(m);
    expect(r.layers).toEqual([{ name: 'mm', op: 'MatMul', macs: 2 * 3 * 5 }]);
  });

  it('MatMul with a constant first operand (MatMul(W, x)): the shared dim is the constant\'s last', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [4, 3] }, outputs: ['y'],
      nodes: [makeNode('MatMul', ['a', 'x'], ['y'], 'mm')],
      initializers: [{ name: 'a', dims: [2, 4], data: new Float32Array(8) }],
    });
    expect((await countMacs(m)).layers).toEqual([{ name: 'mm', op: 'MatMul', macs: 2 * 3 * 4 }]);
  });

  it('sums layers of one op in byOp', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 2, 3, 3] }, outputs: ['y'],
      nodes: [makeNode('Conv', ['x', 'w'], ['a'], 'c1'), makeNode('Conv', ['a', 'w'], ['y'], 'c2')],
      initializers: [{ name: 'w', dims: [2, 2, 1, 1], data: [1, 0, 0, 1] }],
    });
    const r = await countMacs(m);
    expect(r.byOp).toEqual({ Conv: 2 * 2 * 18 });
    expect(r.total).toBe(2 * 2 * 18);
  });

  /** x -> QuantizeLinear -> QLinearConv (1x1, one channel, in `domain`) -> DequantizeLinear, activations of `type`. */
  const qlinearConv = (type: number, domain = '') => tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 1, 4, 4] }, outputs: ['y'],
    nodes: [
      makeNode('QuantizeLinear', ['x', 's', 'zp'], ['xq'], 'q'),
      makeNode('QLinearConv', ['xq', 's', 'zp', 'wq', 's', 'wzp', 's', 'zp'], ['yq'], 'qc', {}, domain),
      makeNode('DequantizeLinear', ['yq', 's', 'zp'], ['y'], 'dq'),
    ],
    initializers: [
      { name: 's', dims: [], data: [0.1] }, { name: 'zp', dataType: type, dims: [], data: [0] },
      { name: 'wq', dataType: DataType.INT8, dims: [1, 1, 1, 1], data: [5] }, { name: 'wzp', dataType: DataType.INT8, dims: [], data: [0] },
    ],
  });

  it('QLinearConv with uint8 activations, and with int8 ones recorded in value_info', async () => {
    expect((await countMacs(qlinearConv(DataType.UINT8))).total).toBe(16);
    const s8 = qlinearConv(DataType.INT8);
    s8.graph.proto.valueInfo!.push(makeValueInfo('yq', DataType.INT8, [1, 1, 4, 4]));
    expect((await countMacs(s8)).total).toBe(16);
  });

  it('counts the com.microsoft form of a counted op (QLinearConv)', async () => {
    const m = qlinearConv(DataType.UINT8, 'com.microsoft');
    m.proto.opsetImport!.push({ domain: 'com.microsoft', version: 1 });
    expect((await countMacs(m)).layers).toEqual([{ name: 'qc', op: 'QLinearConv', macs: 16 }]);
  });

  it('ConvInteger: its int32 output is probed', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 1, 4, 4] }, outputs: ['y'],
      nodes: [
        makeNode('DynamicQuantizeLinear', ['x'], ['xq', 'xs', 'xzp'], 'dql'),
        makeNode('ConvInteger', ['xq', 'wq', 'xzp'], ['yi'], 'ci'),
        makeNode('Cast', ['yi'], ['y'], 'cast', { to: DataType.FLOAT }),
      ],
      initializers: [{ name: 'wq', dataType: DataType.UINT8, dims: [2, 1, 1, 1], data: [1, 2] }],
    });
    expect((await countMacs(m)).layers).toEqual([{ name: 'ci', op: 'ConvInteger', macs: 32 }]);
  });
});
