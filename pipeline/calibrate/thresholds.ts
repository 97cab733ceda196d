/**
 * Range choice from a histogram (pure): the percentile cut of ONNX Runtime's HistogramCollector and
 * the KL-divergence (entropy) threshold search TensorRT documents (GTC 2017, "8-bit inference with
 * TensorRT") as implemented by NVIDIA's pytorch-quantization. Both take the serialised
 * `HistogramData`, so a saved stats artifact can be re-thresholded without re-running the model.
 */
import { FaceoptError } from '../errors.js';
import { type HistogramData, magnitudeCounts, signedCounts } from './histogram.js';

/** ORT's default percentile. */
export const DEFAULT_PERCENTILE = 99.999;
/** 128 quantized levels: the magnitudes of symmetric int8 (0..127), as TensorRT and ORT use. */
export const DEFAULT_QUANTIZED_BINS = 128;

/** Throw unless 0 < percentile <= 100. */
export function checkPercentile(p: number): number {
  if (typeof p !== 'number' || !(p > 0 && p <= 100)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a number in (0, 100]', name: 'percentile', received: String(p) });
  }
  return p;
}

/** Whether the histogram counted no value at all. */
function isEmpty(h: HistogramData): boolean {
  return !h.positive.some((c) => c > 0) && !h.negative.some((c) => c > 0);
}

/** Index of the first bin whose cumulative count reaches `target` (counts are exact integers). */
function firstBinReaching(counts: Float64Array, target: number): number {
  let cum = 0;
  for (let i = 0; i < counts.length; i++) {
    cum += counts[i];
    if (cum >= target) return i;
  }
  return counts.length - 1;
}

/**
 * The percentile range, following ORT's HistogramCollector.compute_percentile:
 * - `symmetric` (ORT's default for percentile): on the |x| histogram, T is the edge where the
 *   cumulative share reaches `percentile`%; the range is [-T, T] clipped to the observed [min, max].
 * - asymmetric: on the signed histogram, cut (100 - p)/2 % from each side.
 * Deviation from ORT, on purpose: ORT returns the *lower* edge of the bin holding the percentile, so at
 * 100% it clips the maximum; we return the edge on the far side of that bin (upper edge on the right,
 * lower edge on the left), so at least p% of the values lie inside the range and 100% gives [min, max].
 */
export function percentileRange(
  h: HistogramData, min: number, max: number, percentile: number, symmetric = true,
): [number, number] {
  checkPercentile(percentile);
  // no counts (a histogram fed only empty samples): nothing to cut, as mseRange (it gave [-0, 0])
  if (h.binWidth === 0 || isEmpty(h)) return [min, max];
  let lo: number;
  let hi: number;
  if (symmetric) {
    const counts = magnitudeCounts(h);
    const total = counts.reduce((a, b) => a + b, 0);
    const t = (firstBinReaching(counts, (percentile / 100) * total) + 1) * h.binWidth;
    lo = -t; hi = t;
  } else {
    const s = signedCounts(h);
    const total = s.counts.reduce((a, b) => a + b, 0);
    const cut = ((100 - percentile) / 200) * total;
    lo = s.lo + firstBinReaching(s.counts, cut) * s.binWidth;
    hi = s.lo + (firstBinReaching(s.counts, total - cut) + 1) * s.binWidth;
  }
  return [Math.max(lo, min), Math.min(hi, max)];
}

/** Result of the KL search: the chosen |x| threshold and where it was found. */
export interface EntropySearch {
  /** Chosen amax: the upper edge of the last bin kept, `bins * binWidth`. */
  threshold: number;
  /** Number of histogram bins kept below the threshold. */
  bins: number;
  /** KL divergence at the optimum (natural log). */
  divergence: number;
}

