/**
 * Quantization parameter math (pure, no graph): scales and zero points from calibrated ranges,
 * per-channel weights, int32 biases, QuantizeLinear/DequantizeLinear as ONNX specifies them, and the
 * error a quantization causes (for the mixed-precision sensitivity search).
 *
 * Conventions, chosen once here:
 * - Scales are float32 values (what the graph stores); every function returns `Math.fround`-ed scales
 *   and quantizes with them, so our simulated results equal what a runtime computes from the file.
 * - Ranges are widened to include 0 (ORT's compute_scale_zp), so real 0 (padding, ReLU) is exact.
 * - Asymmetric activations: uint8 [0, 255] with zero point round(0 - lo/scale), ORT's formula.
 * - Symmetric int8 uses [-127, 127], never -128: TensorRT requires it, ORT's symmetric int8 does the
 *   same, it keeps the grid symmetric so negation is exact, and with a zero point of 0 the scale is
 *   simply amax/127 (the TensorRT calibration-cache scale).
 * - Degenerate ranges (all zeros, or a span below float32's smallest normal number) get scale 1 and
 *   zero point 0, as ORT does: never 0, NaN or a subnormal.
 * - Rounding is half to even (ONNX QuantizeLinear), saturating to the type's range; x/scale is the
 *   float32 quotient, as in the ONNX reference.
 */
import { FaceoptError } from '../errors.js';

export type QuantDType = 'uint8' | 'int8';

/** Per-tensor quantization parameters: real = scale * (q - zeroPoint), q in [qmin, qmax]. */
export interface QParams {
  dtype: QuantDType;
  scale: number;
  zeroPoint: number;
  qmin: number;
  qmax: number;
}

/** float32's smallest normal number: scales below it are treated as degenerate. */
export const FLOAT32_TINY = 1.1754943508222875e-38;
export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

function badArgument(name: string, expected: string, received: unknown): never {
  throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name, expected, received: String(received) });
}

function checkRange(lo: number, hi: number): void {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) {
    badArgument('quantization range', 'finite [lo, hi] with lo <= hi', `[${lo}, ${hi}]`);
  }
}

/**
 * Round half to even (banker's rounding), the rounding of ONNX QuantizeLinear and numpy.round.
 * `x - floor(x)` is exact for doubles, so ties are detected exactly.
 */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * ORT's compute_scale_zp: widen [lo, hi] to include 0; if `symmetric`, make it [-amax, amax]; scale =
 * (hi - lo) / (qmax - qmin) in float64 from the float32 span; zero point = round(qmin - lo/scale)
 * (round((qmin+qmax)/2) when symmetric) with that float64 scale, then the scale is rounded to float32.
 * A scale below FLOAT32_TINY becomes 1 with zero point 0.
 */
export function computeScaleZeroPoint(
  lo: number, hi: number, qmin: number, qmax: number, symmetric: boolean,
): { scale: number; zeroPoint: number } {
  checkRange(lo, hi);
  if (!(qmin <= 0 && qmax >= 0 && qmin < qmax)) badArgument('qmin/qmax', 'qmin <= 0 <= qmax, qmin < qmax', `${qmin}/${qmax}`);
  let rmin = Math.min(Math.fround(lo), 0);
  let rmax = Math.max(Math.fround(hi), 0);
  if (symmetric) {
    const amax = Math.max(-rmin, rmax);
    rmin = -amax;
    rmax = amax;
  }
  const scale64 = Math.fround(rmax - rmin) / (qmax - qmin);
  if (!(scale64 >= FLOAT32_TINY)) return { scale: 1, zeroPoint: 0 };
  const zp = symmetric ? roundHalfEven((qmin + qmax) / 2) : roundHalfEven(qmin - rmin / scale64);
  const scale = Math.fround(scale64);
  if (!Number.isFinite(scale)) badArgument('quantization range', 'a span within float32', `[${lo}, ${hi}]`);
  return { scale, zeroPoint: Math.min(qmax, Math.max(qmin, zp)) };
}

/** Asymmetric uint8 parameters for an activation range (the CPU default). [-1, 3] -> 4/255, 64. */
export function asymmetricUint8(lo: number, hi: number): QParams {
  const { scale, zeroPoint } = computeScaleZeroPoint(lo, hi, 0, 255, false);
  return { dtype: 'uint8', scale, zeroPoint, qmin: 0, qmax: 255 };
}

