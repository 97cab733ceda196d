import { describe, expect, it } from 'vitest';
import { assignFolds, compareVerification, kFoldSizes, rocCurve, tarAtFar, verification } from '../../pipeline/evaluate/metrics.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { countedKFoldMean, preparePairs } from '../../pipeline/evaluate/verification.js';
import { mulberry32 } from '../../pipeline/evaluate/stats.js';

/** n positives then n negatives (DevTest file order). */
function pairs(pos: number[], neg: number[]): { scores: number[]; same: boolean[] } {
  return { scores: [...pos, ...neg], same: [...pos.map(() => true), ...neg.map(() => false)] };
}
const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

describe('folds (LFW protocol / sklearn KFold(shuffle=False))', () => {
  it('fold sizes follow KFold: the first n % k folds get one extra pair', () => {
    expect(kFoldSizes(12, 10)).toEqual([2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(kFoldSizes(6000, 10)).toEqual(new Array(10).fill(600));
  });
  it('consecutive mode cuts the file order into consecutive folds', () => {
    const f = assignFolds(new Array(12).fill(true), 10, 'consecutive');
    expect(Array.from(f)).toEqual([0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
  it('lfw-sets equals KFold(shuffle=False) on View 2 order (sets of same then different pairs)', () => {
    const same: boolean[] = [];
    for (let s = 0; s < 10; s++) same.push(...[true, true, true, false, false, false]);
    expect(Array.from(assignFolds(same, 10, 'lfw-sets'))).toEqual(Array.from(assignFolds(same, 10, 'consecutive')));
  });
  it('lfw-sets balances DevTest order (all same pairs first): every fold has as many same as different', () => {
    const same = [...new Array(50).fill(true), ...new Array(50).fill(false)];
    const f = assignFolds(same, 10, 'lfw-sets');
    for (let k = 0; k < 10; k++) {
      const members = same.filter((_, i) => f[i] === k);
      expect(members.length).toBe(10);
      expect(members.filter(Boolean).length).toBe(5);
    }
    // consecutive on the same file gives single-class folds
    const c = assignFolds(same, 10, 'consecutive');
    expect(same.filter((_, i) => c[i] === 0).every(Boolean)).toBe(true);
  });
  it('refuses folds that would be empty, naming the counts', () => {
    expect(() => assignFolds(new Array(9).fill(true), 10, 'consecutive')).toThrow(/at least 10 pairs/);
    try {
      assignFolds([true, true, true, false, false, false], 10, 'lfw-sets');
      expect.unreachable();
    } catch (e) {
      expect(isFaceoptError(e, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
      expect((e as Error).message).toContain('3 same, 3 different');
    }
    expect(() => assignFolds([true, false], 1)).toThrow(/folds/);
  });
});

describe('verification', () => {
  it('a perfect model: accuracy 1 everywhere, AUC 1', () => {
    const { scores, same } = pairs(range(10, (i) => 0.9 - i * 0.01), range(10, (i) => 0.1 + i * 0.01));
    const v = verification(scores, same);
    expect(v.pairs).toBe(20);
    expect([v.positives, v.negatives]).toEqual([10, 10]);
    expect(v.bestThreshold.accuracy).toBe(1);
    expect(v.bestThreshold.threshold).toBeCloseTo((0.19 + 0.81) / 2, 12); // midpoint of the gap
    expect(v.kFold.accuracyMean).toBe(1);
    expect(v.kFold.accuracyStd).toBe(0);
    expect(v.kFold.perFold.map((f) => [f.size, f.positives])).toEqual(new Array(10).fill([2, 1]));
    expect(v.roc.auc).toBe(1);
    expect(v.roc.points[0]).toEqual({ fpr: 0, tpr: 0, threshold: null });
    expect(v.roc.points.at(-1)).toMatchObject({ fpr: 1, tpr: 1 });
  });

  it('an inverted model: best threshold 0.5 (all one class), 10-fold 0.45 ± 0.15, AUC 0', () => {
    // same pairs score 0.01..0.10, different pairs 0.91..1.00
    const { scores, same } = pairs(range(10, (i) => 0.01 * (i + 1)), range(10, (i) => 0.91 + 0.01 * i));
    const v = verification(scores, same);
    expect(v.bestThreshold.accuracy).toBe(0.5);
    expect(v.roc.auc).toBe(0);
    // Training always ties "all same" with "all different"; the higher threshold (all different) wins.
    // Folds 1-9: the held-out different pair is below the training maximum (correct), the same pair wrong: 0.5.
    // Fold 10 holds out the highest score 1.00, above the training maximum 0.99: both wrong: 0.
    expect(v.kFold.perFold.map((f) => f.accuracy)).toEqual([...new Array(9).fill(0.5), 0]);
    expect(v.kFold.accuracyMean).toBeCloseTo(0.45, 12);
    expect(v.kFold.accuracyStd).toBeCloseTo(0.15, 12);
  });

  it('ties: every pair scores the same, so nothing separates them', () => {
    const { scores, same } = pairs(new Array(10).fill(0.5), new Array(10).fill(0.5));
    const v = verification(scores, same);
    expect(v.bestThreshold.accuracy).toBe(0.5);
    expect(v.roc.auc).toBe(0.5);
    expect(v.roc.points.map((q) => [q.fpr, q.tpr])).toEqual([[0, 0], [1, 1]]);
    const t = v.tarAtFar[0]!;
    expect(t.threshold).toBe(0.5);
    expect(t.tar).toBe(0); // strictly above 0.5: none
  });

  it('best threshold on a hand case: ties go to the higher threshold', () => {
    // same: 0.9, 0.6; different: 0.7, 0.1. Accuracy 3/4 at t in (0.1, 0.6) and at t in (0.7, 0.9).
    const v = verification([0.9, 0.6, 0.7, 0.1, 0.2, 0.3, 0.4, 0.15, 0.05, 0.01], [true, true, false, false, false, false, false, false, false, false], { folds: 2 });
    expect(v.bestThreshold.accuracy).toBe(0.9);
    expect(v.bestThreshold.threshold).toBeCloseTo(0.8, 12);
  });

  it('tiny folds: 10 pairs in 10 folds of one pair each', () => {
    const scores = [0.9, 0.8, 0.85, 0.7, 0.95, 0.2, 0.1, 0.3, 0.25, 0.75];
    const same = [true, true, true, true, true, false, false, false, false, false];
    const v = verification(scores, same, { foldMode: 'consecutive' });
    expect(v.kFold.perFold.map((f) => f.size)).toEqual(new Array(10).fill(1));
    // Leaving out 0.7 (same): the rest split perfectly at 0.775, so 0.7 is wrong. Leaving out 0.75
    // (different): the rest split at 0.5, so 0.75 is wrong. Leaving out 0.8 (same): t = 0.5 and t = 0.8
    // both get 8 of 9 training pairs right; the tie goes to the higher 0.8, and 0.8 > 0.8 is false: wrong.
    // Every other held-out pair is right (thresholds 0.775 or 0.5).
    expect(v.kFold.perFold.map((f) => f.accuracy)).toEqual([1, 0, 1, 0, 1, 1, 1, 1, 1, 0]);
    expect(v.kFold.perFold[1]!.threshold).toBeCloseTo(0.8, 12);
    expect(v.kFold.perFold[9]!.threshold).toBeCloseTo(0.5, 12);
    expect(v.kFold.accuracyMean).toBeCloseTo(0.7, 12);
    expect(v.kFold.accuracyStd).toBeCloseTo(Math.sqrt(0.21), 12);
  });

  it('NaN scores count as "different" (-2) instead of poisoning the metrics', () => {
    const { scores, same } = pairs(range(10, (i) => 0.9 - i * 0.01), range(10, (i) => 0.1 + i * 0.01));
    scores[0] = NaN;
    const v = verification(scores, same);
    expect(v.bestThreshold.accuracy).toBe(0.95);
    expect(() => verification([Infinity, 0], [true, false])).toThrow(/score 0/);
    expect(() => verification([0.1], [true, false])).toThrow(/one per score/);
  });
});

describe('TAR at FAR', () => {
  const neg = range(200, (i) => i / 200); // 0 .. 0.995
  const pos = [0.99, 0.986, 0.985, 0.5];
  const scores = [...pos, ...neg];
  const same = [...pos.map(() => 1), ...neg.map(() => 0)];
  it('FAR 1e-2 with 200 negatives allows 2 false accepts: threshold = 3rd highest negative', () => {
    const t = tarAtFar(scores, same, 1e-2);
    expect(t).toMatchObject({ far: 0.01, threshold: 0.985, falseAccepts: 2, achievedFar: 0.01, resolved: true, tar: 0.5 });
    expect(t.note).toBeUndefined();
  });
  it('FAR 1e-3 below the resolution 1/200 is TAR at FAR 0, marked unresolved', () => {
    const t = tarAtFar(scores, same, 1e-3);
    expect(t).toMatchObject({ threshold: 0.995, falseAccepts: 0, achievedFar: 0, resolved: false, tar: 0 });
    expect(t.note).toMatch(/below the resolution 1\/200/);
  });
  it('with zero negatives FAR is undefined; with zero positives TAR is', () => {
    expect(tarAtFar([0.9, 0.8], [1, 1], 1e-3)).toMatchObject({ tar: null, threshold: null, achievedFar: null, resolved: false });
    expect(tarAtFar([0.9, 0.8], [1, 1], 1e-3).note).toMatch(/no different-identity pairs/);
    expect(tarAtFar([0.9, 0.8], [0, 0], 0.5)).toMatchObject({ tar: null, threshold: 0.8, falseAccepts: 1 });
  });
});

describe('ROC', () => {
  it('hand case: AUC = P(same > different) and corners only', () => {
    const r = rocCurve([0.9, 0.6, 0.7, 0.1], [1, 1, 0, 0]);
    expect(r.auc).toBe(0.75);
    expect(r.points.map((q) => [q.fpr, q.tpr])).toEqual([[0, 0], [0, 0.5], [0.5, 0.5], [0.5, 1], [1, 1]]);
    expect(r.points.map((q) => q.threshold)).toEqual([null, 0.9, 0.7, 0.6, 0.1]);
  });
  it('drops collinear points and thins to maxPoints, keeping the ends', () => {
    const n = 400;
    const scores = range(n, (i) => i / n);
    const same = range(n, (i) => i % 2); // alternating: a staircase with 400 corners
    const r = rocCurve(scores, same, 50);
    expect(r.points.length).toBe(50);
    expect(r.points[0]).toEqual({ fpr: 0, tpr: 0, threshold: null });
    expect(r.points.at(-1)).toMatchObject({ fpr: 1, tpr: 1 });
    expect(rocCurve([0.9, 0.8], [1, 1])).toEqual({ auc: null, points: [] });
  });
});

describe('compareVerification', () => {
  const pos = range(50, (i) => 0.6 + i * 0.005);
  const neg = range(50, (i) => 0.1 + i * 0.005);
  const { scores, same } = pairs(pos, neg);
  it('the same model twice: delta 0 with a zero-width interval', () => {
    const c = compareVerification(scores, scores, same);
    expect(c.delta).toMatchObject({ delta: 0, fixed: 0, broken: 0, foldStd: 0 });
    expect([c.delta.bootstrap.low, c.delta.bootstrap.high]).toEqual([0, 0]);
  });
  it('one broken pair: -1 pp, fold spread shows where, bootstrap interval covers it and is seeded', () => {
    const variant = [...scores];
    variant[0] = 0.05; // a same pair now scores below every different pair
    const c = compareVerification(scores, variant, same, { resamples: 2000, seed: 7 });
    expect(c.reference.kFold.accuracyMean).toBe(1);
    expect(c.delta.delta).toBeCloseTo(-0.01, 12);
    expect(c.delta.perFold[0]).toBeCloseTo(-0.1, 12);
    expect(c.delta.perFold.slice(1).every((d) => d === 0)).toBe(true);
    expect([c.delta.fixed, c.delta.broken]).toEqual([0, 1]);
    expect(c.delta.foldMin).toBeCloseTo(-0.1, 12);
    // within fold 0 the broken pair is drawn Binomial(10, 0.1) times: P(0) = 0.35 -> high = 0; 2.5% tail at 3 draws
    expect(c.delta.bootstrap.high).toBe(0);
    expect(c.delta.bootstrap.low).toBeGreaterThanOrEqual(-0.04);
    expect(c.delta.bootstrap.low).toBeLessThanOrEqual(-0.02);
    const again = compareVerification(scores, variant, same, { resamples: 2000, seed: 7 });
    expect(again.delta.bootstrap).toEqual(c.delta.bootstrap);
  });
  it('with every pair counted once, the weighted k-fold mean is the k-fold accuracy (ties and both fold modes)', () => {
    const rand = mulberry32(3);
    for (const foldMode of ['lfw-sets', 'consecutive'] as const) {
      // overlapping scores rounded to 0.01, so many ties
      const s = range(300, (i) => Math.round(((i % 2 ? 0.55 : 0.35) + 0.25 * (rand() - 0.5)) * 100) / 100);
      const sm = Array.from({ length: 300 }, (_, i) => i % 2 === 1);
      const folds = assignFolds(sm, 10, foldMode);
      const v = verification(s, sm, { foldMode });
      expect(countedKFoldMean(preparePairs(s, sm), folds, 10, new Array(300).fill(1))).toBeCloseTo(v.kFold.accuracyMean, 12);
    }
  });
  it('the interval re-chooses fold thresholds per resample: wider than with thresholds held fixed where they are unstable', () => {
    const rand = mulberry32(11);
    const n = 400;
    const sm = Array.from({ length: n }, (_, i) => i % 2 === 1);
    const ref = range(n, (i) => (sm[i] ? 0.55 : 0.4) + 0.2 * (rand() - 0.5));
    const vari = ref.map((v) => v + 0.03 * (rand() - 0.5)); // a variant that moves every score a little
    const c = compareVerification(ref, vari, sm, { resamples: 400, seed: 5 });
    expect(c.delta.bootstrap.thresholdsRechosen).toBe(true);
    expect(c.delta.bootstrap.low).toBeLessThanOrEqual(c.delta.delta);
    expect(c.delta.bootstrap.high).toBeGreaterThanOrEqual(c.delta.delta);
    // the fixed-threshold bootstrap (each pair keeps the outcome its fold's threshold gave it), written out here
    const folds = assignFolds(sm, 10, 'lfw-sets');
    const outcomes = (scores: number[]) => {
      const out = new Array<number>(n);
      const perFold = verification(scores, sm, { fold: folds }).kFold.perFold;
      for (let i = 0; i < n; i++) out[i] = (scores[i]! > perFold[folds[i]!]!.threshold ? 1 : 0) === (sm[i] ? 1 : 0) ? 1 : 0;
      return out;
    };
    const rr = outcomes(ref);
    const rv = outcomes(vari);
    const members = Array.from({ length: 10 }, (_, f) => range(n, (i) => i).filter((i) => folds[i] === f));
    const r2 = mulberry32(5);
    const boots = range(400, () => members.reduce((sum, m) => {
      let d = 0;
      for (let j = 0; j < m.length; j++) { const i = m[Math.floor(r2() * m.length)]!; d += rv[i]! - rr[i]!; }
      return sum + d / m.length;
    }, 0) / 10).sort((a, b) => a - b);
    const fixedWidth = boots[389]! - boots[10]!;
    expect(c.delta.bootstrap.high - c.delta.bootstrap.low).toBeGreaterThan(fixedWidth);
  });
  it('refuses mismatched score lists', () => {
    expect(() => compareVerification(scores, scores.slice(1), same)).toThrow(/variantScores/);
  });
});

describe('edge cases found by mutation testing', () => {
  it('lfw-sets needs k pairs of one class only: 10 same + 3 different still make 10 folds', () => {
    const same = [...new Array(10).fill(true), false, false, false];
    expect(Array.from(assignFolds(same, 10, 'lfw-sets'))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]);
  });
  it('when "everything same" is strictly best, the best threshold lies below the lowest score', () => {
    // same 0.1, same 0.2, different 0.3: below 0.1 gets 2 of 3 right, every higher threshold at most 1
    const scores = [0.1, 0.2, 0.3];
    const same = [true, true, false];
    const v = verification(scores, same, { folds: 2 });
    expect(v.bestThreshold.accuracy).toBeCloseTo(2 / 3, 15);
    expect(v.bestThreshold.threshold).toBeCloseTo(0.1 - 1e-6, 15);
    // the reported accuracy is the threshold's own accuracy
    const right = scores.filter((s, i) => (s > v.bestThreshold.threshold) === same[i]).length;
    expect(right / 3).toBe(v.bestThreshold.accuracy);
  });
  it('countedKFoldMean weighs each pair by its count, in training and in testing', () => {
    // fold 0: same 0.45, different 0.1; fold 1: same 0.4 (counted 3 times), different 0.5, same 0.6
    const p = preparePairs([0.45, 0.1, 0.4, 0.5, 0.6], [1, 0, 1, 0, 1]);
    const fold = [0, 0, 1, 1, 1];
    // fold 0's threshold from fold 1 counted: below 0.4 gets 3 + 1 of 5 right (best; unweighted it ties
    // with 0.55 and the tie would go to 0.55): 0.45 and 0.1 both right, accuracy 1.
    // fold 1's threshold from fold 0: 0.275; 0.4 (x3) and 0.6 right, 0.5 wrong: 4 of 5.
    expect(countedKFoldMean(p, fold, 2, [1, 1, 3, 1, 1])).toBeCloseTo((1 + 0.8) / 2, 15);
    // counted once each, fold 0's threshold is 0.55 (0.45 wrong): (0.5 + 2/3) / 2
    expect(countedKFoldMean(p, fold, 2, [1, 1, 1, 1, 1])).toBeCloseTo((0.5 + 2 / 3) / 2, 15);
  });
  it('TAR@FAR with exactly one false accept allowed is resolved', () => {
    const neg = range(100, (i) => i / 100); // 0 .. 0.99
    const t = tarAtFar([0.995, 0.985, 0.5, ...neg], [1, 1, 1, ...neg.map(() => 0)], 0.01);
    expect(t).toMatchObject({ threshold: 0.98, falseAccepts: 1, achievedFar: 0.01, resolved: true });
    expect(t.tar).toBeCloseTo(2 / 3, 15);
    expect(t.note).toBeUndefined();
  });
  it('TAR@FAR at FAR 1 accepts every pair', () => {
    const t = tarAtFar([0.9, 0.2, 0.5, 0.1], [1, 1, 0, 0], 1);
    expect(t).toMatchObject({ tar: 1, falseAccepts: 2, achievedFar: 1, resolved: true });
    expect(t.threshold).toBeCloseTo(0.1 - 1e-6, 15);
  });
  it('TAR@FAR counts far x negatives that rounds just below an integer as that integer', () => {
    expect(0.29 * 100).toBeLessThan(29); // 28.999999999999996
    const neg = range(100, (i) => i / 100);
    const t = tarAtFar([0.75, 0.65, ...neg], [1, 1, ...neg.map(() => 0)], 0.29);
    // 29 false accepts allowed: threshold = 30th highest negative 0.70
    expect(t).toMatchObject({ threshold: 0.7, falseAccepts: 29, achievedFar: 0.29, resolved: true, tar: 0.5 });
  });
  it('ROC drops the middle of vertical and horizontal runs', () => {
    // two same pairs on top, then two different ones: (0,0) (0,.5) (0,1) (.5,1) (1,1)
    const r = rocCurve([0.9, 0.85, 0.8, 0.7], [1, 1, 0, 0]);
    expect(r.points.map((q) => [q.fpr, q.tpr])).toEqual([[0, 0], [0, 1], [1, 1]]);
    expect(r.auc).toBe(1);
  });
  it('ROC thinning takes the nearest corner (rounded index)', () => {
    const n = 400;
    const r = rocCurve(range(n, (i) => i / n), range(n, (i) => i % 2), 4);
    // 401 corners, step 400/3: indices 0, 133, 267, 400. After j pairs from the top (i = 399 down to 400 - j),
    // corner 133 has 67 same / 66 different, corner 267 has 134 same / 133 different
    expect(r.points.map((q) => [q.fpr, q.tpr])).toEqual([[0, 0], [66 / 200, 67 / 200], [133 / 200, 134 / 200], [1, 1]]);
  });
  it('a NaN score ranks below every real cosine, even negative ones', () => {
    // the NaN same pair must sort below the different pair at -0.5
    expect(rocCurve([NaN, -0.5], [1, 0]).auc).toBe(0);
    const v = verification([NaN, 0.9, -0.5, -0.9], [1, 1, 0, 0], { folds: 2 });
    expect(v.bestThreshold.accuracy).toBe(0.75);
  });
});
