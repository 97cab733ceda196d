/**
 * Face verification metrics on same/different pairs, scored by cosine similarity (higher = more alike;
 * a pair is predicted "same" when its score is strictly above the threshold):
 *
 * - best-threshold accuracy over all pairs;
 * - k-fold accuracy per the LFW protocol as insightface's `verification.py` computes it (`calculate_roc`
 *   with `KFold(n_splits=10, shuffle=False)`): the threshold that maximises accuracy on k-1 folds is tested
 *   on the held-out fold; mean and population std over folds. Folds may come precomputed
 *   (VerificationOptions.fold), so they stay a pairs file's folds when some of its pairs are left out;
 * - TAR at a target FAR, ROC curve and AUC;
 * - the accuracy delta of two models on the same pairs with a fold-stratified paired bootstrap interval
 *   (verification-compare.ts).
 *
 * Thresholds are exact, not a grid: candidates are the midpoints between consecutive distinct scores
 * (plus one just below the lowest score and the highest score itself), which covers every distinct way
 * to split the training pairs. Ties in training accuracy go to the highest threshold, as numpy's argmax over
 * insightface's increasing distance grid does. A NaN score (broken embedding) counts as -2: always "different".
 */
import { checkNumber, FaceoptError } from '../errors.js';
import { mean, stdPopulation } from './stats.js';

/**
 * How pairs are split into folds. `lfw-sets` (default): positives in file order are cut into k
 * consecutive chunks, negatives likewise, and fold f = positive chunk f + negative chunk f. On a View 2
 * `pairs.txt` (10 sets of 300 same + 300 different, in order) this gives exactly the View 2 sets, the same
 * folds as KFold(shuffle=False); on DevTest-style files (all same pairs, then all different) it still gives
 * balanced folds. `consecutive`: sklearn's KFold(shuffle=False) on the file order verbatim (the first
 * n % k folds get one extra pair).
 */
export type FoldMode = 'lfw-sets' | 'consecutive';

/** The LFW protocol's folds: 10, cut by `lfw-sets` (the defaults of every verification here). */
export const DEFAULT_FOLDS = 10;
export const DEFAULT_FOLD_MODE: FoldMode = 'lfw-sets';

export interface VerificationOptions {
  /** Number of folds (default 10). */
  folds?: number;
  foldMode?: FoldMode;
  /**
   * The fold (0..folds-1) of each pair, when the folds were assigned over a longer list than the pairs
   * scored here: `assignFolds` over a whole pairs file some of whose pairs were left out (no face found,
   * a calibration identity). Assigning folds over what is left would shift every later pair's fold, so
   * LFW View 2's folds would no longer be the file's sets. `folds` and `foldMode` must be the ones it was
   * assigned with (`foldMode` is then only reported). Every fold must keep at least one pair.
   */
  fold?: ArrayLike<number>;
  /** Target false accept rates for TAR@FAR (default [1e-2, 1e-3]). */
  farTargets?: readonly number[];
  /** Most ROC points kept after dropping collinear ones (default 500). */
  rocMaxPoints?: number;
}

export interface ThresholdAccuracy {
  threshold: number;
  accuracy: number;
}

export interface FoldResult {
  /** Pairs in the held-out fold. */
  size: number;
  positives: number;
  /** Threshold chosen on the other folds. */
  threshold: number;
  /** Accuracy of that threshold on this fold. */
  accuracy: number;
}

export interface KFoldAccuracy {
  folds: number;
  foldMode: FoldMode;
  accuracyMean: number;
  /** Population std (ddof 0) over folds, as insightface reports it. */
  accuracyStd: number;
  perFold: FoldResult[];
}

/**
 * TAR at a target FAR over all pairs. With N negatives, at most k = floor(far x N) of them may score above
 * the threshold; the threshold is the (k+1)-th highest negative score (the lowest threshold that keeps
 * false accepts <= k) and TAR is the share of positives scoring strictly above it. When far x N < 1 no false
 * accept is allowed, so the value is the TAR with none of the N accepted and `resolved` is false. It is no
 * bound on the TAR at `far`: that threshold (the highest negative) has a true FAR of about 1/(N + 1), above
 * `far`, so the value reads high more often than low (61% of samples for N = 495 and FAR 1e-3).
 * With no negatives (or no positives) the rate is undefined: `tar` and `threshold` are null.
 */
export interface TarAtFar {
  far: number;
  tar: number | null;
  threshold: number | null;
  /** Negatives scoring above the threshold. */
  falseAccepts: number;
  /** falseAccepts / negatives (null without negatives). */
  achievedFar: number | null;
  /** True when far x negatives >= 1, i.e. the target FAR is resolvable with this many negatives. */
  resolved: boolean;
  note?: string;
}