/** Symmetric int8 parameters, [-127, 127], zero point 0: scale = max(|lo|, |hi|) / 127. */
export function symmetricInt8(lo: number, hi: number): QParams {
  const { scale } = computeScaleZeroPoint(lo, hi, -127, 127, true);
  return { dtype: 'int8', scale, zeroPoint: 0, qmin: -127, qmax: 127 };
}

/** Largest int8 weight magnitude: 127, or 64 with reduced range (7-bit weights, `--reduce-range`). */
export const WEIGHT_QMAX = 127;
export const REDUCED_WEIGHT_QMAX = 64;

/**
 * The bits a [-qmax, qmax] weight grid is named by, as onnxruntime names them: 8 for 127, 7 for
 * reduce_range's 64 (its grid [-2^(b-1), 2^(b-1)] counts as b bits), 6 for 32 ... Reports record it
 * (`weightBits`), and serving reads `weightBits <= 7` as weights whose uint8 x int8 product pairs cannot
 * saturate an int16 (255 x 64 x 2 = 32,640).
 */
export function weightBitsFor(qmax: number): number {
  if (!(Number.isInteger(qmax) && qmax >= 1 && qmax <= 127)) badArgument('qmax', 'an integer in [1, 127]', qmax);
  return Math.max(2, Math.ceil(Math.log2(qmax)) + 1);
}

/**
 * Symmetric int8 parameters from an absolute maximum (TensorRT's "dynamic range") on a [-qmax, qmax]
 * grid (default 127). qmax 64 is onnxruntime's reduce_range for int8 weights: on x86 CPUs without VNNI
 * its uint8 x int8 kernels multiply with VPMADDUBSW, which adds two products into a saturating int16;
 * 255 x 64 x 2 = 32,640 fits, where 255 x 127 x 2 = 64,770 does not.
 */
export function symmetricInt8FromAmax(amax: number, qmax = WEIGHT_QMAX): QParams {
  if (!(amax >= 0)) badArgument('amax', 'a finite number >= 0', amax);
  if (!(Number.isInteger(qmax) && qmax >= 1 && qmax <= 127)) badArgument('qmax', 'an integer in [1, 127]', qmax);
  const { scale } = computeScaleZeroPoint(-amax, amax, -qmax, qmax, true);
  return { dtype: 'int8', scale, zeroPoint: 0, qmin: -qmax, qmax };
}

/**
 * Quantize one value: roundHalfEven(float32(x / scale)) + zeroPoint, saturated to [qmin, qmax]. That is
 * the parameters' range, not the type's: symmetric int8 never gives -128 here (how weights are stored),
 * where ONNX QuantizeLinear saturates an activation at -128.
 */
export function quantizeValue(x: number, qp: QParams): number {
  const q = roundHalfEven(Math.fround(x / qp.scale)) + qp.zeroPoint;
  if (q !== q) return qp.zeroPoint; // NaN input: ONNX leaves it undefined; map to real 0
  return q < qp.qmin ? qp.qmin : q > qp.qmax ? qp.qmax : q;
}

/** QuantizeLinear over an array: Uint8Array for uint8 parameters, Int8Array for int8. */
export function quantizeLinear(x: ArrayLike<number>, qp: QParams): Uint8Array | Int8Array {
  const out = qp.dtype === 'uint8' ? new Uint8Array(x.length) : new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = quantizeValue(x[i], qp);
  return out;
}

/** DequantizeLinear: float32((q - zeroPoint) * scale). */
export function dequantizeLinear(q: ArrayLike<number>, scale: number, zeroPoint = 0): Float32Array {
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = (q[i] - zeroPoint) * scale;
  return out;
}

/**
 * Quantize then dequantize: the values the quantized graph sees in place of `x` (within [qmin, qmax];
 * a symmetric int8 activation below -127.5 x scale reads -128 x scale in onnxruntime, -127 x scale here).
 */
export function fakeQuantize(x: ArrayLike<number>, qp: QParams): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (quantizeValue(x[i], qp) - qp.zeroPoint) * qp.scale;
  return out;
}

/** Per-channel symmetric int8 weights: `data` has the layout of the float weights. */
export interface PerChannelWeights {
  dims: number[];
  axis: number;
  /** One float32 scale per channel along `axis`. */
  scales: Float32Array;
  /** All zero (symmetric), one per channel: the DequantizeLinear zero-point initializer. */
  zeroPoints: Int8Array;
  data: Int8Array;
}

