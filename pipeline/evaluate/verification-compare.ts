/**
 * Two models on the same verification pairs: both results and the accuracy delta, with a paired,
 * fold-stratified bootstrap interval and the fold spread. The metrics themselves are verification.ts.
 */
import { checkNumber, FaceoptError } from '../errors.js';
import { mulberry32, percentileSorted, stdPopulation } from './stats.js';
import { countedKFoldMean, preparePairs, scoreOrder, verificationDetailed, type VerificationOptions, type VerificationResult } from './verification.js';

/**
 * The k-fold accuracy delta (variant minus reference, as a fraction: -0.002 = -0.2 pp) and how sure we
 * are of it. Both models are scored on the same folds; `perFold` is the per-fold delta (its spread is the
 * fold interval). The bootstrap resamples pairs with replacement within each fold, keeping each pair's
 * two scores together (paired), chooses each fold's threshold again on the resampled other folds for each
 * model (the whole protocol, as the point estimate ran it), and recomputes the mean of per-fold deltas;
 * [low, high] is the percentile interval at `confidence`. Holding the thresholds fixed instead (reports
 * before 2026-12-07, `thresholdsRechosen` absent) measured the test folds' sampling only: on mobileface's
 * INT8 report it gave -0.30..0.00 pp from one broken pair, where re-chosen thresholds give -0.40..+0.40. `fixed`/`broken` count pairs the
 * variant gets right/wrong where the reference did the opposite.
 */
export interface AccuracyDelta {
  reference: number;
  variant: number;
  delta: number;
  perFold: number[];
  foldStd: number;
  foldMin: number;
  foldMax: number;
  fixed: number;
  broken: number;
  bootstrap: { resamples: number; seed: number; confidence: number; low: number; high: number; thresholdsRechosen?: boolean };
}

export interface CompareOptions extends VerificationOptions {
  /** Bootstrap resamples (default 1000). */
  resamples?: number;
  /** PRNG seed (default 1). */
  seed?: number;
  /** Interval coverage (default 0.95). */
  confidence?: number;
}

/**
 * Verification of a reference and a variant model on the same pairs, and their accuracy delta with a
 * paired, fold-stratified bootstrap interval and the fold spread (see AccuracyDelta). Deterministic for a
 * given seed.
 */
export function compareVerification(
  referenceScores: ArrayLike<number>,
  variantScores: ArrayLike<number>,
  same: ArrayLike<boolean | number>,
  opts: CompareOptions = {},
): { reference: VerificationResult; variant: VerificationResult; delta: AccuracyDelta } {
  const { resamples = 1000, seed = 1, confidence = 0.95 } = opts;
  checkNumber('resamples', resamples, { min: 1, integer: true });
  checkNumber('confidence', confidence, { min: 0.5, max: 0.999 });
  if (referenceScores.length !== variantScores.length) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `${referenceScores.length} variant scores (one per pair)`, name: 'variantScores', received: String(variantScores.length) });
  }
  const refPairs = preparePairs(referenceScores, same);
  const varPairs = preparePairs(variantScores, same);
  const ref = verificationDetailed(refPairs, opts);
  const vari = verificationDetailed(varPairs, opts);
  const k = ref.result.kFold.folds;
  const members: number[][] = Array.from({ length: k }, () => []);
  ref.fold.forEach((f, i) => members[f]!.push(i));
  const d = new Int8Array(ref.correct.length);
  let fixed = 0;
  let broken = 0;
  for (let i = 0; i < d.length; i++) {
    d[i] = vari.correct[i]! - ref.correct[i]!;
    if (d[i] === 1) fixed++; else if (d[i] === -1) broken++;
  }
  const perFold = vari.result.kFold.perFold.map((r, f) => r.accuracy - ref.result.kFold.perFold[f]!.accuracy);
  const rand = mulberry32(seed);
  const boots = new Float64Array(resamples);
  const count = new Int32Array(d.length);
  const refOrder = scoreOrder(refPairs.scores);
  const varOrder = scoreOrder(varPairs.scores);
  for (let b = 0; b < resamples; b++) {
    count.fill(0);
    for (const m of members) for (let j = 0; j < m.length; j++) count[m[Math.floor(rand() * m.length)]!]!++;
    boots[b] = countedKFoldMean(varPairs, ref.fold, k, count, varOrder) - countedKFoldMean(refPairs, ref.fold, k, count, refOrder);
  }
  boots.sort();
  const alpha = (1 - confidence) / 2;
  return {
    reference: ref.result,
    variant: vari.result,
    delta: {
      reference: ref.result.kFold.accuracyMean,
      variant: vari.result.kFold.accuracyMean,
      delta: vari.result.kFold.accuracyMean - ref.result.kFold.accuracyMean,
      perFold,
      foldStd: stdPopulation(perFold),
      foldMin: Math.min(...perFold),
      foldMax: Math.max(...perFold),
      fixed,
      broken,
      bootstrap: { resamples, seed, confidence, low: percentileSorted(boots, alpha * 100), high: percentileSorted(boots, (1 - alpha) * 100), thresholdsRechosen: true },
    },
  };
}