export interface RocPoint {
  fpr: number;
  tpr: number;
  /** Pairs with score >= threshold are accepted at this point; null for the (0, 0) start. */
  threshold: number | null;
}

export interface RocCurve {
  /** Area under the curve (ties count half); null without both positives and negatives. */
  auc: number | null;
  points: RocPoint[];
}

export interface VerificationResult {
  pairs: number;
  positives: number;
  negatives: number;
  bestThreshold: ThresholdAccuracy;
  kFold: KFoldAccuracy;
  tarAtFar: TarAtFar[];
  roc: RocCurve;
}

/** Scores and labels after validation: NaN -> -2, labels as 0/1. */
export interface Pairs {
  scores: Float64Array;
  same: Uint8Array;
}

export function preparePairs(scores: ArrayLike<number>, same: ArrayLike<boolean | number>): Pairs {
  if (scores.length !== same.length) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `${scores.length} labels (one per score)`, name: 'same', received: `${same.length}` });
  }
  if (scores.length === 0) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'at least one pair', name: '--pairs', received: 'none' });
  }
  const s = new Float64Array(scores.length);
  const y = new Uint8Array(scores.length);
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    if (Number.isNaN(v)) s[i] = -2;
    else if (!Number.isFinite(v)) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'finite similarity scores', name: `score ${i}`, received: String(v) });
    } else s[i] = v;
    y[i] = same[i] ? 1 : 0;
  }
  return { scores: s, same: y };
}

/**
 * Fold sizes of sklearn's KFold: n // k each, the first n % k folds one larger. Exported so callers can
 * show users how pairs were split.
 */
export function kFoldSizes(n: number, k: number): number[] {
  const base = Math.floor(n / k);
  return Array.from({ length: k }, (_, i) => base + (i < n % k ? 1 : 0));
}

/**
 * The fold (0..k-1) of every pair under the given fold mode (see FoldMode). Throws when a fold would be
 * empty, naming the counts, because a threshold cannot be tested on nothing.
 */
export function assignFolds(same: ArrayLike<boolean | number>, k: number, mode: FoldMode = 'lfw-sets'): Int32Array {
  checkNumber('folds', k, { min: 2, integer: true });
  const n = same.length;
  const fold = new Int32Array(n);
  if (mode === 'consecutive') {
    if (n < k) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `at least ${k} pairs for ${k} folds`, name: '--pairs', received: String(n) });
    let i = 0;
    kFoldSizes(n, k).forEach((size, f) => { for (let j = 0; j < size; j++) fold[i++] = f; });
    return fold;
  }
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < n; i++) (same[i] ? pos : neg).push(i);
  if (Math.max(pos.length, neg.length) < k) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `at least ${k} same or ${k} different pairs for ${k} folds`, name: '--pairs', received: `${pos.length} same, ${neg.length} different` });
  }
  for (const group of [pos, neg]) {
    let i = 0;
    kFoldSizes(group.length, k).forEach((size, f) => { for (let j = 0; j < size; j++) fold[group[i++]!] = f; });
  }
  return fold;
}

/**
 * A precomputed fold list (VerificationOptions.fold) checked against n pairs and k folds: one integer
 * fold in 0..k-1 per pair, and no fold left without pairs, since a threshold cannot be tested on nothing
 * (and a fold with no pairs means every pair of it was left out before scoring).
 */
function checkedFolds(fold: ArrayLike<number>, n: number, k: number): Int32Array {
  checkNumber('folds', k, { min: 2, integer: true });
  if (fold.length !== n) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `${n} folds (one per pair)`, name: 'fold', received: String(fold.length) });
  }
  const out = new Int32Array(n);
  const members = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) {
    const f = fold[i]!;
    if (!Number.isInteger(f) || f < 0 || f >= k) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `a fold from 0 to ${k - 1}`, name: `fold of pair ${i}`, received: String(f) });
    }
    out[i] = f;
    members[f]++;
  }
  const empty = members.indexOf(0);
  if (empty >= 0) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: `at least one pair in each of the ${k} folds`, name: 'fold',
      received: `no pair in fold ${empty} (of 0..${k - 1}): all of its pairs were left out`,
    });
  }
  return out;
}

/** Pair indices in ascending score order (the order every threshold sweep walks). */
export function scoreOrder(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
}

/**
 * The threshold maximising accuracy over the pairs `weight` counts (0 leaves a pair out; a bootstrap
 * resample counts one several times), sweeping them in score order `order`, O(n). See the file comment for
 * candidates and tie-breaking.
 */
