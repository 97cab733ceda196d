import { describe, expect, it } from 'vitest';
import { StreamingHistogram, magnitudeCounts } from '../../pipeline/calibrate/histogram.js';
import { entropyRange, entropyThreshold, mseRange, percentileRange } from '../../pipeline/calibrate/thresholds.js';
import { gaussian, mulberry32 } from './random.js';

function histOf(values: ArrayLike<number>, bins?: number) {
  const h = new StreamingHistogram(bins);
  h.add(Float32Array.from(values));
  return h.toData();
}

/**
 * Independent reference for the KL search, written the way NVIDIA pytorch-quantization's
 * `_compute_amax_entropy` reads (linspace + digitize, zero bins masked, scipy-style entropy), with
 * plain arrays and no prefix sums, to cross-check the optimised implementation.
 */
function referenceEntropy(hist: number[], nbins: number): number {
  const bins = hist.slice();
  bins[0] = bins[1];
  let best = Infinity;
  let bestI = -1;
  for (let i = nbins; i <= bins.length; i++) {
    const space = Array.from({ length: nbins + 1 }, (_, k) => (k * i) / nbins);
    const digit = Array.from({ length: i }, (_, j) => {
      let k = 0;
      while (k + 1 < space.length && space[k + 1] <= j) k++;
      return bins[j] === 0 ? -1 : k;
    });
    const sums = new Array(nbins).fill(0);
    const cnt = new Array(nbins).fill(0);
    digit.forEach((k, j) => { if (k >= 0) { sums[k] += bins[j]; cnt[k]++; } });
    const q = digit.map((k) => (k >= 0 ? sums[k] / cnt[k] : 0));
    const p = bins.slice(0, i);
    p[i - 1] += bins.slice(i).reduce((a, b) => a + b, 0);
    const ps = p.reduce((a, b) => a + b, 0);
    const qs = q.reduce((a, b) => a + b, 0);
    let kl = 0;
    for (let j = 0; j < i; j++) {
      if (p[j] === 0) continue;
      if (q[j] === 0) { kl = Infinity; break; }
      kl += (p[j] / ps) * Math.log(p[j] / ps / (q[j] / qs));
    }
    if (kl <= best) { best = kl; bestI = i; }
  }
  return bestI;
}

describe('percentileRange (ORT HistogramCollector semantics)', () => {
  const ints = Array.from({ length: 1000 }, (_, i) => i); // 0..999, width 0.5

  it('symmetric: the |x| edge holding the percentile, clipped to [min, max]', () => {
    const h = histOf(ints, 2048);
    expect(h.binWidth).toBe(0.5);
    // the 990th value is 989, in bin [989, 989.5): upper edge 989.5; min 0 clips the left side
    expect(percentileRange(h, 0, 999, 99)).toEqual([0, 989.5]);
    expect(percentileRange(h, 0, 999, 100)).toEqual([0, 999]);
    expect(percentileRange(h, 0, 999, 99.999)).toEqual([0, 999]);
  });

  it('asymmetric: cuts (100 - p)/2 % from each side of the signed histogram', () => {
    const vals = Array.from({ length: 1000 }, (_, i) => i - 500); // -500..499, width 0.25
    const h = histOf(vals, 2048);
    expect(h.binWidth).toBe(0.25);
    // 5 values cut per side: left keeps -496 (bin (-496.25, -496]); right keeps 494 (bin [494, 494.25))
    expect(percentileRange(h, -500, 499, 99, false)).toEqual([-496.25, 494.25]);
  });

  it('symmetric on signed data gives [-T, T]', () => {
    const vals = Array.from({ length: 1000 }, (_, i) => (i % 2 ? -1 : 1) * (i + 1)); // ±1..±1000
    const h = histOf(vals);
    const [lo, hi] = percentileRange(h, -1000, 999, 90);
    expect(hi).toBe(-lo);
    expect(hi).toBeGreaterThanOrEqual(900);
    expect(hi).toBeLessThanOrEqual(901);
  });

  it('refuses a percentile outside (0, 100]', () => {
    const h = histOf(ints);
    expect(() => percentileRange(h, 0, 999, 0)).toThrow(/percentile/);
    expect(() => percentileRange(h, 0, 999, 101)).toThrow(/\(0, 100\]/);
  });
});

