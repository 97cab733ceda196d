/**
 * Mutation-audit tests of pipeline/report: io.ts (verdict consistency rules, report.json text, loading a
 * .json path, newest report, stale report removal), schema.ts (each checker's edge), format.ts (the
 * shared number formats) and summary.ts (key numbers, verdict line, terminal text, comparison notes).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { farLabel, mib, pp, ratioRange } from '../../pipeline/report/format.js';
import { findNewestReport, gatesInconsistency, loadReport, removeReportUnlessFor, reportInconsistency, stringifyReport, validateReport, writeReport } from '../../pipeline/report/io.js';
import { floatLayersText, keyNumbers, listsFloatLayers, shownSpeedup, terminalCompare, terminalText, verdictLine } from '../../pipeline/report/summary.js';
import type { Report } from '../../pipeline/report/types.js';
import { exampleDetectorReport, exampleRecognizerReport } from './example.js';

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-report-audit-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
type Gates = Report['gates'];
type Check = Gates['checks'][number];

/** A consistent passing verdict with one check. */
function gatesWith(check: Partial<Check>, extra: Partial<Gates> = {}): Gates {
  const base = clone(exampleRecognizerReport().gates);
  const c: Check = { id: 'recognizer.minMeanCosine', status: 'pass', measured: 0.999, threshold: base.thresholds.recognizer.minMeanCosine, comparator: '>=', sentence: 's', ...check };
  return { ...base, pass: c.status !== 'fail', reasons: c.status === 'fail' ? ['r'] : [], checks: [c], ...extra };
}

