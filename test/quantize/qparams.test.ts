import { describe, expect, it } from 'vitest';
import {
  FLOAT32_TINY, INT32_MAX, INT32_MIN, adjustWeightScalesForBias, asymmetricUint8, compareTensors, computeScaleZeroPoint,
  dequantizeLinear, dequantizePerChannel, fakeQuantize, quantizationError, quantizeBias, quantizeLinear, quantizeValue,
  quantizeWeightsPerChannel, roundHalfEven, symmetricInt8, symmetricInt8FromAmax, weightBitsFor,
} from '../../pipeline/quantize/qparams.js';

describe('roundHalfEven (ONNX QuantizeLinear rounding)', () => {
  it.each([
    [0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-0.5, -0], [-1.5, -2], [-2.5, -2], [2.4999999, 2], [2.5000001, 3],
    [-2.6, -3], [7, 7], [2 ** 53, 2 ** 53], [-(2 ** 52) - 0.5, -(2 ** 52)],
  ])('%d -> %d', (x, r) => {
    expect(roundHalfEven(x) === r).toBe(true);
  });
});

describe('asymmetric uint8 (ORT compute_scale_zp)', () => {
  it('[-1, 3] -> scale 4/255, zero point 64', () => {
    const qp = asymmetricUint8(-1, 3);
    expect(qp.scale).toBe(Math.fround(4 / 255));
    expect(qp.zeroPoint).toBe(64); // round(63.75)
    expect([qp.qmin, qp.qmax, qp.dtype]).toEqual([0, 255, 'uint8']);
  });

  it('widens a range that excludes 0, so real 0 is exact', () => {
    const pos = asymmetricUint8(2, 6); // -> [0, 6]
    expect(pos.scale).toBe(Math.fround(6 / 255));
    expect(pos.zeroPoint).toBe(0);
    const neg = asymmetricUint8(-5, -1); // -> [-5, 0]
    expect(neg.zeroPoint).toBe(255);
    expect(quantizeValue(0, neg)).toBe(255);
    expect(fakeQuantize([0], asymmetricUint8(-0.37, 1.91))[0]).toBe(0);
  });

  it('rounds the zero point half to even: [-0.5, 1.5] -> 2/255, zero point round(63.75) = 64; [-1, 1] -> 127.5 -> 128', () => {
    expect(asymmetricUint8(-0.5, 1.5).zeroPoint).toBe(64);
    expect(asymmetricUint8(-1, 1).zeroPoint).toBe(128);
  });
});

describe('symmetric int8', () => {
  it('amax 2.54 -> scale 0.02 (float32), zero point 0, range [-127, 127]', () => {
    const qp = symmetricInt8FromAmax(2.54);
    expect(qp.scale).toBe(Math.fround(0.02));
    expect(qp).toMatchObject({ zeroPoint: 0, qmin: -127, qmax: 127, dtype: 'int8' });
  });

  it('uses the larger side of an asymmetric range', () => {
    expect(symmetricInt8(-1.27, 0.5).scale).toBe(Math.fround(0.01));
    expect(symmetricInt8(0.1, 12.7).scale).toBe(Math.fround(0.1));
  });

  it('never produces -128', () => {
    const qp = symmetricInt8FromAmax(1);
    expect(quantizeValue(-5, qp)).toBe(-127);
    expect(Array.from(quantizeLinear([-1, -1.004, 1.004, 1], qp))).toEqual([-127, -127, 127, 127]);
  });
});

describe('weight bits of a [-qmax, qmax] grid (the report\'s weightBits)', () => {
  it('names grids as onnxruntime does: 127 -> 8, reduce_range 64 -> 7, 65 -> 8, 63 -> 7, 32 -> 6, 10 -> 5', () => {
    expect([127, 100, 65, 64, 63, 33, 32, 10, 2, 1].map(weightBitsFor)).toEqual([8, 8, 8, 7, 7, 7, 6, 5, 2, 2]);
    expect(() => weightBitsFor(128)).toThrow(/qmax/);
    expect(() => weightBitsFor(0)).toThrow(/qmax/);
  });
});