function bestThresholdWeighted(p: Pairs, order: readonly number[], weight: (i: number) => number): ThresholdAccuracy {
  let positives = 0;
  let total = 0;
  let first = -1;
  for (const i of order) {
    const w = weight(i);
    if (!w) continue;
    positives += p.same[i]! * w;
    total += w;
    if (first < 0) first = i;
  }
  if (first < 0) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'pairs to choose a threshold on', name: 'pairs', received: 'none' });
  // threshold below every score: everything predicted "same"
  let correct = positives;
  let bestCorrect = correct;
  let bestThreshold = p.scores[first]! - 1e-6;
  const nextCounted = (j: number) => { while (j < order.length && !weight(order[j]!)) j++; return j; };
  for (let j = nextCounted(0); j < order.length;) {
    const u = p.scores[order[j]!]!;
    for (; j < order.length && p.scores[order[j]!] === u; j++) {
      const i = order[j]!;
      correct += (p.same[i] ? -1 : 1) * weight(i); // this pair is now predicted "different"
    }
    j = nextCounted(j);
    const t = j < order.length ? (u + p.scores[order[j]!]!) / 2 : u;
    if (correct >= bestCorrect) { bestCorrect = correct; bestThreshold = t; }
  }
  return { threshold: bestThreshold, accuracy: bestCorrect / total };
}

/** Per-fold results plus whether each pair was classified correctly when its fold was held out. */
function kFold(p: Pairs, k: number, mode: FoldMode, given?: ArrayLike<number>): { result: KFoldAccuracy; correct: Uint8Array; fold: Int32Array } {
  const fold = given ? checkedFolds(given, p.scores.length, k) : assignFolds(p.same, k, mode);
  const correct = new Uint8Array(p.scores.length);
  const perFold: FoldResult[] = [];
  const order = scoreOrder(p.scores);
  for (let f = 0; f < k; f++) {
    const { threshold } = bestThresholdWeighted(p, order, (i) => (fold[i] !== f ? 1 : 0));
    let size = 0;
    let positives = 0;
    let right = 0;
    for (let i = 0; i < p.scores.length; i++) {
      if (fold[i] !== f) continue;
      size++;
      positives += p.same[i]!;
      const ok = (p.scores[i]! > threshold ? 1 : 0) === p.same[i] ? 1 : 0;
      correct[i] = ok;
      right += ok;
    }
    perFold.push({ size, positives, threshold, accuracy: right / size });
  }
  const accs = perFold.map((r) => r.accuracy);
  return { result: { folds: k, foldMode: mode, accuracyMean: mean(accs), accuracyStd: stdPopulation(accs), perFold }, correct, fold };
}

/**
 * The k-fold mean accuracy with each pair counted `count[i]` times (a bootstrap resample; 0 leaves it out):
 * each fold's threshold is chosen on the other folds' counted pairs by the same sweep as kFold and tested
 * on the fold's own. With every count 1 it is kFold's accuracyMean. `order` is scoreOrder(p.scores).
 */
export function countedKFoldMean(p: Pairs, fold: ArrayLike<number>, k: number, count: ArrayLike<number>, order: readonly number[] = scoreOrder(p.scores)): number {
  let sum = 0;
  for (let f = 0; f < k; f++) {
    const { threshold } = bestThresholdWeighted(p, order, (i) => (fold[i] === f ? 0 : count[i]!));
    let right = 0;
    let size = 0;
    for (let i = 0; i < p.scores.length; i++) {
      if (fold[i] !== f || !count[i]) continue;
      size += count[i]!;
      if ((p.scores[i]! > threshold ? 1 : 0) === p.same[i]) right += count[i]!;
    }
    sum += size ? right / size : 0;
  }
  return sum / k;
}

/**
 * TAR at each target FAR over all pairs, by the rule documented on TarAtFar. Exported for callers that
 * only need this number (e.g. to pick a serving threshold at FAR 1e-3).
 */
