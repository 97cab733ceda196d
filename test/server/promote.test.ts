/**
 * `faceopt promote` and serving what it promoted: the manifest names the variant's file, sha256, report
 * and verdict; a failed report is refused (exit 3) unless --allow-failed; a file that is not the one the
 * report evaluated is refused; the server re-checks all of it at start, takes the verify threshold from
 * the report, and shows verdict and key numbers in /v1/models; promote prints the reports' warnings.
 * Synthetic reports and model files.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { sha256 } from '../../pipeline/fsutil.js';
import type { Report } from '../../pipeline/report/types.js';
import { notFasterWarning } from '../../pipeline/evaluate/speed.js';
import { analyzerOptionsFor } from '../../server/analyzer-options.js';
import { buildApp } from '../../server/app.js';
import { faceopt } from '../helpers/cli.js';
import { exampleDetectorReport, exampleRecognizerReport } from '../report/example.js';
import { FakeBackend } from './helpers.js';
import { fixtureBytes } from '../fixtures/index.js';

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-promote-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

/** A report folder whose variant is a small file with the given bytes. */
async function reportDir(name: string, report: Report, bytes: string): Promise<{ dir: string; model: string }> {
  const dir = path.join(tmp, 'reports', name);
  const model = path.join(tmp, 'models', `${name}.onnx`);
  await mkdir(dir, { recursive: true });
  await mkdir(path.dirname(model), { recursive: true });
  await writeFile(model, bytes);
  const r: Report = { ...report, variant: { ...report.variant, path: model, sha256: sha256(bytes), sizeBytes: bytes.length } };
  await writeFile(path.join(dir, 'report.json'), JSON.stringify(r, null, 2));
  return { dir, model };
}

const fake = () => async () => new FakeBackend();