function schemaError(value: unknown): string {
  try {
    validateReport(value, 'r.json');
  } catch (e) {
    expect(isFaceoptError(e, 'FACEOPT_ERR_REPORT')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('validateReport accepted it');
}

describe('gatesInconsistency', () => {
  it('a check whose threshold differs from gates.thresholds is named', () => {
    const g = gatesWith({ threshold: 0.5, measured: 0.9 });
    expect(gatesInconsistency(g)).toContain('compares with threshold 0.5, but gates.thresholds says');
  });

  it('a check that measured nothing cannot pass; skipped it is fine', () => {
    expect(gatesInconsistency(gatesWith({ measured: null, status: 'pass' }))).toContain('says pass but measured nothing');
    expect(gatesInconsistency(gatesWith({ measured: null, status: 'skipped' }))).toBeNull();
  });

  it('a value exactly at its threshold passes, for >= and for <=', () => {
    const t = exampleRecognizerReport().gates.thresholds;
    expect(gatesInconsistency(gatesWith({ measured: t.recognizer.minMeanCosine }))).toBeNull();
    const det = clone(exampleDetectorReport().gates);
    const kp = det.checks.find((c) => c.comparator === '<=')!;
    const g: Gates = { ...det, pass: true, reasons: [], checks: [{ ...kp, status: 'pass', measured: kp.threshold }] };
    expect(gatesInconsistency(g)).toBeNull();
    expect(gatesInconsistency({ ...g, checks: [{ ...kp, status: 'pass', measured: kp.threshold + 1e-6 }] })).toContain(`is not <= ${kp.threshold}`);
    expect(gatesInconsistency(gatesWith({ measured: t.recognizer.minMeanCosine - 1e-6 }))).toContain('is not >=');
  });

  it('a check marked skipped although it measured a value is named', () => {
    expect(gatesInconsistency(gatesWith({ measured: 0.999, status: 'skipped' }))).toContain('says skipped but its measured 0.999');
    expect(gatesInconsistency(gatesWith({ measured: 0.5, status: 'skipped' }))).toContain('says skipped but its measured 0.5 is not >=');
  });

  it('a pass with reasons for failing, and a fail with no failed check, are named', () => {
    expect(gatesInconsistency(gatesWith({}, { reasons: ['too slow'] }))).toContain('gives 1 reason(s) for failing');
    expect(gatesInconsistency(gatesWith({}, { pass: false, reasons: ['x'] }))).toBe('gates.pass is false but no check failed');
  });
});

describe('reportInconsistency', () => {
  it('a report holding both results, or a generic report holding any, contradicts itself', () => {
    const rec = exampleRecognizerReport();
    const det = exampleDetectorReport();
    expect(reportInconsistency({ ...rec, detector: det.detector })).toBe('it holds both recognizer and detector results');
    expect(reportInconsistency({ ...rec, role: 'generic' })).toContain('its role is generic but it holds recognizer results');
    expect(reportInconsistency({ ...rec, role: 'generic', recognizer: null })).toBeNull();
  });
});

describe('report.json text and loading', () => {
  it('fields left undefined are not written as null (they stay absent)', () => {
    const r = exampleRecognizerReport();
    const withUndef = { ...r, speed: { ...r.speed!, batch1TimedAt: undefined } } as Report;
    const parsed = JSON.parse(stringifyReport(withUndef));
    expect('batch1TimedAt' in parsed.speed).toBe(false);
    expect(parsed).toEqual(JSON.parse(JSON.stringify(withUndef)));
  });

  it('loadReport accepts a path to a .json file of any name', async () => {
    const dir = path.join(tmp, 'named');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'mine.json');
    await writeFile(file, stringifyReport(exampleDetectorReport()));
    expect((await loadReport(file)).role).toBe('detector');
  });

  it('a JSON array is not a report', () => {
    expect(schemaError([1, 2])).toContain('it is not a JSON object');
  });

  it('findNewestReport breaks a tie on time by the later folder name', async () => {
    const root = path.join(tmp, 'tie');
    const r = exampleDetectorReport();
    const when = new Date('2030-01-01T00:00:00Z');
    for (const n of ['b', 'c', 'a']) {
      await writeReport(path.join(root, n), r);
      await utimes(path.join(root, n, 'report.json'), when, when);
    }
    expect(await findNewestReport(root)).toBe(path.join(root, 'c'));
  });

  it('removeReportUnlessFor removes report.json with its renderings, and keeps a report of the same bytes', async () => {
    const dir = path.join(tmp, 'stale');
    const r = exampleDetectorReport();
    await writeReport(dir, r);
    expect(await removeReportUnlessFor(dir, r.variant.sha256)).toBe(false);
    expect((await readdir(dir)).sort()).toEqual(['report.html', 'report.json', 'report.md']);
    expect(await removeReportUnlessFor(dir, () => 'f'.repeat(64))).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('schema checkers', () => {
  const rec = (): Report => clone(exampleRecognizerReport());

  it('refuses NaN and infinities when writing (JSON would turn them into null)', async () => {
    const r = exampleRecognizerReport();
    const bad = { ...r, sizeRatio: Number.NaN };
    const e = await writeReport(path.join(tmp, 'nan'), bad).then(() => null, (err: unknown) => err);
    expect(isFaceoptError(e, 'FACEOPT_ERR_INTERNAL')).toBe(true);
    expect((e as Error).message).toContain('sizeRatio: expected a finite number');
    await expect(readdir(path.join(tmp, 'nan'))).rejects.toThrow();
  });

  it('integers must be whole and not negative', () => {
    const a = rec();
    a.recognizer!.cosine.count = -1;
    expect(schemaError(a)).toContain('recognizer.cosine.count: expected a non-negative integer, got -1');
    const b = rec();
    b.recognizer!.cosine.count = 1.5;
    expect(schemaError(b)).toContain('recognizer.cosine.count: expected a non-negative integer, got 1.5');
  });

  it('a nullable field may be null but not missing; an optional one may be missing but not null', () => {
    const a = rec() as unknown as Record<string, unknown>;
    delete a.speed;
    expect(schemaError(a)).toContain('speed: expected an object, got nothing (missing)');
    const b = rec();
    (b.speed as unknown as Record<string, unknown>).batch1TimedAt = null;
    expect(schemaError(b)).toContain('speed.batch1TimedAt: expected a non-negative integer, got null');
  });

  it('an input size is two integers; a config is an object, not an array', () => {
    const d = clone(exampleDetectorReport());
    (d.detector!.inputSize as unknown as number[]).push(3);
    expect(schemaError(d)).toContain('detector.inputSize: expected an array of 2, got an array');
    const r = rec();
    (r.provenance.calibration as unknown as Record<string, unknown>).config = [];
    expect(schemaError(r)).toContain('provenance.calibration.config: expected an object, got an array');
  });

  it('a histogram has one edge more than counts, and array elements are each checked', () => {
    const a = rec();
    a.recognizer!.cosine.histogram.edges.push(2);
    expect(schemaError(a)).toContain('recognizer.cosine.histogram.edges: expected');
    const b = rec();
    (b.warnings as unknown[]).push(7);
    expect(schemaError(b)).toContain('warnings[0]: expected a string, got 7');
  });
});

describe('number formats', () => {
  it('pp: signed, never -0.00', () => {
    expect(pp(-0.00001)).toBe('0.00 pp');
    expect(pp(0.0123)).toBe('+1.23 pp');
    expect(pp(-0.0035)).toBe('-0.35 pp');
  });

  it('ratioRange: one value when both ends print the same', () => {
    expect(ratioRange([1.001, 1.002])).toBe('1.00x');
    expect(ratioRange([2.25, 1.5, 1.75])).toBe('1.50x-2.25x');
  });

  it('mib counts 1048576 bytes to the MiB; farLabel drops the + of the exponent', () => {
    expect(mib(1.5 * 1048576)).toBe('1.50 MiB');
    expect(farLabel(1)).toBe('1e0');
    expect(farLabel(0.001)).toBe('1e-3');
  });
});

describe('summary', () => {
  it('one block: the speed-up is that block and the row says p50, not a median of 1 block', () => {
    expect(shownSpeedup(2, [3])).toBe(3);
    expect(shownSpeedup(2, [])).toBe(2);
    const r = clone(exampleRecognizerReport());
    r.speed!.blockSpeedups = { batch1: [2.5], batch8: null };
    const row = keyNumbers(r).find((k) => k.id === 'speedup.batch1')!;
    expect(row.value).toBe(2.5);
    expect(row.text).toMatch(/^2\.50x \(p50 /);
  });

  it('the TAR row is at the lowest target FAR that resolved to a TAR', () => {
    const r = clone(exampleRecognizerReport());
    const v = r.recognizer!.verification!;
    const row = (far: number, resolved: boolean, tar: number | null) => ({ ...v.variant.tarAtFar[0]!, far, resolved, tar });
    v.variant.tarAtFar = [row(1e-2, true, 0.95), row(1e-4, true, null), row(1e-3, true, 0.9), row(1e-5, false, null)];
    v.reference.tarAtFar = [row(1e-2, true, 0.96), row(1e-3, true, 0.91)];
    const tar = keyNumbers(r).find((k) => k.id.startsWith('tar.'))!;
    expect([tar.id, tar.value, tar.text]).toEqual(['tar.1e-3', 0.9, '91.00% -> 90.00%']);
  });

  it('lists at most five missed-face scores, then an ellipsis', () => {
    const d = clone(exampleDetectorReport());
    d.detector!.vsReference.missedScores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
    const text = keyNumbers(d).find((k) => k.id === 'detector.recall')!.text;
    expect(text).toContain('missed faces scored 0.900, 0.800, 0.700, 0.600, 0.500, ... by the reference');
  });

  it('an int8 variant lists layers kept float even when there are none', () => {
    const r = clone(exampleRecognizerReport());
    r.provenance.floatLayers = [];
    expect(listsFloatLayers(r)).toBe(true);
    expect(keyNumbers(r).find((k) => k.id === 'floatLayers')?.text).toBe('0');
    r.variant.precision = 'fp16';
    expect(listsFloatLayers(r)).toBe(false);
  });

  it('the verdict counts failed checks, not (deduplicated) reasons', () => {
    const r = clone(exampleRecognizerReport({ damage: 0.05 }));
    const failed = r.gates.checks.filter((c) => c.status === 'fail').length;
    expect(failed).toBeGreaterThan(1);
    r.gates.reasons = ['one reason for all'];
    expect(verdictLine(r)).toBe(`FAIL: ${failed} of ${r.gates.checks.length} accuracy gates failed`);
  });

  it('a single met gate still reads "all 1 met"', () => {
    const r = clone(exampleRecognizerReport());
    r.gates.checks = r.gates.checks.slice(0, 1);
    expect(verdictLine(r)).toBe('PASS: all 1 accuracy gates met');
  });

  it('terminalText removes OSC sequences and turns C1 controls and line separators into spaces', () => {
    expect(terminalText('a\u001b]0;evil title\u0007b')).toBe('ab');
    expect(terminalText('a\u009b31mb')).toBe('ab');
    expect(terminalText('a\u2028b\u0085c')).toBe('a b c');
  });

  it('floatLayersText puts the largest group first', () => {
    expect(floatLayersText([{ reason: 'excluded by --exclude' }, { reason: 'float suffix' }, { reason: 'float suffix' }]))
      .toBe('3 (2 float tail, 1 excluded)');
  });

  describe('terminalCompare notes', () => {
    const pair = (edit: (b: Report) => void): string => {
      const a = clone(exampleRecognizerReport());
      const b = clone(exampleRecognizerReport());
      edit(b);
      return terminalCompare({ report: a, dir: 'A' }, { report: b, dir: 'B' });
    };

    it('the same reference timed 20 % apart is noted; 5 % apart is not', () => {
      expect(pair((b) => { b.speed!.reference.batch1.p50Ms *= 1.2; })).toContain('note: the same reference ran');
      expect(pair((b) => { b.speed!.reference.batch1.p50Ms *= 1.05; })).not.toContain('note: the same reference ran');
    });

    it('different references give no speed note (their timings are not of one file)', () => {
      const out = pair((b) => { b.reference.sha256 = 'd'.repeat(64); b.speed!.reference.batch1.p50Ms *= 2; });
      expect(out).not.toContain('note: the same reference ran');
      expect(out).toContain('measure against different references');
    });

    it('another split description means other data', () => {
      expect(pair((b) => { b.evaluationData.split.description = 'another split'; })).toContain('evaluated on different data');
      expect(pair(() => undefined)).not.toContain('evaluated on different data');
    });
  });
});

describe('loadReport of a written report', () => {
  it('reads back what writeReport wrote, byte for byte the same JSON value', async () => {
    const dir = path.join(tmp, 'back');
    const r = exampleRecognizerReport();
    await writeReport(dir, r);
    expect(JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(r)));
  });
});