export function tarAtFar(scores: ArrayLike<number>, same: ArrayLike<boolean | number>, far: number): TarAtFar {
  checkNumber('far', far, { min: 0, max: 1 });
  const p = preparePairs(scores, same);
  const neg: number[] = [];
  const pos: number[] = [];
  for (let i = 0; i < p.scores.length; i++) (p.same[i] ? pos : neg).push(p.scores[i]!);
  if (neg.length === 0) return { far, tar: null, threshold: null, falseAccepts: 0, achievedFar: null, resolved: false, note: 'no different-identity pairs: FAR is undefined' };
  neg.sort((a, b) => b - a);
  const allowed = Math.floor(far * neg.length + 1e-9);
  const resolved = allowed >= 1;
  if (allowed >= neg.length) {
    // every negative may be accepted: accept everything
    let lowest = Infinity;
    for (const v of p.scores) lowest = Math.min(lowest, v);
    const threshold = lowest - 1e-6;
    return { far, tar: pos.length ? 1 : null, threshold, falseAccepts: neg.length, achievedFar: 1, resolved, ...(pos.length ? {} : { note: 'no same-identity pairs: TAR is undefined' }) };
  }
  const threshold = neg[allowed]!;
  const falseAccepts = neg.filter((s) => s > threshold).length;
  const base = { far, threshold, falseAccepts, achievedFar: falseAccepts / neg.length, resolved };
  const note = resolved ? undefined : `only ${neg.length} different-identity pairs: FAR ${far} is below the resolution 1/${neg.length}, so this is the TAR with none of them accepted, not the TAR at FAR ${far} (nor a bound on it: that threshold's true FAR is about 1/${neg.length + 1})`;
  if (pos.length === 0) return { ...base, tar: null, note: 'no same-identity pairs: TAR is undefined' };
  const tar = pos.filter((s) => s > threshold).length / pos.length;
  return note ? { ...base, tar, note } : { ...base, tar };
}

/**
 * ROC curve (accept pairs with score >= threshold, sweeping thresholds from high to low) and its AUC.
 * Points on straight horizontal or vertical runs are dropped (the polyline is unchanged), then the rest is
 * thinned evenly to at most `maxPoints`, always keeping the first and last.
 */
export function rocCurve(scores: ArrayLike<number>, same: ArrayLike<boolean | number>, maxPoints = 500): RocCurve {
  checkNumber('rocMaxPoints', maxPoints, { min: 2, integer: true });
  const p = preparePairs(scores, same);
  const idx = Array.from(p.scores.keys()).sort((a, b) => p.scores[b]! - p.scores[a]!);
  let P = 0;
  for (const i of idx) P += p.same[i]!;
  const N = idx.length - P;
  if (P === 0 || N === 0) return { auc: null, points: [] };
  const all: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: null }];
  let tp = 0;
  let fp = 0;
  for (let j = 0; j < idx.length;) {
    const u = p.scores[idx[j]!]!;
    while (j < idx.length && p.scores[idx[j]!] === u) {
      if (p.same[idx[j]!]) tp++; else fp++;
      j++;
    }
    all.push({ fpr: fp / N, tpr: tp / P, threshold: u });
  }
  let auc = 0;
  for (let i = 1; i < all.length; i++) auc += (all[i]!.fpr - all[i - 1]!.fpr) * (all[i]!.tpr + all[i - 1]!.tpr) / 2;
  const corners = all.filter((q, i) => {
    if (i === 0 || i === all.length - 1) return true;
    const a = all[i - 1]!;
    const b = all[i + 1]!;
    return !((a.fpr === q.fpr && q.fpr === b.fpr) || (a.tpr === q.tpr && q.tpr === b.tpr));
  });
  let points = corners;
  if (corners.length > maxPoints) {
    const step = (corners.length - 1) / (maxPoints - 1);
    points = Array.from({ length: maxPoints }, (_, i) => corners[Math.round(i * step)]!);
  }
  return { auc, points };
}

/**
 * All verification metrics of one model on labelled pairs (see the file comment for the protocol).
 * `scores[i]` is the cosine similarity of pair i's two embeddings; `same[i]` whether they are one person.
 */
export function verification(scores: ArrayLike<number>, same: ArrayLike<boolean | number>, opts: VerificationOptions = {}): VerificationResult {
  return verificationDetailed(preparePairs(scores, same), opts).result;
}

/** Verification of prepared pairs, with each pair's held-out correctness and fold (verification-compare.ts). */
export function verificationDetailed(p: Pairs, opts: VerificationOptions): { result: VerificationResult; correct: Uint8Array; fold: Int32Array } {
  const { folds = DEFAULT_FOLDS, foldMode = DEFAULT_FOLD_MODE, farTargets = [1e-2, 1e-3], rocMaxPoints = 500 } = opts;
  const kf = kFold(p, folds, foldMode, opts.fold);
  let positives = 0;
  for (const v of p.same) positives += v;
  const result: VerificationResult = {
    pairs: p.scores.length,
    positives,
    negatives: p.scores.length - positives,
    bestThreshold: bestThresholdWeighted(p, scoreOrder(p.scores), () => 1),
    kFold: kf.result,
    tarAtFar: farTargets.map((far) => tarAtFar(p.scores, p.same, far)),
    roc: rocCurve(p.scores, p.same, rocMaxPoints),
  };
  return { result, correct: kf.correct, fold: kf.fold };
}
