/**
 * TensorProto <-> typed arrays. Initializers may carry their bytes in `raw_data` (little-endian) or in
 * the typed repeated fields (`float_data`, `int32_data`, `int64_data`, ...), and float16 values travel as
 * uint16 bit patterns inside `int32_data`. Readers accept every form; the writer always emits raw_data,
 * which is what exporters produce and what loads fastest.
 */
import { FaceoptError } from '../errors.js';
import { DataType, dataTypeName, toNumber, type Int64, type NodeProto, type TensorProto } from './proto.js';

export type TypedArray = Float32Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array | Float64Array;

/** A tensor as plain data: dims, ONNX data type, and values. int64 values come as BigInt64Array. */
export interface TensorData {
  dims: number[];
  dataType: number;
  data: TypedArray;
}

const BYTES: Record<number, number> = {
  [DataType.FLOAT]: 4, [DataType.UINT8]: 1, [DataType.INT8]: 1, [DataType.INT32]: 4, [DataType.INT64]: 8,
  [DataType.FLOAT16]: 2, [DataType.DOUBLE]: 8, [DataType.BOOL]: 1,
};

/** Number of elements for dims. */
export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function copyBytes(raw: Uint8Array): ArrayBuffer {
  // raw_data may be a view into the whole model buffer at an unaligned offset: copy it out.
  const buf = new ArrayBuffer(raw.byteLength);
  new Uint8Array(buf).set(raw);
  return buf;
}

/** Decode a TensorProto to typed values. Throws FACEOPT_ERR_UNSUPPORTED_TENSOR for other types. */
export function readTensor(t: TensorProto): TensorData {
  const dims = (t.dims ?? []).map((d) => toNumber(d as Int64));
  const dataType = t.dataType ?? 0;
  const n = numel(dims);
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : undefined;
  if (t.dataLocation === 1) {
    throw new FaceoptError('FACEOPT_ERR_EXTERNAL_DATA', { tensor: t.name, path: '(not loaded)', reason: 'external data was not resolved when the model was read' });
  }
  const unsupported = () => new FaceoptError('FACEOPT_ERR_UNSUPPORTED_TENSOR', { tensor: t.name ?? '?', dtype: dataTypeName(dataType) });
  switch (dataType) {
    case DataType.FLOAT:
      return { dims, dataType, data: raw ? new Float32Array(copyBytes(raw)) : Float32Array.from(t.floatData ?? []) };
    case DataType.DOUBLE:
      return { dims, dataType, data: raw ? new Float64Array(copyBytes(raw)) : Float64Array.from(t.doubleData ?? []) };
    case DataType.FLOAT16:
      return { dims, dataType, data: raw ? new Uint16Array(copyBytes(raw)) : Uint16Array.from(t.int32Data ?? []) };
    case DataType.INT8:
      return { dims, dataType, data: raw ? new Int8Array(copyBytes(raw)) : Int8Array.from(t.int32Data ?? []) };
    case DataType.UINT8:
    case DataType.BOOL:
      return { dims, dataType, data: raw ? new Uint8Array(copyBytes(raw)) : Uint8Array.from(t.int32Data ?? []) };
    case DataType.INT32:
      return { dims, dataType, data: raw ? new Int32Array(copyBytes(raw)) : Int32Array.from(t.int32Data ?? []) };
    case DataType.INT64: {
      if (raw) return { dims, dataType, data: new BigInt64Array(copyBytes(raw)) };
      const out = new BigInt64Array(n);
      (t.int64Data ?? []).forEach((v, i) => { out[i] = BigInt(toNumber(v as Int64)); });
      return { dims, dataType, data: out };
    }
    default:
      throw unsupported();
  }
}

/** Float view of a numeric tensor (float16 and ints converted); used for statistics and comparisons. */
export function tensorToFloat32(t: TensorData): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.dataType === DataType.FLOAT16) return Float32Array.from(t.data as Uint16Array, halfToFloat);
  if (t.data instanceof BigInt64Array) return Float32Array.from(t.data, (v) => Number(v));
  return Float32Array.from(t.data as ArrayLike<number>);
}

/** Encode typed values as a TensorProto with raw_data (little-endian, as ONNX requires). */
export function makeTensor(name: string, dataType: number, dims: readonly number[], data: TypedArray | number[]): TensorProto {
  const width = BYTES[dataType];
  if (!width) throw new FaceoptError('FACEOPT_ERR_UNSUPPORTED_TENSOR', { tensor: name, dtype: dataTypeName(dataType) });
  let arr: TypedArray;
  if (Array.isArray(data)) {
    arr = dataType === DataType.FLOAT ? Float32Array.from(data)
      : dataType === DataType.INT8 ? Int8Array.from(data)
      : dataType === DataType.UINT8 || dataType === DataType.BOOL ? Uint8Array.from(data)
      : dataType === DataType.INT32 ? Int32Array.from(data)
      : dataType === DataType.INT64 ? BigInt64Array.from(data, (v) => BigInt(v))
      : dataType === DataType.FLOAT16 ? Uint16Array.from(data, floatToHalf)
      : Float64Array.from(data);
  } else {
    arr = data;
  }
  if (arr.length !== numel(dims)) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `tensor ${name} has ${arr.length} values for dims [${dims.join(',')}]` });
  }
  if (arr.BYTES_PER_ELEMENT !== width) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `tensor ${name}: ${arr.constructor.name} does not match ${dataTypeName(dataType)}` });
  }
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).slice();
  return { name, dataType, dims: [...dims], rawData: bytes };
}

/** Byte size of a tensor's payload. */
export function tensorByteSize(t: TensorProto): number {
  if (t.rawData && t.rawData.byteLength > 0) return t.rawData.byteLength;
  const n = numel((t.dims ?? []).map((d) => toNumber(d as Int64)));
  return n * (BYTES[t.dataType ?? 0] ?? 0);
}

/** IEEE half (bit pattern) -> float. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float -> IEEE half bit pattern, round to nearest even. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

/** A Constant node's value as a tensor: its `value` (as stored), or its `value_float` / `value_floats` named `name`. */
export function constantTensor(n: NodeProto, name: string): TensorProto | undefined {
  for (const a of n.attribute ?? []) {
    if (a.name === 'value' && a.t) return a.t;
    if (a.name === 'value_float') return makeTensor(name, DataType.FLOAT, [], [a.f ?? 0]);
    if (a.name === 'value_floats') return makeTensor(name, DataType.FLOAT, [a.floats?.length ?? 0], a.floats ?? []);
  }
  return undefined;
}