describe('entropyThreshold (TensorRT KL search)', () => {
  it('matches a hand-computed search on a tiny histogram', () => {
    // counts [8,6,4,2,0,0,0,1], 2 levels. After bin0 := bin1: [6,6,4,2,0,0,0,1].
    // KL(i=2) = 0.06949, KL(i=3) = 0.03432, KL(i=4) = 0.00650, i=5..7 infinite (the outlier would
    // land in an empty bin), KL(i=8) = 0.07154 -> keep 4 bins.
    const r = entropyThreshold([8, 6, 4, 2, 0, 0, 0, 1], 0.5, 2);
    expect(r.bins).toBe(4);
    expect(r.threshold).toBe(2);
    expect(r.divergence).toBeCloseTo(0.006497, 5);
  });

  it('keeps the whole range of a uniform histogram (KL 0 at the max)', () => {
    const r = entropyThreshold(new Array(2048).fill(1000), 1 / 64);
    expect(r.bins).toBe(2048);
    expect(r.threshold).toBe(32);
    expect(r.divergence).toBeCloseTo(0, 12);
  });

  it('puts a Gaussian with a few far outliers well below the max, at the reference optimum', () => {
    const data = gaussian(200_000, 1, 11);
    for (let k = 0; k < 5; k++) data[k * 1000] = (k % 2 ? -1 : 1) * (60 + k); // |x| up to 64
    const h = histOf(data);
    expect(h.binWidth).toBe(1 / 32); // 4096 bins: the outliers at 64 leave 2048 bins over [0, 64]
    const counts = Array.from(magnitudeCounts(h));
    const r = entropyThreshold(counts, h.binWidth);
    expect(r.threshold).toBeGreaterThan(3); // keeps the bulk of N(0, 1)
    expect(r.threshold).toBeLessThan(6); // ... and clips the outliers at 60+
    expect(r.bins).toBe(referenceEntropy(counts, 128));
    const [lo, hi] = entropyRange(h, -63, 64);
    expect(hi).toBe(r.threshold);
    expect(lo).toBe(-r.threshold);
  });

  it('agrees with the reference on a skewed (ReLU-like) histogram', () => {
    const g = gaussian(50_000, 2, 5);
    const data = g.map((v) => (v > 0 ? v * v : 0));
    const h = histOf(data, 512);
    const counts = Array.from({ length: h.positive.length }, (_, i) => h.positive[i]);
    const r = entropyThreshold(counts, h.binWidth);
    expect(r.bins).toBe(referenceEntropy(counts, 128));
    expect(r.threshold).toBeLessThan(Math.max(...data));
    // non-negative tensor: range [0, T]
    expect(entropyRange(h, 0, Math.max(...data))).toEqual([0, r.threshold]);
  });

  it('keeps histograms no wider than the quantized levels whole', () => {
    expect(entropyThreshold([5, 1, 2], 0.25)).toEqual({ threshold: 0.75, bins: 3, divergence: 0 });
  });

  it('tries the last bin even with a stride', () => {
    const r = entropyThreshold(new Array(300).fill(7), 1, 128, 50);
    expect(r.bins).toBe(300);
  });
});

/** Measured mean squared error of uint8 quantize -> dequantize of `values` over [lo, hi] (zero exact). */
function simulatedMse(values: Float32Array, lo: number, hi: number): number {
  lo = Math.min(lo, 0); hi = Math.max(hi, 0);
  const scale = (hi - lo) / 255;
  const zp = Math.round(-lo / scale);
  let e = 0;
  for (const v of values) {
    const q = Math.min(255, Math.max(0, Math.round(v / scale) + zp));
    e += ((q - zp) * scale - v) ** 2;
  }
  return e / values.length;
}

