/** Ranges chosen from histograms that counted nothing, or everything in one bin. */
import { describe, expect, it } from 'vitest';
import { CalibrationCollector } from '../../pipeline/calibrate/collectors.js';
import { StreamingHistogram } from '../../pipeline/calibrate/histogram.js';
import { entropyRange, mseRange, percentileRange } from '../../pipeline/calibrate/thresholds.js';

describe('a histogram with a width but no counts', () => {
  const empty = { bins: 64, binWidth: 0.5, positive: [], negative: [] };
  it('gives the observed range for every method (percentile and entropy gave [-0, 0], so scale 1)', () => {
    expect(percentileRange(empty, -1, 2, 99.99)).toEqual([-1, 2]);
    expect(percentileRange(empty, -1, 2, 99.99, false)).toEqual([-1, 2]);
    expect(entropyRange(empty, -1, 2, 8)).toEqual([-1, 2]);
    expect(mseRange(empty, -1, 2).range).toEqual([-1, 2]);
  });
  it('from a collector fed exact min/max with an empty sample', () => {
    for (const method of ['percentile', 'entropy'] as const) {
      const c = new CalibrationCollector(method, { bins: 64, quantizedBins: 8 });
      c.updateSample('t', new Float32Array(0), -2, 5, 1000);
      expect(c.results().t!.range).toEqual([-2, 5]);
    }
  });
});

describe('all mass in one bin', () => {
  it('keeps the constant value for percentile 100 and small, entropy and mse', () => {
    const h = new StreamingHistogram(64);
    h.add(new Float32Array(100).fill(3));
    const d = h.toData();
    expect(percentileRange(d, 3, 3, 100)).toEqual([3, 3]);
    expect(percentileRange(d, 3, 3, 0.001, false)).toEqual([3, 3]);
    expect(entropyRange(d, 3, 3, 8)).toEqual([3, 3]);
    expect(mseRange(d, 3, 3).range).toEqual([3, 3]);
  });
});