describe('faceopt promote', () => {
  it('records a passing recognizer report and a plain detector file; the server serves them with the report\'s threshold', async () => {
    const rec = await reportDir('rec.int8', exampleRecognizerReport(), 'recognizer-bytes');
    const det = path.join(tmp, 'models', 'det.onnx');
    await writeFile(det, await fixtureBytes('scrfd')); // a real detector graph: promote reads its role
    const manifest = path.join(tmp, 'models', 'manifest.json');
    const r = faceopt(['promote', rec.dir, '--detector', det, '--manifest', manifest]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('gates PASS');
    const m = JSON.parse(await readFile(manifest, 'utf8'));
    expect(m.schemaVersion).toBe(1);
    expect(m.recognizer).toMatchObject({ variant: 'int8', path: 'rec.int8.onnx', sha256: sha256('recognizer-bytes'), sizeBytes: 16, verdict: { pass: true, reasons: [] } });
    const threshold = exampleRecognizerReport().recognizer?.verification?.variant.bestThreshold.threshold;
    expect(m.recognizer.matchThreshold).toBe(threshold);
    expect(m.detector).toMatchObject({ path: 'det.onnx', report: null, verdict: null, variant: 'unverified' });

    const app = await buildApp({ manifest, logLevel: 'silent' }, { backend: fake() });
    try {
      await app.faceoptReady;
      const models = (await app.inject({ url: '/v1/models' })).json();
      expect(models.recognizer).toMatchObject({ variant: 'int8', source: 'manifest', verdict: 'pass', sha256: sha256('recognizer-bytes') });
      expect(models.recognizer.keyNumbers.map((k: { id: string }) => k.id)).toContain('cosine.mean');
      expect(models.detector.verdict).toBe('unverified');
      expect(models.matchThreshold).toEqual({ value: threshold, source: 'report' });
      const metrics = (await app.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/faceopt_model_info\{role="recognizer",variant="int8",sha256="[0-9a-f]{16}",source="manifest",verdict="pass"\} 1/);
    } finally {
      await app.close();
    }
    // a flag overrides the manifest's threshold
    const flagged = await buildApp({ manifest, matchThreshold: 0.42, logLevel: 'silent' }, { backend: fake() });
    expect(flagged.faceopt.models.matchThreshold).toEqual({ value: 0.42, source: 'flag' });
    await flagged.close();
  });

  it('a detector report\'s input size travels into the manifest, and the server runs the detector at it unless --det-size says otherwise (then it says so)', async () => {
    const report = exampleDetectorReport();
    report.detector = { ...report.detector!, inputSize: [320, 320] };
    const det = await reportDir('det320.int8', report, 'placeholder');
    await writeFile(det.model, await fixtureBytes('scrfd_dynamic')); // a real dynamic detector graph
    const bytes = await readFile(det.model);
    const rj = path.join(det.dir, 'report.json');
    await writeFile(rj, JSON.stringify({ ...JSON.parse(await readFile(rj, 'utf8')), variant: { ...report.variant, path: det.model, sha256: sha256(bytes), sizeBytes: bytes.length } }, null, 2));
    const rec = await reportDir('rec320.int8', exampleRecognizerReport(), 'recognizer-bytes-320');
    const manifest = path.join(tmp, 'models', 'manifest-320.json');
    const r = faceopt(['promote', det.dir, rec.dir, '--manifest', manifest, '--allow-failed']); // the example detector report fails a gate
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(await readFile(manifest, 'utf8')).detector.inputSize).toEqual([320, 320]);
    const app = await buildApp({ manifest, allowFailed: true, logLevel: 'silent' }, { backend: fake() });
    try {
      expect(app.faceopt.models.detSize).toBe(320); // it ran at 640 and found no face where the report found them
      expect(analyzerOptionsFor(app.faceopt.models, app.faceopt.config).detSize).toBe(320);
      const models = (await app.inject({ url: '/v1/models' })).json();
      expect(models.detector.evaluatedInputSize).toEqual([320, 320]);
      expect(models.detector.reportNote).toBeUndefined();
    } finally {
      await app.close();
    }
    const flagged = await buildApp({ manifest, detSize: 640, allowFailed: true, logLevel: 'silent' }, { backend: fake() });
    try {
      expect(flagged.faceopt.models.detSize).toBeNull();
      expect(analyzerOptionsFor(flagged.faceopt.models, flagged.faceopt.config).detSize).toBe(640);
      expect(flagged.faceopt.models.detector.reportNote).toContain('serving the detector at 640x640 (--det-size), but its report evaluated it at 320x320');
    } finally {
      await flagged.close();
    }
  });

  it('refuses a failed report (exit 3) unless --allow-failed; the server refuses it too unless allowFailed', async () => {
    const bad = await reportDir('rec.bad', exampleRecognizerReport({ damage: 0.05 }), 'bad-recognizer');
    expect(JSON.parse(await readFile(path.join(bad.dir, 'report.json'), 'utf8')).gates.pass).toBe(false);
    const det = path.join(tmp, 'models', 'det2.onnx');
    await writeFile(det, await fixtureBytes('scrfd'));
    const manifest = path.join(tmp, 'failed', 'manifest.json');
    const refused = faceopt(['promote', bad.dir, '--detector', det, '--manifest', manifest]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^faceopt: FACEOPT_ERR_VARIANT_FAILED_GATES: Variant int8 \(rec\.bad\.onnx\) failed its accuracy gates \(failed: recognizer\.[a-zA-Z]+.*; .*report\.json\)\. Promote another, or pass --allow-failed to promote it anyway/);
    expect(refused.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    const forced = faceopt(['promote', bad.dir, '--detector', det, '--manifest', manifest, '--allow-failed']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain('gates FAIL');

    await expect(buildApp({ manifest, logLevel: 'silent' }, { backend: fake() })).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_VARIANT_FAILED_GATES'));
    const serve = faceopt(['serve', '--manifest', manifest, '--port', '0'], { timeoutMs: 60_000 });
    expect(serve.code).toBe(3);
    expect(serve.stderr).toContain('FACEOPT_ERR_VARIANT_FAILED_GATES');
    // the remedy is serve's own flag (the user already passed promote's)
    expect(serve.stderr).toMatch(/Variant recognizer int8 \(rec\.bad\.onnx\) failed its accuracy gates \(\d+ reason\(s\), the first: .*\)\. Promote another, or start serve with --allow-failed to serve it anyway\./);
    // --workers 2: the cluster stops at once with the same code (no restarts, no hang)
    const t0 = Date.now();
    const served2 = faceopt(['serve', '--manifest', manifest, '--port', '0', '--workers', '2'], { timeoutMs: 30_000 });
    expect(served2.code, served2.stderr).toBe(3);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(served2.stderr).toContain('FACEOPT_ERR_VARIANT_FAILED_GATES');
    expect(served2.stdout).not.toContain('starting a new one');
    const allowed = await buildApp({ manifest, allowFailed: true, logLevel: 'silent' }, { backend: fake() });
    try {
      await allowed.faceoptReady;
      const m = (await allowed.inject({ url: '/v1/models' })).json();
      expect(m.recognizer.verdict).toBe('fail');
      expect(m.recognizer.reasons.length).toBeGreaterThan(0);
    } finally {
      await allowed.close();
    }
  });

  it('refuses a model file that is not the one the report evaluated, at promote and at serve', async () => {
    const rec = await reportDir('rec.changed', exampleRecognizerReport(), 'original');
    await writeFile(rec.model, 'tampered');
    const manifest = path.join(tmp, 'changed', 'manifest.json');
    const r = faceopt(['promote', rec.dir, '--manifest', manifest]);
    expect(r.code).toBe(65);
    expect(r.stderr).toContain('FACEOPT_ERR_CHECKSUM');
    // promoted while intact, changed afterwards: the server notices
    await writeFile(rec.model, 'original');
    const det = await reportDir('det.int8', exampleDetectorReport(), 'detector-original');
    expect(faceopt(['promote', rec.dir, det.dir, '--manifest', manifest, '--allow-failed']).code).toBe(0);
    expect(JSON.parse(await readFile(manifest, 'utf8')).detector).toMatchObject({ variant: 'int8', sha256: sha256('detector-original') });
    await writeFile(rec.model, 'changed after promotion');
    await expect(buildApp({ manifest, allowFailed: true, logLevel: 'silent' }, { backend: fake() })).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_CHECKSUM'));
  });

  it('serves from the manifest\'s recorded verdict when the report is not there (a container mounting models/ only); a failed one is still refused', async () => {
    const rec = await reportDir('rec.moved', exampleRecognizerReport(), 'moved-recognizer');
    const bad = await reportDir('rec.moved-bad', exampleRecognizerReport({ damage: 0.05 }), 'moved-bad');
    const det = path.join(tmp, 'models', 'det-moved.onnx');
    await writeFile(det, await fixtureBytes('scrfd'));
    const manifest = path.join(tmp, 'moved', 'manifest.json');
    expect(faceopt(['promote', rec.dir, '--detector', det, '--manifest', manifest]).code).toBe(0);
    await rm(rec.dir, { recursive: true });
    const app = await buildApp({ manifest, logLevel: 'silent' }, { backend: fake() });
    try {
      await app.faceoptReady;
      const m = (await app.inject({ url: '/v1/models' })).json();
      expect(m.recognizer).toMatchObject({ verdict: 'pass', report: null });
      expect(m.recognizer.reportNote).toMatch(/is not here: serving the verdict and match threshold the manifest recorded/);
      expect(m.matchThreshold.source).toBe('report'); // the threshold the manifest recorded from it
    } finally {
      await app.close();
    }
    const badManifest = path.join(tmp, 'moved-bad', 'manifest.json');
    expect(faceopt(['promote', bad.dir, '--detector', det, '--manifest', badManifest, '--allow-failed']).code).toBe(0);
    await rm(bad.dir, { recursive: true });
    await expect(buildApp({ manifest: badManifest, logLevel: 'silent' }, { backend: fake() })).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_VARIANT_FAILED_GATES'));
  });

  it('prints the promoted reports\' warnings (a variant that is not faster than its reference)', async () => {
    const slow = notFasterWarning({ speedup: { batch1: 0.98, batch8: null } })!;
    const rec = await reportDir('rec.slow', { ...exampleRecognizerReport(), warnings: [slow] }, 'slow-recognizer');
    const manifest = path.join(tmp, 'slow', 'manifest.json');
    const r = faceopt(['promote', rec.dir, '--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`warning (recognizer report): ${slow}`);
  });

  it('warns when a recognizer report records no match threshold (no LFW pairs) and when its faces came from another detector than the promoted one', async () => {
    const base = exampleRecognizerReport();
    const noPairs: Report = {
      ...base,
      recognizer: { ...base.recognizer!, verification: null },
      gates: { ...base.gates, checks: base.gates.checks.map((c, i) => (i === 2 ? { ...c, status: 'skipped' as const, measured: null } : c)) },
      evaluationData: { ...base.evaluationData, alignment: { detector: '/elsewhere/scrfd_dynamic.onnx', detectorSha256: 'ab'.repeat(32), scoreThreshold: 0.5, face: 'nearest the centre' } },
    };
    const rec = await reportDir('rec.nopairs', noPairs, 'no-pairs-recognizer');
    const det = path.join(tmp, 'models', 'det2.onnx');
    await writeFile(det, await fixtureBytes('scrfd'));
    const manifest = path.join(tmp, 'nopairs', 'manifest.json');
    const r = faceopt(['promote', rec.dir, '--detector', det, '--manifest', manifest]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(await readFile(manifest, 'utf8')).recognizer.matchThreshold).toBeNull();
    // both were silent: /v1/verify then decides at 0.3, and the numbers hold for another detector's crops
    expect(r.stdout).toContain('warning (recognizer report): the report has no LFW verification (no --pairs), so it records no match threshold: /v1/verify will decide at the default 0.3 unless serve is given --match-threshold');
    expect(r.stdout).toMatch(/warning: the recognizer's report measured faces found by \/elsewhere\/scrfd_dynamic\.onnx, not the promoted detector .*det2\.onnx/);
  });

  it('--detector / --recognizer FILE: a file that is not ONNX or is the other role is refused at promote, not at serve', async () => {
    const manifest = path.join(tmp, 'files', 'manifest.json');
    const text = path.join(tmp, 'models', 'notes.onnx');
    await writeFile(text, 'not a model at all');
    const det = path.join(tmp, 'models', 'det3.onnx');
    await writeFile(det, await fixtureBytes('scrfd'));
    const notOnnx = faceopt(['promote', '--detector', text, '--manifest', manifest]);
    expect(notOnnx.code).toBe(65);
    expect(notOnnx.stderr).toContain('FACEOPT_ERR_NOT_ONNX');
    const swapped = faceopt(['promote', '--recognizer', det, '--manifest', manifest]);
    expect(swapped.code).toBe(64);
    expect(swapped.stderr.trim()).toBe(`faceopt: FACEOPT_ERR_MODEL_ROLE: ${det} is not a recognizer model (recognised as detector). Pass a recognizer model.`);
    expect(existsSync(manifest)).toBe(false);
    const notManifest = faceopt(['promote', '--detector', det, '--manifest', text]);
    expect(notManifest.code).toBe(65);
    expect(notManifest.stderr).toMatch(/^faceopt: FACEOPT_ERR_MANIFEST: Serving manifest .*notes\.onnx cannot be read: not JSON/);
  });

  it('explains what is missing: no report folder, no models at all', async () => {
    const none = faceopt(['promote']);
    expect(none.code).toBe(64);
    expect(none.stderr).toContain('Expected a report folder');
    await expect(buildApp({ manifest: path.join(tmp, 'nothing.json'), logLevel: 'silent' }, { backend: fake() })).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_FILE_NOT_FOUND'));
    const empty = path.join(tmp, 'empty-models');
    await mkdir(empty, { recursive: true });
    const r = faceopt(['serve', '--port', '0'], { env: { FACEOPT_MODELS: empty, FACEOPT_DETECTOR: '', FACEOPT_RECOGNIZER: '' } });
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/FACEOPT_ERR_BAD_ARGUMENT: Expected a detector: --detector FILE/);
  });

  it('quotes a numeric flag that is not a number instead of saying NaN', () => {
    const port = faceopt(['serve', '--port', 'abc']);
    expect(port.code).toBe(64);
    expect(port.stderr.trim()).toBe('faceopt: FACEOPT_ERR_BAD_ARGUMENT: Expected a number for --port but received "abc".');
    const batch = faceopt(['serve', '--max-batch', ' ']);
    expect(batch.code).toBe(64);
    expect(batch.stderr).toContain('Expected a number for --max-batch but received " ".');
    // decimal only, as every other numeric flag: '0x10' was port 16
    const hex = faceopt(['serve', '--port', '0x10']);
    expect(hex.code).toBe(64);
    expect(hex.stderr.trim()).toBe('faceopt: FACEOPT_ERR_BAD_ARGUMENT: Expected a number for --port but received "0x10".');
  });
});
