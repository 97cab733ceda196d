/**
 * Accuracy gates: the thresholds a variant must meet before it may serve, with their defaults in ONE
 * object (issue 4's accuracy rows), and the function that checks measured results against them and
 * explains the verdict in sentences a reviewer can read without the code.
 *
 * A gate whose metric is absent is `skipped` when the measurement is optional (no --pairs, so no
 * verification; a detector without keypoints) and `fail` when it is essential (a recognizer report with
 * no cosine summary, a detector report whose reference found no faces): missing evidence never passes.
 * Comparisons allow 1e-9 of floating-point slack so that, e.g., an accuracy delta of exactly -0.2 pp
 * computed as -0.20000000000000018 still meets a -0.2 pp gate.
 */

import { pp as signedPp } from '../report/format.js';

/** Every gate threshold. Units are in the names: cosines and rates as fractions, the delta in pp. */
export interface GateThresholds {
  recognizer: {
    /** Mean per-face cosine, reference vs variant embedding. */
    minMeanCosine: number;
    /** Lowest per-face cosine. */
    minMinCosine: number;
    /** k-fold verification accuracy, variant minus reference, in percentage points. */
    minAccuracyDeltaPp: number;
  };
  detector: {
    /** Share of reference faces the variant finds at IoU >= 0.5. */
    minRecall: number;
    /** Mean keypoint error as a fraction of the reference box size sqrt(w x h). */
    maxKeypointError: number;
  };
}

/** The defaults: issue 4's accuracy rows. Change them per run with the `--gate-*` flags. */
export const DEFAULT_GATES: GateThresholds = {
  recognizer: { minMeanCosine: 0.995, minMinCosine: 0.97, minAccuracyDeltaPp: -0.2 },
  detector: { minRecall: 0.995, maxKeypointError: 0.02 },
};

export type GateStatus = 'pass' | 'fail' | 'skipped';

export interface GateCheck {
  /** Stable id, e.g. `recognizer.minMeanCosine` (the threshold's path). */
  id: string;
  status: GateStatus;
  measured: number | null;
  threshold: number;
  comparator: '>=' | '<=';
  /** One readable sentence with the measured value and the threshold. */
  sentence: string;
}

export interface GateResult {
  pass: boolean;
  /** Sentences of the failed checks (empty when pass). */
  reasons: string[];
  /** Every check, passed, failed or skipped. */
  checks: GateCheck[];
  thresholds: GateThresholds;
}

/** The parts of a report the gates read; a full Report satisfies this shape. */
export interface GateInput {
  role: 'recognizer' | 'detector' | 'generic';
  recognizer?: {
    cosine: { count: number; mean: number; min: number };
    verification?: { skippedPairs?: number; delta: { reference: number; variant: number; delta: number; bootstrap: { low: number; high: number; confidence: number } } } | null;
  } | null;
  detector?: {
    vsReference: {
      images: number;
      iouThreshold: number;
      referenceFaces: number;
      matched: number;
      recall: number | null;
      keypointError: { faces: number; mean: number } | null;
      keypointsLost?: number;
    };
  } | null;
}

const SLACK = 1e-9;

/**
 * Show `value` with enough decimals that it does not print the same as `threshold` when they differ
 * (0.99499996 must not read "0.99500 is below 0.995").
 */
function shown(value: number, threshold: number, digits: number): string {
  let d = digits;
  while (d < 10 && value !== threshold && value.toFixed(d) === threshold.toFixed(d)) d++;
  return value.toFixed(d);
}

const pct = (x: number, t: number): string => `${shown(x * 100, t * 100, 2)}%`;

function check(id: string, measured: number | null, threshold: number, comparator: '>=' | '<=', texts: { pass: string; fail: string; missing: string }, missingFails: boolean): GateCheck {
  if (measured === null) return { id, status: missingFails ? 'fail' : 'skipped', measured, threshold, comparator, sentence: texts.missing };
  const ok = comparator === '>=' ? measured >= threshold - SLACK : measured <= threshold + SLACK;
  // a pass only by the floating-point slack says so (it read "0.994999999 ..., meeting the gate of at least 0.995")
  const bySlack = ok && (comparator === '>=' ? measured < threshold : measured > threshold);
  return { id, status: ok ? 'pass' : 'fail', measured, threshold, comparator, sentence: ok ? `${texts.pass}${bySlack ? ` It differs from the gate by ${Math.abs(measured - threshold).toExponential(1)}, floating-point rounding, and counts as equal.` : ''}` : texts.fail };
}