/**
 * KL-divergence threshold search over an |x| histogram (TensorRT's entropy calibration, with the
 * details of NVIDIA pytorch-quantization's `_compute_amax_entropy`):
 * - bin 0 is replaced by bin 1's count first, so a spike of exact zeros (ReLU outputs) does not drag
 *   the threshold down;
 * - for every candidate `i` from `quantizedBins` to the last non-empty bin (step `stride`, the last
 *   bin always tried): P = bins[0..i-1] with every count beyond folded into P[i-1]; Q = bins[0..i-1]
 *   merged into `quantizedBins` levels (bin j goes to level floor(j*Q/i), the linspace grouping) and
 *   spread back evenly over the bins that were non-empty, empty bins staying empty;
 * - both normalised; KL(P||Q) = sum p ln(p/q); a candidate where P has mass Q lacks (the clipped
 *   outliers land in an empty last bin) is infinite and never chosen;
 * - the smallest divergence wins, ties (within 1e-12) going to the larger threshold; threshold =
 *   i * binWidth (the upper edge of the last kept bin, as pytorch-quantization and ORT; TensorRT's
 *   slides say (i+0.5)).
 * Histograms with no more than `quantizedBins` bins are kept whole (nothing to search).
 * Not done, on purpose: ORT's eps-smoothing of P and Q (it keeps "infinite" candidates finite, and
 * ORT's expansion also drops the remainder bins of the last level); TensorRT/NVIDIA do not smooth.
 * Cost: KL is evaluated per level from prefix sums of c, c ln c and non-empty counts, so one search is
 * O(bins x quantizedBins) (about 10 ms for 4096 bins), not O(bins^2).
 */
export function entropyThreshold(
  counts: ArrayLike<number>, binWidth: number, quantizedBins = DEFAULT_QUANTIZED_BINS, stride = 1,
): EntropySearch {
  if (!Number.isInteger(quantizedBins) || quantizedBins < 2) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'an integer >= 2', name: 'quantized bins', received: String(quantizedBins) });
  }
  if (!Number.isInteger(stride) || stride < 1) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'an integer >= 1', name: 'entropy stride', received: String(stride) });
  }
  let n = counts.length;
  while (n > 0 && counts[n - 1] === 0) n--;
  if (n <= quantizedBins) return { threshold: n * binWidth, bins: n, divergence: 0 };

  const c = Float64Array.from({ length: n }, (_, j) => counts[j]);
  c[0] = c[1];
  // Prefix sums make each candidate O(quantizedBins) instead of O(i): counts, c*ln(c), non-empty bins.
  const C = new Float64Array(n + 1);
  const L = new Float64Array(n + 1);
  const Z = new Float64Array(n + 1);
  for (let j = 0; j < n; j++) {
    C[j + 1] = C[j] + c[j];
    L[j + 1] = L[j] + (c[j] > 0 ? c[j] * Math.log(c[j]) : 0);
    Z[j + 1] = Z[j] + (c[j] > 0 ? 1 : 0);
  }
  const total = C[n];
  const Q = quantizedBins;
  let best: EntropySearch = { threshold: n * binWidth, bins: n, divergence: Infinity };
  for (let i = Q; i <= n; i = i === n ? n + 1 : Math.min(i + stride, n)) {
    const outliers = total - C[i];
    if (outliers > 0 && c[i - 1] === 0) continue; // P has mass where Q is empty: KL is infinite
    // sum p ln p, with p = c / total and the outliers folded into bin i-1
    const last = c[i - 1] + outliers;
    const pLogP = (L[i - 1] + (last > 0 ? last * Math.log(last) : 0)) / total - Math.log(total);
    // sum over levels of P(level) * ln q, q = (level sum / non-empty bins in it) / kept total
    let pLogQ = 0;
    for (let k = 0; k < Q; k++) {
      const a = Math.ceil((k * i) / Q);
      const b = Math.ceil(((k + 1) * i) / Q);
      const nz = Z[b] - Z[a];
      if (nz === 0) continue;
      const s = C[b] - C[a];
      const mass = (s + (b === i ? outliers : 0)) / total;
      pLogQ += mass * Math.log(s / nz / C[i]);
    }
    const kl = Math.max(0, pLogP - pLogQ);
    // ties (within rounding) go to the larger threshold, as pytorch-quantization's last argmin
    if (kl <= best.divergence + 1e-12) best = { threshold: i * binWidth, bins: i, divergence: kl };
  }
  return best;
}

