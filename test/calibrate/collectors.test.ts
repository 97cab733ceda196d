import { describe, expect, it } from 'vitest';
import {
  COLLECTORS, CalibrationCollector, type CalibrationMethod, DEFAULT_COLLECTOR_SETTINGS, checkMethod, resolveSettings,
  rethreshold,
} from '../../pipeline/calibrate/collectors.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { batches, gaussian } from './random.js';

const METHODS = Object.keys(COLLECTORS) as CalibrationMethod[];

function collect(method: CalibrationMethod, parts: Float32Array[], settings = {}) {
  const c = new CalibrationCollector(method, settings);
  for (const p of parts) c.update('t', p);
  return c.results().t;
}

describe('collector registry', () => {
  it('has exactly minmax, percentile, entropy and mse, each with a description', () => {
    expect(METHODS.sort()).toEqual(['entropy', 'minmax', 'mse', 'percentile']);
    for (const m of METHODS) {
      expect(COLLECTORS[m].method).toBe(m);
      expect(COLLECTORS[m].description.length).toBeGreaterThan(10);
    }
  });

  it('refuses an unknown method and bad settings with named argument errors', () => {
    expect(() => checkMethod('kl')).toThrow(/one of minmax, percentile, entropy, mse/);
    expect(() => resolveSettings({ percentile: 0 })).toThrow(/percentile/);
    expect(() => resolveSettings({ bins: 1001 })).toThrow(/histogram bins/);
    expect(() => resolveSettings({ quantizedBins: 1 })).toThrow(/quantizedBins/);
    expect(() => resolveSettings({ entropyStride: 0 })).toThrow(/entropyStride/);
    try { resolveSettings({ percentile: 120 }); } catch (e) { expect(isFaceoptError(e, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true); }
  });

  it('defaults follow ORT/TensorRT: percentile 99.999, 128 levels', () => {
    expect(DEFAULT_COLLECTOR_SETTINGS.percentile).toBe(99.999);
    expect(DEFAULT_COLLECTOR_SETTINGS.quantizedBins).toBe(128);
    expect(DEFAULT_COLLECTOR_SETTINGS.bins).toBe(4096);
  });
});

describe('minmax', () => {
  it('tracks the running min and max over batches without a histogram', () => {
    const r = collect('minmax', [Float32Array.from([1, 2, 3]), Float32Array.from([-4, 0.5]), Float32Array.from([7])]);
    expect(r).toEqual({ method: 'minmax', min: -4, max: 7, count: 6, nonFinite: 0, range: [-4, 7] });
  });

  it('skips NaN and ±Infinity and counts them', () => {
    const r = collect('minmax', [Float32Array.from([NaN, 1, Infinity]), Float32Array.from([-Infinity, -2])]);
    expect([r.min, r.max, r.count, r.nonFinite]).toEqual([-2, 1, 2, 3]);
  });

  it('gives a zero range for a tensor that never held a finite value', () => {
    const r = collect('minmax', [Float32Array.from([NaN])]);
    expect([r.min, r.max, r.range]).toEqual([0, 0, [0, 0]]);
  });

  it('keeps a histogram when asked, so the stats can be re-thresholded later', () => {
    const r = collect('minmax', [gaussian(1000)], { minmaxHistogram: true });
    expect(r.histogram?.binWidth).toBeGreaterThan(0);
  });
});

describe('percentile', () => {
  it('clips a rare large value at 99.9 % but not at 100 %', () => {
    const data = Float32Array.from({ length: 10_000 }, (_, i) => (i % 100) / 100); // 0..0.99
    data[123] = 50;
    const clipped = collect('percentile', [data], { percentile: 99.9 });
    expect(clipped.range[0]).toBe(0);
    expect(clipped.range[1]).toBeLessThan(1.1);
    expect(clipped.range[1]).toBeGreaterThanOrEqual(0.99);
    const all = collect('percentile', [data], { percentile: 100 });
    expect(all.range).toEqual([0, 50]);
  });
});

describe('entropy', () => {
  it('clips far outliers of a Gaussian and keeps its bulk', () => {
    const data = gaussian(100_000, 1, 21);
    data[0] = 80;
    data[1] = -75;
    const r = collect('entropy', [data]);
    expect(r.max).toBe(80);
    expect(r.range[1]).toBeGreaterThan(3);
    expect(r.range[1]).toBeLessThan(7);
    expect(r.range[0]).toBe(-r.range[1]);
  });

  it('gives [0, T] for a non-negative (ReLU) tensor', () => {
    const data = gaussian(50_000, 1, 4).map((v) => Math.max(v, 0));
    const r = collect('entropy', [data]);
    expect(r.range[0]).toBe(0);
    expect(r.range[1]).toBeGreaterThan(2);
    expect(r.range[1]).toBeLessThanOrEqual(r.max);
  });

  it('handles an all-zero tensor: zero range, no NaN', () => {
    const r = collect('entropy', [new Float32Array(100), new Float32Array(50)]);
    expect(r.range).toEqual([0, 0]);
    expect(r.histogram).toEqual({ bins: 4096, binWidth: 0, positive: [150], negative: [] });
  });
});

describe('streaming', () => {
  const data = gaussian(60_000, 0.5, 99);
  data[59_000] = 40; // the range grows in a late batch
  data[100] = -3;

  it.each(METHODS)('%s: batches give exactly the one-shot result', (method) => {
    const oneShot = collect(method, [data]);
    const streamed = collect(method, batches(data, [1, 17, 500, 4000, 20_000]));
    expect(streamed).toEqual(oneShot);
  });

  it('collects many tensors independently, in first-seen order, with any names', () => {
    const c = new CalibrationCollector('minmax');
    c.update('b', Float32Array.from([1]));
    c.update('__proto__', Float32Array.from([2]));
    c.update('a', Float32Array.from([3]));
    c.update('b', Float32Array.from([-1]));
    expect(c.tensorNames()).toEqual(['b', '__proto__', 'a']);
    const r = c.results();
    expect(Object.keys(r)).toEqual(['b', '__proto__', 'a']);
    expect(r.b.range).toEqual([-1, 1]);
    expect(r['__proto__'].range).toEqual([2, 2]);
  });
});

describe('rethreshold', () => {
  it('re-derives a percentile range from entropy stats equal to collecting with percentile', () => {
    const data = gaussian(20_000, 1, 8);
    const viaEntropy = collect('entropy', [data]);
    const direct = collect('percentile', [data], { percentile: 99.9 });
    expect(rethreshold(viaEntropy, 'percentile', { percentile: 99.9 })).toEqual(direct);
  });

  it('refuses a histogram method on minmax stats collected without a histogram', () => {
    const r = collect('minmax', [gaussian(100)]);
    expect(() => rethreshold(r, 'entropy')).toThrow(/without one/);
    expect(rethreshold(r, 'minmax')).toEqual(r);
  });
});

describe('edge cases found by mutation testing', () => {
  it('refuses more quantized levels than half the bins, and a sample stride below 1', () => {
    expect(() => resolveSettings({ bins: 16, quantizedBins: 9 })).toThrow(/quantizedBins/);
    expect(resolveSettings({ bins: 16, quantizedBins: 8 }).quantizedBins).toBe(8);
    expect(() => resolveSettings({ sampleStride: 0 })).toThrow(/sampleStride/);
  });

  it('needsHistogram: always for histogram methods, for minmax only when asked', () => {
    expect(new CalibrationCollector('minmax').needsHistogram).toBe(false);
    expect(new CalibrationCollector('minmax', { minmaxHistogram: true }).needsHistogram).toBe(true);
    expect(new CalibrationCollector('entropy').needsHistogram).toBe(true);
  });

  it('percentile honours symmetricPercentile: false (a cut per side)', () => {
    const vals = Float32Array.from({ length: 1000 }, (_, i) => i - 500); // -500..499, width 0.25 at 2048 bins
    const r = collect('percentile', [vals], { percentile: 99, symmetricPercentile: false, bins: 2048 });
    expect(r.range).toEqual([-496.25, 494.25]);
  });

  it('entropy honours entropyStride', () => {
    const data = gaussian(20_000, 1, 13);
    data[0] = 40;
    const strided = collect('entropy', [data], { entropyStride: 97 });
    const every = collect('entropy', [data]);
    expect(strided.range).not.toEqual(every.range);
    expect(strided.range).toEqual(rethreshold(every, 'entropy', { entropyStride: 97 }).range);
  });

  it('updateSample with a non-finite batch min/max counts and skips the non-finite values', () => {
    const c = new CalibrationCollector('minmax');
    c.updateSample('t', Float32Array.from([1, -Infinity, -2]), -Infinity, 1, 3);
    expect(c.results().t).toMatchObject({ min: -2, max: 1, count: 2, nonFinite: 1, range: [-2, 1] });
  });

  it('updateSample of an empty batch (count 0) leaves min and max alone', () => {
    const c = new CalibrationCollector('minmax');
    c.update('t', Float32Array.from([1, 2]));
    c.updateSample('t', new Float32Array(0), 0, 0, 0);
    expect(c.results().t).toMatchObject({ min: 1, max: 2, count: 2 });
  });

  it('updateSample keeps NaN out of the histogram even when the given min/max are finite', () => {
    const c = new CalibrationCollector('percentile', { bins: 16, quantizedBins: 8 });
    c.updateSample('t', Float32Array.from([1, NaN, -1]), -1, 1, 3);
    // width 2^-3 (1 < 16 x 0.125): 1 and -1 in bin 8 of their sign, nothing else
    expect(c.results().t!.histogram).toEqual({ bins: 16, binWidth: 0.125, positive: [0, 0, 0, 0, 0, 0, 0, 0, 1], negative: [0, 0, 0, 0, 0, 0, 0, 0, 1] });
  });
});