function recognizerChecks(input: GateInput, t: GateThresholds['recognizer']): GateCheck[] {
  const cos = input.recognizer?.cosine ?? null;
  const n = cos ? `${cos.count} faces` : '';
  const missingCos = (gate: string) => `No reference-vs-variant embeddings were compared, so the ${gate} gate cannot pass; evaluate on held-apart faces (--faces).`;
  const checks = [
    check('recognizer.minMeanCosine', cos?.mean ?? null, t.minMeanCosine, '>=', {
      pass: `Mean cosine between reference and variant embeddings is ${shown(cos?.mean ?? 0, t.minMeanCosine, 5)} over ${n}, meeting the gate of at least ${t.minMeanCosine}.`,
      fail: `Mean cosine between reference and variant embeddings is ${shown(cos?.mean ?? 0, t.minMeanCosine, 5)} over ${n}, below the gate of ${t.minMeanCosine}.`,
      missing: missingCos(`mean-cosine (at least ${t.minMeanCosine})`),
    }, true),
    check('recognizer.minMinCosine', cos?.min ?? null, t.minMinCosine, '>=', {
      pass: `Lowest per-face cosine is ${shown(cos?.min ?? 0, t.minMinCosine, 5)}, meeting the gate of at least ${t.minMinCosine}.`,
      fail: `Lowest per-face cosine is ${shown(cos?.min ?? 0, t.minMinCosine, 5)}, below the gate of ${t.minMinCosine}: at least one face embeds noticeably differently.`,
      missing: missingCos(`lowest-cosine (at least ${t.minMinCosine})`),
    }, true),
  ];
  const d = input.recognizer?.verification?.delta ?? null;
  const pp = d ? d.delta * 100 : null;
  // pairs dropped for both models keep the delta fair, but the sentence must not hide them
  const skipped = input.recognizer?.verification?.skippedPairs ?? 0;
  const signed = (x: number) => signedPp(x).replace(/ pp$/, '');
  const ctx = d
    ? `(${(d.reference * 100).toFixed(2)}% -> ${(d.variant * 100).toFixed(2)}%, ${Math.round(d.bootstrap.confidence * 100)}% interval ${signed(d.bootstrap.low)} to ${signed(d.bootstrap.high)} pp${skipped ? `; ${skipped} pair(s) with no face found left out for both models` : ''})`
    : '';
  // the gate judges the measured change; where its interval reaches past the gate, the sentence says so
  const reach = d && pp !== null && d.bootstrap.low * 100 < t.minAccuracyDeltaPp - SLACK && pp >= t.minAccuracyDeltaPp - SLACK
    ? ` The gate judges the measured change; its interval reaches below the gate, so a rerun on other pairs could fail it.`
    : '';
  checks.push(check('recognizer.minAccuracyDeltaPp', pp, t.minAccuracyDeltaPp, '>=', {
    pass: `10-fold verification accuracy changed by ${shown(pp ?? 0, t.minAccuracyDeltaPp, 2)} pp ${ctx}, meeting the gate of at least ${t.minAccuracyDeltaPp} pp.${reach}`,
    fail: `10-fold verification accuracy changed by ${shown(pp ?? 0, t.minAccuracyDeltaPp, 2)} pp ${ctx}, below the gate of ${t.minAccuracyDeltaPp} pp.`,
    missing: 'Verification accuracy was not measured (no --pairs file), so the accuracy-delta gate was skipped.',
  }, false));
  return checks;
}

function detectorChecks(input: GateInput, t: GateThresholds['detector']): GateCheck[] {
  const v = input.detector?.vsReference ?? null;
  const missingRecall = !v
    ? 'No variant-vs-reference detections were compared, so the recall gate cannot pass; evaluate on photos (--faces).'
    : `The reference model found no faces on the ${v.images} evaluation photos, so recall cannot be measured and the gate cannot pass; evaluate on photos with faces.`;
  const of = v ? `(${v.matched} of ${v.referenceFaces} reference faces)` : '';
  const iouAt = v ? v.iouThreshold : 0.5;
  const kp = v?.keypointError ?? null;
  const lost = v?.keypointsLost ?? 0;
  return [
    check('detector.minRecall', v?.recall ?? null, t.minRecall, '>=', {
      pass: `The variant finds ${pct(v?.recall ?? 0, t.minRecall)} of the reference's faces at IoU >= ${iouAt} ${of}, meeting the gate of at least ${(t.minRecall * 100).toFixed(2)}%.`,
      fail: `The variant finds ${pct(v?.recall ?? 0, t.minRecall)} of the reference's faces at IoU >= ${iouAt} ${of}, below the gate of ${(t.minRecall * 100).toFixed(2)}%.`,
      missing: missingRecall,
    }, true),
    lost ? {
      // faces whose keypoints the variant lost are no error of 0: without this the gate passed on the
      // comparable faces, or was skipped when none were
      id: 'detector.maxKeypointError', status: 'fail', measured: kp?.mean ?? null, threshold: t.maxKeypointError, comparator: '<=',
      sentence: `The variant gives no keypoints (or another number of them) for ${lost} of the ${v!.matched} matched faces the reference gives keypoints for, so faces cannot be aligned from its detections; the keypoint gate fails.`,
    } : check('detector.maxKeypointError', kp?.mean ?? null, t.maxKeypointError, '<=', {
      pass: `Mean keypoint error is ${shown(kp?.mean ?? 0, t.maxKeypointError, 4)} of the face box size over ${kp?.faces ?? 0} matched faces, within the gate of at most ${t.maxKeypointError}.`,
      fail: `Mean keypoint error is ${shown(kp?.mean ?? 0, t.maxKeypointError, 4)} of the face box size over ${kp?.faces ?? 0} matched faces, above the gate of ${t.maxKeypointError}.`,
      missing: 'No matched faces had keypoints on both sides, so the keypoint gate was skipped.',
    }, false),
  ];
}

/**
 * Check measured results against the thresholds and return the verdict with one sentence per check.
 * Recognizer reports are held to the recognizer gates, detector reports to the detector gates; a generic
 * (non-face) model has no face gates and passes with no checks (its report carries the warning instead).
 */
export function evaluateGates(input: GateInput, thresholds: GateThresholds = DEFAULT_GATES): GateResult {
  const checks = input.role === 'recognizer' ? recognizerChecks(input, thresholds.recognizer)
    : input.role === 'detector' ? detectorChecks(input, thresholds.detector)
      : [];
  // two gates can fail for one cause (no embeddings compared): say it once
  const reasons = [...new Set(checks.filter((c) => c.status === 'fail').map((c) => c.sentence))];
  return { pass: reasons.length === 0, reasons, checks, thresholds: structuredClone(thresholds) };
}