describe('degenerate ranges', () => {
  it.each([
    ['all zeros', 0, 0],
    ['a subnormal span', -1e-40, 1e-40],
    ['a span below float32 tiny after division', 0, 1e-37],
  ])('%s -> scale 1, zero point 0', (_n, lo, hi) => {
    for (const qp of [asymmetricUint8(lo, hi), symmetricInt8(lo, hi)]) {
      expect(qp.scale).toBe(1);
      expect(qp.zeroPoint).toBe(0);
      expect(Number.isNaN(fakeQuantize([0, lo, hi], qp)[0])).toBe(false);
    }
  });

  it('keeps tiny but normal spans exact enough (scale >= float32 tiny, never 0)', () => {
    const qp = symmetricInt8FromAmax(1e-30);
    expect(qp.scale).toBeGreaterThanOrEqual(FLOAT32_TINY);
    expect(qp.scale).toBe(Math.fround(Math.fround(1e-30) / 127));
  });

  it('refuses non-finite or inverted ranges with a named argument error', () => {
    expect(() => asymmetricUint8(NaN, 1)).toThrow(/quantization range/);
    expect(() => symmetricInt8(2, 1)).toThrow(/lo <= hi/);
    expect(() => symmetricInt8FromAmax(-1)).toThrow(/amax/);
    expect(() => computeScaleZeroPoint(0, 1, 1, 255, false)).toThrow(/qmin/);
  });
});

describe('QuantizeLinear / DequantizeLinear', () => {
  const qp = asymmetricUint8(-1, 3); // scale 4/255, zp 64

  it('quantizes with round-half-even and saturates at the type limits', () => {
    const s = qp.scale;
    expect(quantizeValue(0, qp)).toBe(64);
    expect(quantizeValue(0.5 * s, qp)).toBe(64); // 0.5 -> 0
    expect(quantizeValue(1.5 * s, qp)).toBe(66); // 1.5 -> 2
    expect(quantizeValue(2.5 * s, qp)).toBe(66); // 2.5 -> 2
    expect(quantizeValue(100, qp)).toBe(255);
    expect(quantizeValue(-100, qp)).toBe(0);
    const q = quantizeLinear([-1, 0, 3, 1e9, -1e9], qp);
    expect(q).toBeInstanceOf(Uint8Array);
    expect(Array.from(q)).toEqual([0, 64, 255, 255, 0]);
  });

  it('dequantizes as float32((q - zp) * scale)', () => {
    const d = dequantizeLinear(Uint8Array.from([0, 64, 255]), qp.scale, qp.zeroPoint);
    expect(Array.from(d)).toEqual([Math.fround(-64 * qp.scale), 0, Math.fround(191 * qp.scale)]);
  });

  it('fake quantization error is at most half a step inside the range', () => {
    const x = Float32Array.from({ length: 1001 }, (_, i) => -1 + (4 * i) / 1000);
    const e = quantizationError(x, qp);
    expect(e.maxAbsError).toBeLessThanOrEqual(qp.scale / 2 + 1e-7 + 0.004); // + the clipped top (3 vs 191*s)
    expect(e.clippedFraction).toBe(0);
    expect(e.sqnrDb).toBeGreaterThan(40);
  });

  it('reports clipping and exactness', () => {
    const e = quantizationError([0, 10, -10, 0.5], symmetricInt8FromAmax(1));
    expect(e.clippedFraction).toBe(0.5);
    expect(e.maxAbsError).toBeCloseTo(9, 5);
    expect(compareTensors([1, 2], [1, 2])).toEqual({ mse: 0, maxAbsError: 0, sqnrDb: Infinity });
    expect(compareTensors([1, 2], [1, 3]).mse).toBe(0.5);
  });

  it('SQNR is 10 log10(signal power / noise power)', () => {
    // signal 1 + 1 = 2, noise 0.1^2 = 0.01 -> 10 log10(200) = 23.0103 dB
    expect(compareTensors([1, 1], [1, 0.9]).sqnrDb).toBeCloseTo(10 * Math.log10(200), 4);
  });

  it('rounds the float32 quotient x / scale (ONNX reference), not the float64 one', () => {
    // 2.5 + 2^-30 is 2.5 in float32, a tie that rounds to 2; in float64 it would round to 3
    const qp = { dtype: 'int8' as const, scale: 1, zeroPoint: 0, qmin: -127, qmax: 127 };
    expect(quantizeValue(2.5 + 2 ** -30, qp)).toBe(2);
    expect(quantizeValue(-2.5 - 2 ** -30, qp)).toBe(-2);
  });
});

