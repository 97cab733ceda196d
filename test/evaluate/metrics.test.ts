import { describe, expect, it } from 'vitest';
import {
  COSINE_HISTOGRAM_EDGES, cosine, cosineSummary, histogram, l2Normalize, latencySummary, mean, mulberry32, percentile, speedup, stdPopulation,
} from '../../pipeline/evaluate/metrics.js';
import { isFaceoptError } from '../../pipeline/errors.js';

describe('cosine and L2 normalisation', () => {
  it('matches hand-computed values', () => {
    expect(cosine([1, 0], [0, 1])).toBe(0);
    expect(cosine([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 15);
    expect(cosine([1, 2, 3], [-1, -2, -3])).toBeCloseTo(-1, 15);
    expect(cosine([1, 1], [1, 0])).toBeCloseTo(Math.SQRT1_2, 15);
    expect(cosine(new Float32Array([3, 4]), [4, 3])).toBeCloseTo(24 / 25, 7);
  });
  it('defines a zero vector as cosine 0, clamps rounding, and refuses length mismatches', () => {
    expect(cosine([0, 0], [1, 2])).toBe(0);
    expect(cosine([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])).toBeLessThanOrEqual(1);
    expect(Number.isNaN(cosine([NaN, 1], [1, 1]))).toBe(true);
    try {
      cosine([1, 2], [1]);
      expect.unreachable();
    } catch (e) {
      expect(isFaceoptError(e, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    }
  });
  it('normalises to unit length and leaves zero vectors alone', () => {
    expect(Array.from(l2Normalize([3, 4]))).toEqual([0.6, 0.8]);
    expect(Array.from(l2Normalize([0, 0, 0]))).toEqual([0, 0, 0]);
  });
});

describe('stats', () => {
  it('percentiles use numpy linear interpolation', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 95)).toBeCloseTo(3.85, 12); // np.percentile([1,2,3,4], 95)
    expect(percentile(Array.from({ length: 101 }, (_, i) => i + 1), 1)).toBe(2);
    expect(percentile([7], 1)).toBe(7);
  });
  it('mean and population std', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(stdPopulation([0.5, 0.5, 1, 1])).toBe(0.25);
    expect(() => mean([])).toThrow(/at least one value/);
  });
  it('histogram clamps out-of-range values into the end bins and closes the last bin', () => {
    const h = histogram([-5, 0, 0.5, 1, 1, 2, 9], [0, 1, 2]);
    expect(h.counts).toEqual([3, 4]);
    expect(() => histogram([1], [1, 1])).toThrow(/strictly increasing/);
  });
  it('the seeded PRNG is deterministic and in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(mean(xs)).toBeGreaterThan(0.45);
    expect(mean(xs)).toBeLessThan(0.55);
    expect(mulberry32(43)()).not.toBe(mulberry32(42)());
  });
});

describe('cosineSummary', () => {
  it('summarises a hand-made list, counting NaN as -1', () => {
    const s = cosineSummary([1, 0.999, 0.98, 0.96, NaN]);
    expect(s.count).toBe(5);
    expect(s.nonFinite).toBe(1);
    expect(s.min).toBe(-1);
    expect(s.max).toBe(1);
    expect(s.mean).toBeCloseTo((1 + 0.999 + 0.98 + 0.96 - 1) / 5, 12);
    expect(s.p1).toBeCloseTo(-1 + 0.04 * 1.96, 12); // rank 0.04 between -1 and 0.96
    const bin = (v: number): number => COSINE_HISTOGRAM_EDGES.filter((e) => e <= v).length - 1;
    expect(s.histogram.edges).toEqual(COSINE_HISTOGRAM_EDGES);
    const expected = new Array(COSINE_HISTOGRAM_EDGES.length - 1).fill(0);
    for (const v of [-1, 0.96, 0.98, 0.999]) expected[bin(v)]++;
    expected[expected.length - 1]++; // cosine 1 falls in the closed last bin
    expect(s.histogram.counts).toEqual(expected);
    expect(s.histogram.counts.reduce((a, b) => a + b, 0)).toBe(5);
  });
  it('a perfect variant has mean = min = 1', () => {
    const s = cosineSummary(new Array(50).fill(1));
    expect([s.mean, s.p1, s.min]).toEqual([1, 1, 1]);
    expect(s.histogram.counts.at(-1)).toBe(50);
  });
});

describe('latency', () => {
  it('p50/p95/mean from samples, and the speed-up from medians', () => {
    const l = latencySummary([40, 10, 100, 30, 20]);
    expect(l).toMatchObject({ samples: 5, meanMs: 40, p50Ms: 30, minMs: 10, maxMs: 100 });
    expect(l.p95Ms).toBeCloseTo(88, 10); // rank 3.8: 40 + 0.8 * (100 - 40)
    expect(speedup(l, latencySummary([10, 12, 14]))).toBeCloseTo(30 / 12, 12);
    expect(() => latencySummary([])).toThrow(/latency samples/);
    expect(() => latencySummary([1, -2])).toThrow(/latency sample 1/);
  });
});

describe('edge cases found by mutation testing', () => {
  it('cosine clamps a rounding overshoot to exactly ±1', () => {
    // unclamped, both give |cos| = 1.0000000000000002
    expect(cosine([0, 6.3], [0, 18.9])).toBe(1);
    expect(cosine([0, 6.3], [0, -18.9])).toBe(-1);
  });
  it('cosineSummary clamps cosines outside [-1, 1] before summarising', () => {
    const s = cosineSummary([1.0000000000000002, -1.5]);
    expect([s.min, s.max, s.mean, s.nonFinite]).toEqual([-1, 1, 0, 0]);
  });
  it('percentile 0 and 100 are the min and the max', () => {
    expect(percentile([3, 1, 2], 100)).toBe(3);
    expect(percentile([3, 1, 2], 0)).toBe(1);
  });
  it('a latency of 0 ms is a valid sample, but a 0 ms variant median has no speed-up', () => {
    const l = latencySummary([0, 2]);
    expect([l.minMs, l.p50Ms, l.maxMs]).toEqual([0, 1, 2]);
    expect(() => speedup(l, latencySummary([0, 0]))).toThrow(/variant p50/);
  });
});
