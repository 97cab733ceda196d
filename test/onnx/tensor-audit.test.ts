/**
 * TensorProto <-> typed arrays, case by case: every data type's typed field, refusals (unresolved
 * external data, wrong length, wrong array type), copies instead of shared buffers, payload sizes,
 * float views, and the tensors of Constant nodes.
 */
import { describe, expect, it } from 'vitest';
import { DataType, onnx } from '../../pipeline/onnx/index.js';
import { constantTensor, makeTensor, readTensor, tensorByteSize, tensorToFloat32, type TensorData } from '../../pipeline/onnx/tensor.js';
import type { TensorProto } from '../../pipeline/onnx/proto.js';

/** The tensor as it comes back from the wire (defaults filled in as protobufjs fills them). */
const wire = (t: TensorProto) => onnx.TensorProto.decode(onnx.TensorProto.encode(t).finish());
/** Values of a non-int64 tensor as plain numbers. */
const values = (t: TensorData) => Array.from(t.data as ArrayLike<number>);
const codeOf = (f: () => unknown) => { try { f(); } catch (e) { return (e as { code?: string }).code; } return 'none'; };

describe('readTensor', () => {
  it('float64 from double_data, bool from int32_data or raw_data', () => {
    expect(values(readTensor(wire({ name: 'd', dataType: DataType.DOUBLE, dims: [2], doubleData: [0.1, -2.5] })))).toEqual([0.1, -2.5]);
    const b = readTensor(wire({ name: 'b', dataType: DataType.BOOL, dims: [3], int32Data: [1, 0, 1] }));
    expect(b.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(b.data as Uint8Array)).toEqual([1, 0, 1]);
    expect(Array.from(readTensor(wire(makeTensor('b', DataType.BOOL, [2], [0, 1]))).data as Uint8Array)).toEqual([0, 1]);
  });

  it('refuses a tensor whose external data was never loaded', () => {
    const t = wire({ name: 'w', dataType: DataType.FLOAT, dims: [1], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'w.bin' }] });
    expect(codeOf(() => readTensor(t))).toBe('FACEOPT_ERR_EXTERNAL_DATA');
  });

  it('raw_data inside a larger buffer at an odd offset reads the right bytes', () => {
    const whole = new Uint8Array(1 + 8);
    whole.set(new Uint8Array(new Float32Array([1.5, -3]).buffer), 1);
    const view = whole.subarray(1);
    expect(values(readTensor({ name: 'v', dataType: DataType.FLOAT, dims: [2], rawData: view }))).toEqual([1.5, -3]);
  });

  it('int64 from int64_data beyond 32 bits', () => {
    const t = readTensor(wire({ name: 'i', dataType: DataType.INT64, dims: [2], int64Data: [2 ** 40 + 3, -7] }));
    expect(Array.from(t.data as BigInt64Array)).toEqual([2n ** 40n + 3n, -7n]);
  });
});

describe('tensorToFloat32', () => {
  it('converts float16 bit patterns and int64 values to floats', () => {
    expect(Array.from(tensorToFloat32(readTensor(makeTensor('h', DataType.FLOAT16, [2], [0.5, -2]))))).toEqual([0.5, -2]);
    expect(Array.from(tensorToFloat32(readTensor(makeTensor('i', DataType.INT64, [2], [3, -4]))))).toEqual([3, -4]);
    expect(Array.from(tensorToFloat32(readTensor(makeTensor('u', DataType.UINT8, [1], [200]))))).toEqual([200]);
  });
});

describe('makeTensor', () => {
  it('refuses more or fewer values than the dims hold, and an array of the wrong width', () => {
    expect(codeOf(() => makeTensor('t', DataType.FLOAT, [2], [1, 2, 3]))).toBe('FACEOPT_ERR_GRAPH');
    expect(codeOf(() => makeTensor('t', DataType.FLOAT, [2], [1]))).toBe('FACEOPT_ERR_GRAPH');
    expect(codeOf(() => makeTensor('t', DataType.DOUBLE, [2], new Float32Array(2)))).toBe('FACEOPT_ERR_GRAPH');
    expect(codeOf(() => makeTensor('t', DataType.STRING, [1], [1]))).toBe('FACEOPT_ERR_UNSUPPORTED_TENSOR');
  });

  it('copies: changing the source array or dims afterwards leaves the tensor as it was', () => {
    const data = new Float32Array([1, 2, 3, 4]);
    const dims = [2, 2];
    const t = makeTensor('t', DataType.FLOAT, dims, data.subarray(0, 4));
    data[0] = 99;
    dims[0] = 7;
    expect(values(readTensor(t))).toEqual([1, 2, 3, 4]);
    expect(t.dims).toEqual([2, 2]);
    expect(t.rawData!.byteLength).toBe(16);
  });

  it('a scalar (dims []) holds one value', () => {
    const t = readTensor(wire(makeTensor('s', DataType.FLOAT, [], [2.5])));
    expect(t.dims).toEqual([]);
    expect(values(t)).toEqual([2.5]);
  });
});

describe('tensorByteSize', () => {
  it('is raw_data\'s length, or elements x width for typed fields', () => {
    expect(tensorByteSize(makeTensor('t', DataType.FLOAT16, [3], [1, 2, 3]))).toBe(6);
    expect(tensorByteSize(wire({ name: 'f', dataType: DataType.FLOAT, dims: [2, 3], floatData: [1, 2, 3, 4, 5, 6] }))).toBe(24);
    expect(tensorByteSize(wire({ name: 'h', dataType: DataType.FLOAT16, dims: [4], int32Data: [1, 2, 3, 4] }))).toBe(8);
    expect(tensorByteSize(wire({ name: 'b', dataType: DataType.BOOL, dims: [5], int32Data: [1, 0, 1, 0, 1] }))).toBe(5);
  });
});

describe('constantTensor', () => {
  it('value_float is a scalar, value_floats a vector, value is returned as stored', () => {
    const vf = constantTensor({ opType: 'Constant', attribute: [{ name: 'value_float', type: onnx.AttributeProto.AttributeType.FLOAT, f: 0.25 }] }, 'k')!;
    expect(vf.name).toBe('k');
    expect(readTensor(vf).dims).toEqual([]);
    expect(values(readTensor(vf))).toEqual([0.25]);
    const vfs = constantTensor({ opType: 'Constant', attribute: [{ name: 'value_floats', type: onnx.AttributeProto.AttributeType.FLOATS, floats: [1, 2, 3] }] }, 'k')!;
    expect(readTensor(vfs).dims).toEqual([3]);
    const t = makeTensor('stored', DataType.INT32, [1], [5]);
    expect(constantTensor({ opType: 'Constant', attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t }] }, 'k')).toBe(t);
  });
});
