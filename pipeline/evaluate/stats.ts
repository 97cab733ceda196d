/**
 * Small numeric building blocks shared by the metrics: mean, population standard deviation, percentiles
 * with numpy's default (linear) interpolation, fixed-edge histograms and a seeded PRNG. Pure functions
 * over plain arrays, so every metric built on them is reproducible and hand-checkable.
 */
import { FaceoptError } from '../errors.js';

/** A histogram over fixed edges: bin i counts values in [edges[i], edges[i+1]); the last bin is closed. */
export interface Histogram {
  edges: number[];
  counts: number[];
}

/**
 * Throw FACEOPT_ERR_BAD_ARGUMENT unless `values` is non-empty; metrics over nothing have no meaning and
 * a silent NaN would travel into a report.
 */
export function requireNonEmpty(name: string, values: ArrayLike<number>): void {
  if (values.length === 0) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'at least one value', name, received: 'an empty list' });
  }
}

/** Arithmetic mean of a non-empty list (throws on an empty one, naming `name`). */
export function mean(values: ArrayLike<number>, name = 'values'): number {
  requireNonEmpty(name, values);
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

/**
 * Population standard deviation (ddof = 0, numpy's `np.std` default, which insightface's verification
 * code uses for the 10-fold spread), so our fold spread is comparable with published numbers.
 */
export function stdPopulation(values: ArrayLike<number>, name = 'values'): number {
  const m = mean(values, name);
  let s = 0;
  for (let i = 0; i < values.length; i++) s += (values[i]! - m) ** 2;
  return Math.sqrt(s / values.length);
}

/** Ascending copy of the values as a Float64Array (the input is never reordered). */
export function sortedAscending(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values as ArrayLike<number>).sort();
}

/**
 * The q-th percentile (q in [0, 100]) of already-sorted values with linear interpolation between the two
 * nearest ranks, numpy's default: rank h = (n - 1) q / 100, value = x[floor h] + frac(h) (x[ceil h] - x[floor h]).
 */
export function percentileSorted(sorted: ArrayLike<number>, q: number, name = 'values'): number {
  requireNonEmpty(name, sorted);
  if (!(q >= 0 && q <= 100)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'number between 0 and 100', name: 'percentile', received: String(q) });
  }
  const h = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** The q-th percentile of unsorted values (see percentileSorted for the interpolation rule). */
export function percentile(values: ArrayLike<number>, q: number, name = 'values'): number {
  return percentileSorted(sortedAscending(values), q, name);
}

/**
 * Count values into fixed, increasing edges. Values below the first edge go to the first bin and values
 * above the last edge to the last bin (clamped), so counts always sum to the number of values and two
 * reports with the same edges can be compared bin by bin.
 */
export function histogram(values: ArrayLike<number>, edges: readonly number[]): Histogram {
  if (edges.length < 2 || edges.some((e, i) => !Number.isFinite(e) || (i > 0 && e <= edges[i - 1]!))) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'at least two finite, strictly increasing edges', name: 'histogram edges', received: JSON.stringify(edges) });
  }
  const counts = new Array<number>(edges.length - 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // binary search for the last edge <= v, clamped into [0, bins - 1]
    let lo = 0;
    let hi = edges.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (edges[mid]! <= v) lo = mid; else hi = mid;
    }
    counts[Math.min(lo, counts.length - 1)]! += 1;
  }
  return { edges: [...edges], counts };
}

/**
 * A seeded 32-bit PRNG (mulberry32) returning floats in [0, 1). Used for bootstrap resampling so that a
 * report's confidence interval is the same every time the same data is evaluated with the same seed.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
