/**
 * The accuracy and speed metrics faceopt reports, as pure functions over plain numbers: embedding
 * agreement (cosine, L2 normalisation, the per-face cosine summary), latency summaries and speed-ups.
 * Verification (10-fold accuracy, TAR@FAR, ROC) lives in verification.ts, the paired delta of two models
 * in verification-compare.ts and detection matching in detection.ts; all are re-exported here so callers
 * import metrics from one place.
 */
import { FaceoptError } from '../errors.js';
import { histogram, mean, percentileSorted, requireNonEmpty, sortedAscending, type Histogram } from './stats.js';

export * from './verification.js';
export * from './verification-compare.js';
export * from './detection.js';
export { histogram, mean, mulberry32, percentile, stdPopulation, type Histogram } from './stats.js';

/**
 * Cosine similarity of two equally long vectors. A zero-norm vector has no direction, so its cosine is
 * defined as 0 (no agreement) rather than NaN; NaN inputs give NaN, which the summaries count as failures.
 */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `a vector of length ${a.length}`, name: 'cosine second vector', received: `length ${b.length}` });
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 || nb === 0) return 0;
  // rounding can push |cos| a hair over 1; clamp so histograms and gates see a valid cosine
  return Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)));
}

/**
 * The vector scaled to unit L2 norm (a new Float64Array), as ArcFace embeddings are compared. A zero
 * vector is returned unchanged (all zeros): there is no direction to keep.
 */
export function l2Normalize(v: ArrayLike<number>): Float64Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  const out = Float64Array.from(v as ArrayLike<number>);
  if (n === 0) return out;
  const norm = Math.sqrt(n);
  for (let i = 0; i < out.length; i++) out[i]! /= norm;
  return out;
}

/**
 * Fixed histogram edges for reference-vs-variant cosines. They are dense near 1, where quantized models
 * live, and the same in every report so two reports compare bin by bin. The first bin holds everything
 * below 0.9 (down to -1).
 */
export const COSINE_HISTOGRAM_EDGES: readonly number[] = [-1, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.997, 0.998, 0.999, 0.9995, 1];

/** Summary of per-face cosines between reference and variant embeddings. */
export interface CosineSummary {
  /** Faces compared. */
  count: number;
  mean: number;
  /** 1st percentile (linear interpolation, numpy default). */
  p1: number;
  min: number;
  max: number;
  /** Cosines that were NaN (a broken output); they count as -1 in mean, p1 and min. */
  nonFinite: number;
  histogram: Histogram;
}

/**
 * Summarise per-face cosines (reference vs variant embedding of the same face): mean, 1st percentile,
 * min, max and a histogram over COSINE_HISTOGRAM_EDGES (or the edges given). A NaN cosine means the
 * variant produced a broken embedding; it is counted in `nonFinite` and scored as -1, the worst possible
 * value, so it can never hide inside a passing mean.
 */
export function cosineSummary(cosines: ArrayLike<number>, edges: readonly number[] = COSINE_HISTOGRAM_EDGES): CosineSummary {
  requireNonEmpty('cosines', cosines);
  let nonFinite = 0;
  const clean = new Float64Array(cosines.length);
  for (let i = 0; i < cosines.length; i++) {
    const c = cosines[i]!;
    if (Number.isFinite(c)) clean[i] = Math.max(-1, Math.min(1, c));
    else { clean[i] = -1; nonFinite++; }
  }
  const sorted = sortedAscending(clean);
  return {
    count: clean.length,
    mean: mean(clean),
    p1: percentileSorted(sorted, 1),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    nonFinite,
    histogram: histogram(clean, edges),
  };
}

/** Latency statistics of one model at one batch size, in milliseconds per batch. */
export interface LatencySummary {
  samples: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  minMs: number;
  maxMs: number;
}

/**
 * Summarise timed runs (milliseconds per batch): p50 and p95 with linear interpolation, mean, min, max.
 * Warm-up runs should be dropped by the caller; every sample given here is counted.
 */
export function latencySummary(samplesMs: ArrayLike<number>): LatencySummary {
  requireNonEmpty('latency samples', samplesMs);
  for (let i = 0; i < samplesMs.length; i++) {
    const s = samplesMs[i]!;
    if (!Number.isFinite(s) || s < 0) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'finite, non-negative milliseconds', name: `latency sample ${i}`, received: String(s) });
    }
  }
  const sorted = sortedAscending(samplesMs);
  return {
    samples: sorted.length,
    meanMs: mean(sorted),
    p50Ms: percentileSorted(sorted, 50),
    p95Ms: percentileSorted(sorted, 95),
    minMs: sorted[0]!,
    maxMs: sorted[sorted.length - 1]!,
  };
}

/**
 * Speed-up of a variant over its reference from median latencies (reference p50 / variant p50): 2 means
 * the variant takes half the time. Medians, not means, so one slow outlier run does not move the verdict.
 */
export function speedup(reference: LatencySummary, variant: LatencySummary): number {
  if (variant.p50Ms <= 0) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a positive median latency', name: 'variant p50', received: String(variant.p50Ms) });
  }
  return reference.p50Ms / variant.p50Ms;
}