describe('per-channel weights (symmetric int8)', () => {
  // Conv weight [M=2, C=1, 1, 2]: channel 0 amax 1.27, channel 1 amax 0.254; and an all-zero channel
  const w = Float32Array.from([1.27, -0.635, 0.254, 0.127, 0, 0]);

  it('gives each output channel its own amax/127 scale along axis 0', () => {
    const q = quantizeWeightsPerChannel(w, [3, 1, 1, 2], 0);
    expect(Array.from(q.scales)).toEqual([Math.fround(0.01), Math.fround(0.002), 1]);
    expect(Array.from(q.data)).toEqual([127, -64, 127, 64, 0, 0]); // -63.5 -> -64, 63.5 -> 64 (half to even)
    expect(Array.from(q.zeroPoints)).toEqual([0, 0, 0]);
    const back = dequantizePerChannel(q);
    for (let i = 0; i < w.length; i++) expect(Math.abs(back[i] - w[i])).toBeLessThanOrEqual(q.scales[Math.floor(i / 2)] / 2 + 1e-7);
  });

  it('quantizes along axis 1 (MatMul weight [K, N])', () => {
    const m = Float32Array.from([1, 10, -2, 5, 0.5, -20]); // [3, 2]: column amax 2 and 20
    const q = quantizeWeightsPerChannel(m, [3, 2], 1);
    expect(Array.from(q.scales)).toEqual([Math.fround(2 / 127), Math.fround(20 / 127)]);
    expect(Array.from(q.data)).toEqual([64, 64, -127, 32, 32, -127]);
  });

  it('uses given scales and validates dims and axis', () => {
    const q = quantizeWeightsPerChannel(w, [3, 2], 0, [0.02, 0.02, 0.02]);
    expect(Array.from(q.data)).toEqual([64, -32, 13, 6, 0, 0]);
    expect(() => quantizeWeightsPerChannel(w, [4, 2], 0)).toThrow(/weight dims/);
    expect(() => quantizeWeightsPerChannel(w, [3, 2], 2)).toThrow(/axis/);
    expect(() => quantizeWeightsPerChannel(w, [3, 2], 0, [1, 0, 1])).toThrow(/scales\[1\]/);
  });

  it('saturates at -qmax / qmax (never -128) when given scales are too small', () => {
    const x = Float32Array.from([-5, 5, 0.02]);
    expect(Array.from(quantizeWeightsPerChannel(x, [1, 3], 0, [0.01]).data)).toEqual([-127, 127, 2]);
    expect(Array.from(quantizeWeightsPerChannel(x, [1, 3], 0, [0.01], 64).data)).toEqual([-64, 64, 2]);
  });
});

describe('int32 bias', () => {
  it('uses scale = input scale x weight scale per channel', () => {
    const b = quantizeBias(Float32Array.from([0.5, -0.25]), 0.1, [0.01, 0.02]);
    expect(Array.from(b.scales)).toEqual([Math.fround(0.1 * 0.01), Math.fround(0.1 * 0.02)]);
    expect(Array.from(b.data)).toEqual([500, -125]);
    expect(b.saturated).toBe(0);
  });

  it('broadcasts a per-tensor weight scale and saturates at the int32 limits', () => {
    const b = quantizeBias(Float32Array.from([1, 1e6, -1e6]), 1e-3, 1e-3);
    expect(b.scales.length).toBe(1);
    expect(Array.from(b.data)).toEqual([1_000_000, INT32_MAX, INT32_MIN]);
    expect(b.saturated).toBe(2);
  });

  it('adjustWeightScalesForBias raises only the scales that would overflow', () => {
    const bias = Float32Array.from([1e6, 0.1]);
    const scales = adjustWeightScalesForBias([1e-6, 1e-3], bias, 1e-3);
    expect(scales[1]).toBe(Math.fround(1e-3));
    expect(scales[0]).toBeGreaterThan(1e-6);
    expect(quantizeBias(bias, 1e-3, scales).saturated).toBe(0);
    expect(Math.abs(quantizeBias(bias, 1e-3, scales).data[0])).toBeLessThanOrEqual(INT32_MAX / 2 + 1);
  });

  it('refuses mismatched lengths and zero scales', () => {
    expect(() => quantizeBias(Float32Array.from([1, 2]), 0.1, [0.1])).toThrow(/weight scales/);
    expect(() => quantizeBias(Float32Array.from([1]), 0, 0.1)).toThrow(/bias scale/);
  });
});
