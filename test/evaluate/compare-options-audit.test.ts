/**
 * Defaults and option checks of compareVerification (bootstrap resamples, the interval's coverage) and
 * the range of the `--gate-keypoint-error` flag.
 */
import { describe, expect, it } from 'vitest';
import { gateThresholdsFromOptions } from '../../pipeline/evaluate/gate-options.js';
import { compareVerification } from '../../pipeline/evaluate/verification-compare.js';
import { isFaceoptError } from '../../pipeline/errors.js';

const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
// 10 sets of 3 same then 3 different pairs; the variant gets some pairs wrong that the reference gets right
const same = range(60, (i) => (i % 6 < 3 ? 1 : 0));
const scores = range(60, (i) => (same[i] ? 0.6 : 0.2) + ((i * 37) % 11) / 40);
const variant = scores.map((s, i) => (i % 5 === 0 ? s + (same[i] ? -0.4 : 0.4) : s));

describe('compareVerification options', () => {
  it('1000 resamples at 95% by default; the interval is the two tails of (1 - confidence) / 2 each', () => {
    const d = compareVerification(scores, variant, same).delta;
    expect(d.bootstrap).toMatchObject({ resamples: 1000, confidence: 0.95, seed: 1 });
    // at 50% coverage the interval runs from the 25th to the 75th percentile: not a single point
    const half = compareVerification(scores, variant, same, { confidence: 0.5, resamples: 200 }).delta.bootstrap;
    expect(half.low).toBeLessThan(half.high);
    expect(d.bootstrap.low).toBeLessThanOrEqual(half.low);
    expect(d.bootstrap.high).toBeGreaterThanOrEqual(half.high);
  });
  it('refuses a confidence outside 0.5..0.999, naming it', () => {
    for (const confidence of [1.5, 0.2]) {
      let err: unknown;
      try { compareVerification(scores, variant, same, { confidence, resamples: 10 }); } catch (e) { err = e; }
      expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT'), String(confidence)).toBe(true);
      expect((err as Error).message).toMatch(/for confidence/);
    }
  });
});

describe('--gate-keypoint-error', () => {
  it('takes any fraction of the face box from 0 to 1', () => {
    expect(gateThresholdsFromOptions({ gateKeypointError: '0.8' }).detector.maxKeypointError).toBe(0.8);
  });
});
