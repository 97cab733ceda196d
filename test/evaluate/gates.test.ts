import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GATES, evaluateGates, type GateInput } from '../../pipeline/evaluate/gates.js';
import { addEvaluationSetOptions, addGateOptions, checkRoleFlags, gateThresholdsFromOptions, roleFlagsGiven } from '../../pipeline/evaluate/gate-options.js';
import { isFaceoptError } from '../../pipeline/errors.js';

const recognizer = (mean: number, min: number, delta: { reference: number; variant: number } | null): GateInput => ({
  role: 'recognizer',
  recognizer: {
    cosine: { count: 1549, mean, min },
    verification: delta ? { delta: { ...delta, delta: delta.variant - delta.reference, bootstrap: { low: -0.004, high: 0.001, confidence: 0.95 } } } : null,
  },
});

describe('recognizer gates', () => {
  it('pass with one sentence per check and no reasons', () => {
    const g = evaluateGates(recognizer(0.9987, 0.985, { reference: 0.993, variant: 0.992 }));
    expect(g.pass).toBe(true);
    expect(g.reasons).toEqual([]);
    expect(g.checks.map((c) => [c.id, c.status])).toEqual([
      ['recognizer.minMeanCosine', 'pass'], ['recognizer.minMinCosine', 'pass'], ['recognizer.minAccuracyDeltaPp', 'pass'],
    ]);
    expect(g.checks[0]!.sentence).toBe('Mean cosine between reference and variant embeddings is 0.99870 over 1549 faces, meeting the gate of at least 0.995.');
    expect(g.checks[2]!.measured).toBeCloseTo(-0.1, 10);
    expect(g.thresholds).toEqual(DEFAULT_GATES);
  });
  it('fail with readable reasons that carry the measured value and the threshold', () => {
    const g = evaluateGates(recognizer(0.981, 0.9, { reference: 0.993, variant: 0.987 }));
    expect(g.pass).toBe(false);
    expect(g.reasons).toEqual([
      'Mean cosine between reference and variant embeddings is 0.98100 over 1549 faces, below the gate of 0.995.',
      'Lowest per-face cosine is 0.90000, below the gate of 0.97: at least one face embeds noticeably differently.',
      '10-fold verification accuracy changed by -0.60 pp (99.30% -> 98.70%, 95% interval -0.40 to +0.10 pp), below the gate of -0.2 pp.',
    ]);
  });
  it('the accuracy sentence says how many pairs were left out for want of a face', () => {
    const input = recognizer(0.999, 0.99, { reference: 0.993, variant: 0.992 });
    input.recognizer!.verification!.skippedPairs = 7;
    expect(evaluateGates(input).checks[2]!.sentence).toBe(
      '10-fold verification accuracy changed by -0.10 pp (99.30% -> 99.20%, 95% interval -0.40 to +0.10 pp; 7 pair(s) with no face found left out for both models), meeting the gate of at least -0.2 pp. The gate judges the measured change; its interval reaches below the gate, so a rerun on other pairs could fail it.',
    );
  });
  it('a delta of exactly the gate passes despite floating-point noise', () => {
    const input = recognizer(0.999, 0.99, { reference: 0.993, variant: 0.991 });
    expect(0.991 - 0.993).toBeLessThan(-0.002); // the noise this guards against
    const g = evaluateGates(input);
    expect(g.pass).toBe(true);
    // and its sentence says why a value printed just past the gate meets it
    expect(g.checks.find((c) => c.id === 'recognizer.minAccuracyDeltaPp')!.sentence).toMatch(/meeting the gate of at least -0\.2 pp\..* It differs from the gate by \d\.\de-\d+, floating-point rounding, and counts as equal\.$/);
    expect(g.checks.find((c) => c.id === 'recognizer.minMeanCosine')!.sentence).not.toMatch(/rounding/);
  });
  it('never prints a failing value as if it equalled the threshold', () => {
    const g = evaluateGates(recognizer(0.99499996, 0.99, null));
    expect(g.pass).toBe(false);
    expect(g.reasons[0]).toContain('is 0.9949999');
  });
  it('verification is optional (skipped) but the cosine evidence is not', () => {
    const skipped = evaluateGates(recognizer(0.999, 0.99, null));
    expect(skipped.pass).toBe(true);
    expect(skipped.checks[2]).toMatchObject({ status: 'skipped', measured: null });
    expect(skipped.checks[2]!.sentence).toMatch(/no --pairs file/);
    const none = evaluateGates({ role: 'recognizer', recognizer: null });
    expect(none.pass).toBe(false);
    // both cosine gates fail for that one cause, each naming itself (one sentence printed twice read as a
    // duplicate, and "1 of 2 gates failed" undercounted)
    expect(none.reasons).toEqual([
      'No reference-vs-variant embeddings were compared, so the mean-cosine (at least 0.995) gate cannot pass; evaluate on held-apart faces (--faces).',
      'No reference-vs-variant embeddings were compared, so the lowest-cosine (at least 0.97) gate cannot pass; evaluate on held-apart faces (--faces).',
    ]);
    expect(none.checks.filter((c) => c.status === 'fail')).toHaveLength(2);
  });
});

