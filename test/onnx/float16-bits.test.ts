/**
 * IEEE 754 binary16 conversion (pipeline/onnx/tensor.ts) at the edges, with bit patterns worked out by
 * hand: subnormals (2^-24 is the smallest, 2^-25 the tie between 0 and it), the largest finite value
 * (65504 = 0x7bff; 65520 is the tie that rounds to infinity), infinities, NaN, the sign of subnormals,
 * and every one of the 65536 patterns through halfToFloat and back.
 */
import { describe, expect, it } from 'vitest';
import { DataType, floatToHalf, halfToFloat, makeNode, makeTensor, readTensor } from '../../pipeline/onnx/index.js';
import { constantTensor, tensorToFloat32 } from '../../pipeline/onnx/tensor.js';

describe('floatToHalf', () => {
  it.each([
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -15, 0x0200], // subnormal, exact
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // exactly half of it: tie -> even (0)
    [1.5 * 2 ** -25, 0x0001], // above the tie: rounds up
    [2 ** -26, 0x0000], // below half: 0
    [3 * 2 ** -25, 0x0002], // 1.5 * 2^-24: tie between 1 and 2 -> even (2)
    [5 * 2 ** -25, 0x0002], // 2.5 * 2^-24: tie between 2 and 3 -> even (2)
    [-(2 ** -24), 0x8001], // negative subnormal keeps its sign
    [-(2 ** -25), 0x8000], // negative zero
    [65504, 0x7bff],
    [65519, 0x7bff], // below the tie 65520: stays finite
    [65520, 0x7c00], // tie between 65504 and 65536 (which is inf): even -> inf
    [70000, 0x7c00], // above the largest: inf, not a NaN pattern
    [131071, 0x7c00],
    [-70000, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ])('%d -> 0x%s', (v, bits) => {
    expect(floatToHalf(v).toString(16)).toBe(bits.toString(16));
  });

  it('NaN stays NaN (quiet NaN 0x7e00), not infinity', () => {
    expect(floatToHalf(NaN)).toBe(0x7e00);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
  });
});

describe('halfToFloat', () => {
  it.each([
    [0x0001, 2 ** -24], [0x8001, -(2 ** -24)], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14],
    [0x3c00, 1], [0x7bff, 65504], [0x7c00, Infinity], [0xfc00, -Infinity],
  ])('0x%s', (bits, v) => {
    expect(halfToFloat(bits)).toBe(v);
  });

  it('0x7e00 and 0x7c01 are NaN', () => {
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
    expect(Number.isNaN(halfToFloat(0x7c01))).toBe(true);
  });

  it('every non-NaN pattern survives halfToFloat -> floatToHalf unchanged', () => {
    const bad: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      if (floatToHalf(halfToFloat(h)) !== h) bad.push(h);
    }
    expect(bad).toEqual([]);
  });
});

describe('float16 tensors', () => {
  it('tensorToFloat32 decodes float16 bit patterns, not their integer values', () => {
    const t = readTensor(makeTensor('h', DataType.FLOAT16, [4], [1, -2, 0.5, 2 ** -24]));
    expect(Array.from(t.data as Uint16Array)).toEqual([0x3c00, 0xc000, 0x3800, 0x0001]);
    expect(Array.from(tensorToFloat32(t))).toEqual([1, -2, 0.5, Math.fround(2 ** -24)]);
  });

  it('a Constant with value_floats is a 1-D tensor of that length', () => {
    const n = makeNode('Constant', [], ['c'], 'c', { value_floats: [1.5, 2.5, 3.5] });
    const t = readTensor(constantTensor(n, 'c')!);
    expect(t.dims).toEqual([3]);
    expect(Array.from(t.data as Float32Array)).toEqual([1.5, 2.5, 3.5]);
  });
});
