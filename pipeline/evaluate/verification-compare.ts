/**
 * Two models on the same verification pairs: both results and the accuracy delta, with a paired,
 * fold-stratified bootstrap interval and the fold spread. The metrics themselves are verification.ts.
 */
import { checkNumber, FaceoptError } from '../errors.js';
import { mulberry32, percentileSorted, stdPopulation } from './stats.js';
import { preparePairs, verificationDetailed, type VerificationOptions, type VerificationResult } from './verification.js';

/**
 * The k-fold accuracy delta (variant minus reference, as a fraction: -0.002 = -0.2 pp) and how sure we
 * are of it. Both models are scored on the same folds; `perFold` is the per-fold delta (its spread is the
 * fold interval). The bootstrap resamples pairs with replacement within each fold, keeping each pair's
 * two outcomes together (paired) and each pair's fold threshold fixed, and recomputes the mean of per-fold
 * deltas; [low, high] is the percentile interval at `confidence`. `fixed`/`broken` count pairs the
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
  bootstrap: { resamples: number; seed: number; confidence: number; low: number; high: number };
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
  const ref = verificationDetailed(preparePairs(referenceScores, same), opts);
  const vari = verificationDetailed(preparePairs(variantScores, same), opts);
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
  for (let b = 0; b < resamples; b++) {
    let sum = 0;
    for (const m of members) {
      let s = 0;
      for (let j = 0; j < m.length; j++) s += d[m[Math.floor(rand() * m.length)]!]!;
      sum += s / m.length;
    }
    boots[b] = sum / k;
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
      bootstrap: { resamples, seed, confidence, low: percentileSorted(boots, alpha * 100), high: percentileSorted(boots, (1 - alpha) * 100) },
    },
  };
}