describe('detector gates', () => {
  const input = (recall: number | null, kp: number | null, referenceFaces = 200): GateInput => ({
    role: 'detector',
    detector: { vsReference: { images: 10, iouThreshold: 0.5, referenceFaces, matched: Math.round((recall ?? 0) * referenceFaces), recall, keypointError: kp === null ? null : { faces: 198, mean: kp } } },
  });
  it('pass and fail on recall and keypoint error', () => {
    expect(evaluateGates(input(1, 0.004)).pass).toBe(true);
    const g = evaluateGates(input(0.99, 0.031));
    expect(g.reasons).toEqual([
      "The variant finds 99.00% of the reference's faces at IoU >= 0.5 (198 of 200 reference faces), below the gate of 99.50%.",
      'Mean keypoint error is 0.0310 of the face box size over 198 matched faces, above the gate of 0.02.',
    ]);
  });
  it('a variant that lost the keypoints fails the keypoint gate (it was skipped, so the report passed)', () => {
    const lost = input(1, null);
    lost.detector!.vsReference.keypointsLost = 200;
    const g = evaluateGates(lost);
    expect(g.pass).toBe(false);
    expect(g.checks[1]).toMatchObject({ id: 'detector.maxKeypointError', status: 'fail' });
    expect(g.reasons).toEqual(['The variant gives no keypoints (or another number of them) for 200 of the 200 matched faces the reference gives keypoints for, so faces cannot be aligned from its detections; the keypoint gate fails.']);
    // some faces comparable, some lost: still a failure, whatever the error on the comparable ones
    const some = input(1, 0.001);
    some.detector!.vsReference.keypointsLost = 2;
    expect(evaluateGates(some).checks[1]!.status).toBe('fail');
  });
  it('a reference that found no faces cannot pass', () => {
    const g = evaluateGates(input(null, null, 0));
    expect(g.pass).toBe(false);
    expect(g.reasons).toEqual(['The reference model found no faces on the 10 evaluation photos, so recall cannot be measured and the gate cannot pass; evaluate on photos with faces.']);
    expect(g.checks[1]!.status).toBe('skipped');
  });
  it('generic models have no face gates', () => {
    expect(evaluateGates({ role: 'generic' })).toMatchObject({ pass: true, reasons: [], checks: [] });
  });
});