/**
 * The entropy range: T from `entropyThreshold` on the |x| histogram, then [-T, T] clipped to the
 * observed [min, max] (as ORT clips its entropy thresholds), so a non-negative tensor gets [0, T].
 */
export function entropyRange(
  h: HistogramData, min: number, max: number, quantizedBins = DEFAULT_QUANTIZED_BINS, stride = 1,
): [number, number] {
  if (h.binWidth === 0 || isEmpty(h)) return [min, max];
  const { threshold } = entropyThreshold(magnitudeCounts(h), h.binWidth, quantizedBins, stride);
  return [Math.max(-threshold, min), Math.min(threshold, max)];
}

/** Result of the MSE range search. */
export interface MseSearch {
  range: [number, number];
  /** Expected squared error per value (clipping + rounding) at the chosen range. */
  error: number;
}

/**
 * The range whose uniform quantization grid (`levels` steps, 255 for uint8) minimises the expected
 * squared error over the signed histogram: rounding noise step^2/12 for values inside, (x - edge)^2
 * for values clipped outside (values taken at their bin centres). Candidates are `steps` evenly spaced
 * fractions of the observed min and of the observed max (a 2-D grid, 129 x 129 by default); prefix
 * sums of c, c*x and c*x^2 make each candidate O(1). Zero is always inside the grid (lo <= 0 <= hi),
 * as the zero point needs. This is the "MSE" calibration of NVIDIA's pytorch-quantization and
 * Qualcomm AIMET's tf_enhanced family, written from the definition above.
 */
export function mseRange(h: HistogramData, min: number, max: number, levels = 255, steps = 128): MseSearch {
  if (!Number.isInteger(levels) || levels < 1) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'an integer >= 1', name: 'mse levels', received: String(levels) });
  }
  if (h.binWidth === 0 || !(max > min)) return { range: [min, max], error: 0 };
  const s = signedCounts(h);
  const n = s.counts.length;
  const w = s.binWidth;
  const C = new Float64Array(n + 1);
  const X = new Float64Array(n + 1);
  const X2 = new Float64Array(n + 1);
  for (let j = 0; j < n; j++) {
    const c = s.counts[j];
    const x = s.lo + (j + 0.5) * w;
    C[j + 1] = C[j] + c; X[j + 1] = X[j] + c * x; X2[j + 1] = X2[j] + c * x * x;
  }
  const total = C[n];
  if (total === 0) return { range: [min, max], error: 0 };
  // first bin whose centre is >= v (bins before it are below v)
  const split = (v: number) => Math.min(n, Math.max(0, Math.ceil((v - s.lo) / w - 0.5)));
  const lo0 = Math.min(0, min);
  const hi0 = Math.max(0, max);
  let best: MseSearch = { range: [min, max], error: Infinity };
  for (let a = 0; a <= steps; a++) {
    const lo = lo0 * (a / steps);
    const ia = split(lo);
    // values below lo clip to lo: sum c (x - lo)^2
    const below = X2[ia] - 2 * lo * X[ia] + lo * lo * C[ia];
    if (below / total >= best.error) continue;
    for (let b = 1; b <= steps; b++) {
      const hi = hi0 * (b / steps);
      if (!(hi > lo)) continue;
      const ib = Math.max(ia, split(hi));
      const above = (X2[n] - X2[ib]) - 2 * hi * (X[n] - X[ib]) + hi * hi * (C[n] - C[ib]);
      const step = (hi - lo) / levels;
      const err = (below + above + (C[ib] - C[ia]) * (step * step) / 12) / total;
      if (err < best.error) best = { range: [lo, hi], error: err };
    }
  }
  return { range: [Math.max(best.range[0], min), Math.min(best.range[1], max)], error: best.error };
}