/** Channel count along `axis` and the stride of one step along it (elements per inner block). */
function channelLayout(length: number, dims: readonly number[], axis: number): { channels: number; inner: number } {
  const total = dims.reduce((a, b) => a * b, 1);
  if (total !== length) badArgument('weight dims', `dims whose product is ${length}`, `[${dims.join(', ')}]`);
  if (!Number.isInteger(axis) || axis < 0 || axis >= dims.length) badArgument('axis', `an integer in [0, ${dims.length - 1}]`, axis);
  return { channels: dims[axis], inner: dims.slice(axis + 1).reduce((a, b) => a * b, 1) };
}

/**
 * Symmetric int8 per-channel weight quantization along `axis` (0 for Conv [M, C/g, kH, kW] and
 * Gemm with transB; 1 for a MatMul weight [K, N]). Each channel's scale is its own amax/127 (scale 1
 * for an all-zero channel), unless `scales` is given (e.g. after `adjustWeightScalesForBias`).
 */
export function quantizeWeightsPerChannel(
  weights: Float32Array, dims: readonly number[], axis: number, scales?: ArrayLike<number>, qmax = WEIGHT_QMAX,
): PerChannelWeights {
  const { channels, inner } = channelLayout(weights.length, dims, axis);
  // a NaN weight became int8 0 and an infinite one failed as a "quantization range": the float model
  // computes NaN with either, so the quantized one must not quietly compute something else
  const bad = firstNonFinite(weights);
  if (bad >= 0) badArgument('weights', 'finite values', `${weights[bad]} at index ${bad} (channel ${Math.floor(bad / inner) % channels})`);
  const s = new Float32Array(channels);
  if (scales) {
    if (scales.length !== channels) badArgument('scales', `${channels} per-channel scales`, `${scales.length}`);
    for (let c = 0; c < channels; c++) {
      if (!(scales[c] >= FLOAT32_TINY) || !Number.isFinite(scales[c])) badArgument(`scales[${c}]`, 'a normal positive float32', scales[c]);
      s[c] = scales[c];
    }
  } else {
    const amax = new Float64Array(channels);
    for (let i = 0; i < weights.length; i++) {
      const c = Math.floor(i / inner) % channels;
      const a = Math.abs(weights[i]);
      if (a > amax[c]) amax[c] = a;
    }
    for (let c = 0; c < channels; c++) s[c] = symmetricInt8FromAmax(amax[c], qmax).scale;
  }
  const data = new Int8Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const q = roundHalfEven(Math.fround(weights[i] / s[c]));
    data[i] = q < -qmax ? -qmax : q > qmax ? qmax : q;
  }
  return { dims: [...dims], axis, scales: s, zeroPoints: new Int8Array(channels), data };
}

/** Index of the first NaN or infinite value of `x`, or -1. */
export function firstNonFinite(x: ArrayLike<number>): number {
  for (let i = 0; i < x.length; i++) if (x[i] - x[i] !== 0) return i;
  return -1;
}

/** Dequantize per-channel weights back to float32 (for error measurement and tests). */
export function dequantizePerChannel(w: PerChannelWeights): Float32Array {
  const { channels, inner } = channelLayout(w.data.length, w.dims, w.axis);
  const out = new Float32Array(w.data.length);
  for (let i = 0; i < out.length; i++) out[i] = w.data[i] * w.scales[Math.floor(i / inner) % channels];
  return out;
}

/** An int32 bias and its scales (one per output channel, or one). */
export interface QuantizedBias {
  data: Int32Array;
  scales: Float32Array;
  /** How many values hit the int32 limits (see `adjustWeightScalesForBias`). */
  saturated: number;
}