describe('--gate-* flags', () => {
  const parse = (args: string[]): Record<string, unknown> => {
    const cmd = addGateOptions(new Command('x').exitOverride().configureOutput({ writeErr: () => {} }));
    cmd.parse(args, { from: 'user' });
    return cmd.opts();
  };
  it('override only what is given and never mutate the defaults', () => {
    const t = gateThresholdsFromOptions(parse(['--gate-min-cosine', '0.9', '--gate-accuracy-delta', '-0.5', '--gate-recall', '0.98']));
    expect(t.recognizer).toEqual({ minMeanCosine: 0.995, minMinCosine: 0.9, minAccuracyDeltaPp: -0.5 });
    expect(t.detector).toEqual({ minRecall: 0.98, maxKeypointError: 0.02 });
    expect(DEFAULT_GATES.recognizer.minMinCosine).toBe(0.97);
    expect(gateThresholdsFromOptions(parse([]))).toEqual(DEFAULT_GATES);
  });
  it('refuse bad values naming the flag and the range', () => {
    for (const [args, text] of [
      [['--gate-recall', '1.5'], 'Expected number between 0 and 1 for --gate-recall but received 1.5.'],
      [['--gate-mean-cosine', 'high'], 'Expected number between -1 and 1 for --gate-mean-cosine but received high.'],
    ] as const) {
      try {
        gateThresholdsFromOptions(parse([...args]));
        expect.unreachable();
      } catch (e) {
        expect(isFaceoptError(e, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
        expect((e as Error).message).toBe(text);
      }
    }
  });
  it('show their defaults in the help', () => {
    const help = addGateOptions(new Command('x')).helpInformation();
    expect(help).toContain('--gate-keypoint-error <value>');
    expect(help).toContain('(default 0.995)');
  });
});

describe('role-only evaluation flags', () => {
  const parse = (argv: string[]) => {
    const cmd = addGateOptions(addEvaluationSetOptions(new Command('x').exitOverride()));
    cmd.parse(argv, { from: 'user' });
    return cmd.opts();
  };
  it('lists the flags given, not those left out (commander leaves a repeatable flag undefined) nor defaults', () => {
    expect(roleFlagsGiven(parse([]))).toEqual([]);
    expect(roleFlagsGiven(parse(['--boxes', 'a.xml', '--boxes', 'b.xml', '--gate-min-cosine', '0.9', '--detector', 'd.onnx']))).toEqual([
      { flag: '--boxes', role: 'detector' }, { flag: '--detector', role: 'recognizer' }, { flag: '--gate-min-cosine', role: 'recognizer' },
    ]);
    expect(roleFlagsGiven({ boxes: [], faceFree: [] })).toEqual([]);
  });
  it('refuses the other role\'s flags, naming the command; a model that is neither refuses all', () => {
    const flags = roleFlagsGiven(parse(['--pairs', 'p.tsv', '--gate-recall', '0.9']));
    expect(() => checkRoleFlags('detector', flags.filter((f) => f.role === 'detector'))).not.toThrow();
    const refused = (role: 'detector' | 'recognizer' | 'generic', cmd?: string) => { try { checkRoleFlags(role, flags, cmd); } catch (e) { expect(isFaceoptError(e, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true); return (e as Error).message; } return null; };
    expect(refused('detector', 'optimize --int8')).toBe('Expected only detector settings (the model is a detector) for optimize --int8 but received --pairs (recognizers only).');
    expect(refused('recognizer')).toBe('Expected only recognizer settings (the model is a recognizer) for evaluate but received --gate-recall (detectors only).');
    expect(refused('generic')).toMatch(/^Expected no face-evaluation settings .* but received --pairs \(recognizers only\), --gate-recall \(detectors only\)\.$/);
  });
});

describe('edge cases found by mutation testing', () => {
  it('a value exactly at the gate passes, printed as the gate and without a rounding note', () => {
    const g = evaluateGates(recognizer(0.995, 0.99, null));
    expect(g.checks[0]!.status).toBe('pass');
    expect(g.checks[0]!.sentence).toBe('Mean cosine between reference and variant embeddings is 0.99500 over 1549 faces, meeting the gate of at least 0.995.');
  });
  it('an at-most gate allows the floating-point slack too', () => {
    const kp = 0.07 - 0.05;
    expect(kp).toBeGreaterThan(0.02); // 0.020000000000000004
    const g = evaluateGates({ role: 'detector', detector: { vsReference: { images: 1, iouThreshold: 0.5, referenceFaces: 10, matched: 10, recall: 1, keypointError: { faces: 10, mean: kp } } } });
    expect(g.checks[1]).toMatchObject({ id: 'detector.maxKeypointError', status: 'pass' });
    expect(g.checks[1]!.sentence).toMatch(/counts as equal\.$/);
    expect(g.pass).toBe(true);
  });
});
