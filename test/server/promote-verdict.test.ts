/**
 * `faceopt promote` does not take a report's recorded verdict on trust: the verdict is recomputed from
 * the report's own gate checks (every check passed or skipped, each status agreeing with its measured
 * value and threshold), and a report whose `gates.pass` contradicts its checks is refused with
 * FACEOPT_ERR_REPORT naming the inconsistency (a hand-edited "pass": true on failed checks, or checks
 * edited to pass with values below their thresholds), or a role that contradicts the results it holds;
 * `faceopt report` shows either with a warning first.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../pipeline/fsutil.js';
import { gatesInconsistency, reportInconsistency } from '../../pipeline/report/io.js';
import type { Report } from '../../pipeline/report/types.js';
import { faceopt } from '../helpers/cli.js';
import { exampleDetectorReport, exampleRecognizerReport } from '../report/example.js';

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-promote-verdict-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

async function reportDir(name: string, report: Report): Promise<string> {
  const dir = path.join(tmp, 'reports', name);
  const model = path.join(tmp, 'models', `${name}.onnx`);
  await mkdir(dir, { recursive: true });
  await mkdir(path.dirname(model), { recursive: true });
  await writeFile(model, name);
  const r: Report = { ...report, variant: { ...report.variant, path: model, sha256: sha256(name), sizeBytes: name.length } };
  await writeFile(path.join(dir, 'report.json'), JSON.stringify(r, null, 2));
  return dir;
}

describe('gatesInconsistency', () => {
  it('accepts the verdicts evaluateGates writes, passing and failing', () => {
    for (const r of [exampleRecognizerReport(), exampleRecognizerReport({ damage: 0.05 }), exampleDetectorReport()]) expect(gatesInconsistency(r.gates)).toBeNull();
  });

  it('names a recorded pass that its failed checks contradict, and the reverse', () => {
    const bad = exampleRecognizerReport({ damage: 0.05 });
    expect(gatesInconsistency({ ...bad.gates, pass: true, reasons: [] })).toMatch(/gates\.pass is true but 2 of its 3 checks failed \(recognizer\.minMeanCosine/);
    const good = exampleRecognizerReport();
    expect(gatesInconsistency({ ...good.gates, pass: false })).toMatch(/gates\.pass is false but no check failed/);
  });

  it('names a check whose status contradicts its measured value and threshold', () => {
    const bad = exampleRecognizerReport({ damage: 0.05 });
    const edited = { ...bad.gates, pass: true, reasons: [], checks: bad.gates.checks.map((c) => ({ ...c, status: 'pass' as const })) };
    expect(gatesInconsistency(edited)).toMatch(/check recognizer\.minMeanCosine says pass but its measured 0\.9\d+ is not >= 0\.995/);
    const good = exampleRecognizerReport();
    const lowered = { ...good.gates, checks: good.gates.checks.map((c, i) => (i === 0 ? { ...c, threshold: 0.5 } : c)) };
    expect(gatesInconsistency(lowered)).toMatch(/recognizer\.minMeanCosine.*threshold 0\.5.*0\.995/);
  });
});

describe('faceopt promote checks the verdict against the checks', () => {
  it('refuses a report whose pass contradicts its failed checks (FACEOPT_ERR_REPORT, exit 65)', async () => {
    const bad = exampleRecognizerReport({ damage: 0.05 });
    const dir = await reportDir('rec.lying', { ...bad, gates: { ...bad.gates, pass: true, reasons: [] } });
    const r = faceopt(['promote', dir, '--manifest', path.join(tmp, 'manifest.json')]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/FACEOPT_ERR_REPORT/);
    expect(r.stderr).toMatch(/gates\.pass is true but/);
    // --allow-failed does not promote a report that contradicts itself either
    expect(faceopt(['promote', dir, '--allow-failed', '--manifest', path.join(tmp, 'manifest.json')]).code).toBe(65);
  });

  it('refuses a report whose role contradicts the results it holds (a recognizer report relabelled detector was promoted as the detector); report warns of either contradiction', async () => {
    const relabelled = await reportDir('rec.as.det', { ...exampleRecognizerReport(), role: 'detector' });
    const r = faceopt(['promote', relabelled, '--manifest', path.join(tmp, 'manifest3.json')]);
    expect(r.code).toBe(65);
    expect(r.stderr).toContain('its role is detector but it holds recognizer results');
    expect(reportInconsistency(exampleDetectorReport())).toBeNull();
    expect(reportInconsistency({ ...exampleDetectorReport(), role: 'generic' })).toMatch(/its role is generic but it holds detector results/);
    // `faceopt report` reads it, with the warning first (it printed "FAIL: 0 of 3 accuracy gates failed" as if nothing were wrong)
    const good = exampleRecognizerReport();
    const flipped = await reportDir('rec.flipped', { ...good, gates: { ...good.gates, pass: false } });
    for (const dir of [relabelled, flipped]) {
      const shown = faceopt(['report', dir]);
      expect(shown.code).toBe(0);
      expect(shown.stdout).toMatch(/^warning: this report contradicts itself \(.+\): its verdict cannot be trusted, and promote refuses it/);
    }
    expect(faceopt(['report', await reportDir('rec.plain', good)]).stdout).not.toContain('contradicts');
  });

  it('still promotes a consistent passing report', async () => {
    const dir = await reportDir('rec.ok', exampleRecognizerReport());
    const r = faceopt(['promote', dir, '--manifest', path.join(tmp, 'manifest2.json')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