/**
 * Quantize a bias to int32 with scale = float32(inputScale * weightScale) per output channel (a single
 * weight scale is broadcast), zero point 0: what QLinearConv/ConvInteger and TensorRT expect, so the
 * bias adds straight into the int32 accumulator. Values beyond int32 saturate and are counted.
 */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: ArrayLike<number> | number): QuantizedBias {
  const perChannel = typeof weightScales !== 'number';
  if (perChannel && weightScales.length !== bias.length) {
    badArgument('weight scales', `${bias.length} (one per bias value)`, weightScales.length);
  }
  const bad = firstNonFinite(bias);
  if (bad >= 0) badArgument('bias', 'finite values', `${bias[bad]} at index ${bad}`);
  const scales = new Float32Array(perChannel ? bias.length : 1);
  for (let c = 0; c < scales.length; c++) {
    const ws = perChannel ? weightScales[c] : weightScales;
    scales[c] = inputScale * ws;
    if (!(scales[c] >= FLOAT32_TINY) || !Number.isFinite(scales[c])) {
      badArgument('bias scale (input scale x weight scale)', 'a normal positive float32', `${inputScale} x ${ws}`);
    }
  }
  const data = new Int32Array(bias.length);
  let saturated = 0;
  for (let i = 0; i < bias.length; i++) {
    const q = roundHalfEven(Math.fround(bias[i] / scales[perChannel ? i : 0]));
    if (q < INT32_MIN || q > INT32_MAX) saturated++;
    data[i] = q !== q ? 0 : q < INT32_MIN ? INT32_MIN : q > INT32_MAX ? INT32_MAX : q;
  }
  return { data, scales, saturated };
}

/**
 * Raise weight scales where the bias would not fit int32 (|bias| / (sx * sw) > 2^31 - 1), which
 * happens for near-zero weight channels with a large bias. Returns new scales (unchanged where they
 * already fit); requantize the weights with them. ORT's quantizer makes a similar adjustment. We keep
 * 2x headroom (|bias| / (sx * sw) <= (2^31 - 1) / 2) so the accumulator has room for the products too.
 * A scale is also raised where the bias scale sx * sw would fall below float32's smallest normal
 * number (a tiny activation range times a tiny weight channel), which `quantizeBias` refuses: such a
 * channel's products are below 1e-38 anyway.
 */
export function adjustWeightScalesForBias(weightScales: ArrayLike<number>, bias: Float32Array, inputScale: number): Float32Array {
  if (weightScales.length !== bias.length) badArgument('weight scales', `${bias.length} (one per bias value)`, weightScales.length);
  const out = Float32Array.from(weightScales);
  const limit = INT32_MAX / 2; // headroom so the accumulator's sum of products does not overflow either
  const normal = FLOAT32_TINY / inputScale;
  for (let c = 0; c < out.length; c++) {
    const need = Math.max(Math.abs(bias[c]) / (inputScale * limit), normal);
    // a NaN or infinite bias is left for quantizeBias to refuse (an infinite scale failed elsewhere)
    if (need > out[c] && need < Infinity) out[c] = Math.fround(need * (1 + 2 ** -20));
  }
  return out;
}

/** How far an approximation is from a reference tensor. */
export interface TensorError {
  /** Mean squared error. */
  mse: number;
  maxAbsError: number;
  /** Signal-to-quantization-noise ratio, 10 log10(sum x^2 / sum (x - x')^2); Infinity when exact. */
  sqnrDb: number;
}

/** Error statistics of `approx` against `reference` (same length). */
export function compareTensors(reference: ArrayLike<number>, approx: ArrayLike<number>): TensorError {
  if (reference.length !== approx.length) badArgument('tensor lengths', `${reference.length}`, approx.length);
  let se = 0;
  let signal = 0;
  let maxAbsError = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = reference[i] - approx[i];
    se += d * d;
    signal += reference[i] * reference[i];
    if (Math.abs(d) > maxAbsError) maxAbsError = Math.abs(d);
  }
  const n = Math.max(reference.length, 1);
  const sqnrDb = se === 0 ? Infinity : signal === 0 ? -Infinity : 10 * Math.log10(signal / se);
  return { mse: se / n, maxAbsError, sqnrDb };
}

/**
 * The error of quantizing `x` with `qp` (the sensitivity measure of one tensor), plus the fraction of
 * values clipped by the range (saturated at qmin or qmax while outside the representable span).
 */
export function quantizationError(x: ArrayLike<number>, qp: QParams): TensorError & { clippedFraction: number } {
  const lo = (qp.qmin - qp.zeroPoint) * qp.scale;
  const hi = (qp.qmax - qp.zeroPoint) * qp.scale;
  let clipped = 0;
  for (let i = 0; i < x.length; i++) if (x[i] < lo - qp.scale / 2 || x[i] > hi + qp.scale / 2) clipped++;
  return { ...compareTensors(x, fakeQuantize(x, qp)), clippedFraction: x.length ? clipped / x.length : 0 };
}