describe('mseRange (expected squared error on the uint8 grid)', () => {
  it('keeps the whole range of uniform data (clipping costs more than rounding)', () => {
    const u = mulberryUniform(20000, 3);
    const h = histOf(u);
    const r = mseRange(h, 0, 1);
    expect(r.range[0]).toBe(0);
    expect(r.range[1]).toBeGreaterThan(0.97);
  });

  it('clips a heavy tail and beats min/max and the percentiles on the real quantization error', () => {
    // heavy-tailed like post-conv activations: cubes of a Gaussian
    const g = gaussian(50000, 1, 11).map((v) => v * v * v);
    let min = Infinity; let max = -Infinity;
    for (const v of g) { min = Math.min(min, v); max = Math.max(max, v); }
    const h = histOf(g);
    const r = mseRange(h, min, max);
    expect(r.range[1]).toBeLessThan(max);
    expect(r.range[0]).toBeGreaterThan(min);
    const mse = simulatedMse(g, ...r.range);
    expect(mse).toBeLessThan(simulatedMse(g, min, max));
    for (const p of [99.9, 99.99, 99.999]) {
      const [plo, phi] = percentileRange(h, min, max, p);
      expect(mse).toBeLessThanOrEqual(simulatedMse(g, plo, phi) * 1.01);
    }
    // the model's rounding noise (step^2/12) over-estimates values packed near the exact zero: within 2x
    expect(r.error / mse).toBeGreaterThan(0.5);
    expect(r.error / mse).toBeLessThan(2);
  });

  it('keeps a lone far outlier when clipping it would cost more than the coarser grid', () => {
    const g = gaussian(50000, 1, 11);
    g[7] = 60; // clipping to ~4 costs 56^2/50000 per value, far above the rounding noise of [-4, 60]
    const h = histOf(g);
    expect(mseRange(h, Math.min(...g), 60).range[1]).toBeGreaterThan(50);
  });

  it('returns the observed range for constant data and refuses a bad level count', () => {
    expect(mseRange(histOf([0, 0, 0]), 0, 0).range).toEqual([0, 0]);
    expect(() => mseRange(histOf([1, 2]), 1, 2, 0)).toThrow(/integer >= 1/);
  });
});

function mulberryUniform(n: number, seed: number): Float32Array {
  const u = mulberry32(seed);
  return Float32Array.from({ length: n }, () => u());
}

describe('edge cases found by mutation testing', () => {
  it('entropy: exact ties go to the larger threshold', () => {
    // counts [0, 0, 5, 0, 7], 2 levels. i = 3: P = Q = [0, 0, 1] (the outlier 7 folds into bin 2), KL 0;
    // i = 5: each level has one non-empty bin, so Q = P, KL 0; i = 2 and 4 end in an empty bin (infinite).
    const r = entropyThreshold([0, 0, 5, 0, 7], 1, 2);
    expect(r.bins).toBe(5);
    expect(r.threshold).toBe(5);
    expect(r.divergence).toBeCloseTo(0, 12);
    expect(referenceEntropy([0, 0, 5, 0, 7], 2)).toBe(5);
  });

  it('mse: hand-computed error with values at bin centres, clipped to the observed min', () => {
    // 4 values in bin [2, 3) (centre 2.5), observed range [2, 2.3], 1 level, 1 step: the only candidate
    // grid is [0, 2.3]; the bin centre 2.5 lies above 2.3, so all 4 values clip: 4 x 0.2^2 / 4 = 0.04
    const r = mseRange({ bins: 16, binWidth: 1, positive: [0, 0, 4], negative: [] }, 2, 2.3, 1, 1);
    expect(r.error).toBeCloseTo(0.04, 12);
    expect(r.range).toEqual([2, 2.3]); // the grid's lo 0 is clipped to the observed min 2
  });
});
