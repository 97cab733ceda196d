/**
 * `faceopt optimize --tensorrt` writes an accuracy report of the bundle's Q/DQ graph (issue 6 item 6):
 * evaluated on CPU against the float source on held-apart faces, with the same gates as `--int8`, in
 * reports/<name>.tensorrt-int8/, saying that engines were not built or timed here; exit 3 when a gate
 * fails. Real models and photos, run as a subprocess of the built CLI; small calibration sets.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ERRORS } from '../../pipeline/errors.js';
import { DEFAULT_GATES } from '../../pipeline/evaluate/gates.js';
import type { Report } from '../../pipeline/report/types.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';

const LFW = shared('faces', 'lfw');
const GROUPS = shared('faces', 'groups');
const GATE_EXIT = ERRORS.FACEOPT_ERR_GATE_FAILED.exit;
let tmp = '';

beforeAll(async () => { tmp = await mkdtemp(path.join(tmpdir(), 'faceopt-evaluate-trt-')); });
afterAll(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

const readReport = async (dir: string): Promise<Report> => JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as Report;

describeShared('optimize --tensorrt: accuracy report of the Q/DQ graph', () => {
  it('mobileface: report of model.qdq.onnx vs the source on LFW pairs of other identities; exit code follows the gates', async () => {
    const rows = readFileSync(path.join(LFW, 'pairs_devtest.tsv'), 'utf8').split('\n').slice(1).filter(Boolean);
    const pick = (same: string) => rows.filter((r) => r.endsWith(`\t${same}`)).filter((_, i) => i % 10 === 0).slice(0, 50);
    const pairs = path.join(tmp, 'pairs100.tsv');
    await writeFile(pairs, `${[...pick('1'), ...pick('0')].join('\n')}\n`);
    const out = path.join(tmp, 'mbf.trt');
    const reportDir = path.join(tmp, 'mbf.tensorrt-int8');
    const r = faceopt(['optimize', '--tensorrt', '--model', shared('models', 'mobileface_paddle_128d.onnx'), '--out', out, '--report-dir', reportDir,
      '--faces', LFW, '--calibration-list', path.join(LFW, 'calibration.txt'), '--calibration-size', '40', '--pairs', pairs, '--batch', '1:8:16'], { timeoutMs: 400_000 });
    const rep = await readReport(reportDir);
    expect(r.code, r.stderr).toBe(rep.gates.pass ? 0 : GATE_EXIT);
    expect(r.stdout.split('\n')[0]).toBe(out);
    expect(r.stdout).toMatch(/faceopt report: mobileface_paddle_128d · tensorrt-int8 \(recognizer\)/);
    expect(rep.variantName).toBe('tensorrt-int8');
    expect(rep.reference.name).toBe('mobileface_paddle_128d');
    expect(rep.variant.path).toBe(path.join(out, 'model.qdq.onnx'));
    expect(rep.variant.precision).toBe('int8-qdq-symmetric');
    // same gates as --int8 (defaults), every recognizer gate checked
    expect(rep.gates.thresholds).toEqual(DEFAULT_GATES);
    expect(rep.gates.checks.map((c) => c.id)).toEqual(['recognizer.minMeanCosine', 'recognizer.minMinCosine', 'recognizer.minAccuracyDeltaPp']);
    expect(rep.gates.checks.every((c) => c.status !== 'skipped')).toBe(true);
    // measured: mean cosine 0.9952, min 0.9894 over 194 faces, 10-fold accuracy 98.00% -> 98.00% (12 layers float)
    expect(rep.recognizer!.cosine.count).toBeGreaterThan(180);
    expect(rep.recognizer!.cosine.mean).toBeGreaterThan(0.98);
    expect(rep.recognizer!.verification!.reference.pairs).toBeGreaterThan(90);
    // evaluation faces are the identities calibration did not use
    expect(rep.evaluationData.split).toMatchObject({ method: 'list', calibrationImages: 40, calibrationIdentities: 8, sharedIdentities: 0 });
    const plan = JSON.parse(readFileSync(path.join(out, 'plan.json'), 'utf8'));
    expect(rep.provenance.floatLayers.length).toBe(plan.quantization.keptFloat.length);
    expect(rep.provenance.calibration).toMatchObject({ method: 'percentile', images: 32 });
    expect(rep.provenance.calibration!.config).toMatchObject({ placement: 'tensorrt', symmetric: true, precision: 'int8' });
    // no GPU work happened: the report says so, and whose speed it measured
    expect(rep.warnings.some((w) => /^TensorRT engines were not built or timed here \(.+\): .*model\.qdq\.onnx.*build\.sh --time/.test(w))).toBe(true);
    expect(rep.speed!.note).toMatch(/CPU onnxruntime .*not TensorRT/);
    expect(readFileSync(path.join(reportDir, 'report.md'), 'utf8')).toContain('TensorRT engines were not built or timed here');
  }, 420_000);

  it('scrfd_500m: detector report on held-apart and annotated group photos; a failing gate exits 3 with the reason', async () => {
    const out = path.join(tmp, 'scrfd.trt');
    const stats = path.join(tmp, 'scrfd-stats.json');
    const common = ['optimize', '--tensorrt', '--model', shared('models', 'scrfd_500m_bnkps.onnx'), '--out', out, '--stats', stats,
      '--faces', GROUPS, '--calibration-size', '6', '--boxes', path.join(GROUPS, 'training.xml'), '--boxes', path.join(GROUPS, 'testing.xml'),
      '--face-free', path.join(GROUPS, 'dogs.jpg')];
    // no --report-dir: the report is named after the --out folder (scrfd.trt), not the model
    const reportDir = path.join(tmp, 'reports', 'scrfd.tensorrt-int8');
    const r = faceopt(common, { timeoutMs: 300_000, env: { FACEOPT_REPORTS: path.join(tmp, 'reports') } });
    const rep = await readReport(reportDir);
    expect(existsSync(path.join(tmp, 'reports', 'scrfd_500m_bnkps.tensorrt-int8'))).toBe(false);
    expect(r.code, r.stderr).toBe(rep.gates.pass ? 0 : GATE_EXIT);
    expect(rep.role).toBe('detector');
    expect(rep.variant.path).toBe(path.join(out, 'model.qdq.onnx'));
    // measured: 15 of 15 reference faces found (recall 1), keypoint error 0.0065 of box size, 5 photos (min/max, mosaics)
    const v = rep.detector!.vsReference;
    expect(v.referenceFaces).toBeGreaterThan(5);
    expect(v.recall).toBeGreaterThanOrEqual(0.9);
    expect(rep.detector!.vsGroundTruth).not.toBeNull();
    // detectors calibrate as --int8 does: min/max ranges, target 0.998 plus the default margin
    expect(rep.provenance.calibration).toMatchObject({ method: 'minmax', config: { targetMargin: 0.001 } });
    // the 6 calibration photos are never evaluated, even when given with --boxes/--face-free
    expect(rep.evaluationData.split.calibrationImages).toBe(6);
    expect(rep.evaluationData.split.evaluationImages).toBe(11 - 6);
    // the face-free dogs.jpg is counted in faceFree, not compared with the reference (since 2026-12-06)
    expect(rep.detector!.vsReference.images).toBe(4);
    expect(rep.detector!.faceFree?.images).toBe(1);
    expect(rep.warnings).toContain('5 explicitly given photo(s) are calibration photos and were left out');
    expect(rep.warnings.some((w) => w.startsWith('TensorRT engines were not built or timed here'))).toBe(true);
    // six calibration photos: the run says that is few, in the report too
    expect(rep.warnings.some((w) => w.startsWith('calibration on 6 photo(s)'))).toBe(true);

    // the same plan with an impossible keypoint gate: bundle and report written, exit 3, reason readable
    const strictDir = path.join(tmp, 'scrfd-strict');
    const strict = faceopt([...common, '--report-dir', strictDir, '--gate-keypoint-error', '0.0001'], { timeoutMs: 300_000 });
    expect(strict.code).toBe(GATE_EXIT);
    expect(strict.stderr).toMatch(/FACEOPT_ERR_GATE_FAILED: Accuracy gates failed: Mean keypoint error is 0\.\d+ of the face box size over \d+ matched faces, above the gate of 0\.0001/);
    expect(strict.stdout).toMatch(/\[FAIL\] Mean keypoint error/);
    expect(existsSync(path.join(out, 'plan.json'))).toBe(true);
    const strictRep = await readReport(strictDir);
    expect(strictRep.gates.pass).toBe(false);
    expect(strictRep.gates.thresholds.detector.maxKeypointError).toBe(0.0001);
  }, 420_000);

  it('--no-evaluate writes the bundle without a report', () => {
    const out = path.join(tmp, 'scrfd-noeval.trt');
    const reportDir = path.join(tmp, 'scrfd-noeval-report');
    const r = faceopt(['optimize', '--tensorrt', '--model', shared('models', 'scrfd_500m_bnkps.onnx'), '--out', out, '--stats', path.join(tmp, 'scrfd-stats.json'),
      '--report-dir', reportDir, '--no-evaluate'], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(out);
    expect(existsSync(path.join(out, 'model.qdq.onnx'))).toBe(true);
    expect(existsSync(reportDir)).toBe(false);
    // without a report nothing said the engines were only planned (the report carries that note)
    expect(r.stderr).toMatch(/^note: no TensorRT engine was built or timed here \(.+\); build and time one with .*build\.sh --time/m);
    // evaluate on the bundle without the TensorRT provider: its report says no engine ran, as optimize's does
    const evalDir = path.join(tmp, 'scrfd-noeval-evaluated');
    const e = faceopt(['evaluate', '--model', out, '--reference', shared('models', 'scrfd_500m_bnkps.onnx'), '--face-free', path.join(GROUPS, 'dogs.jpg'),
      '--boxes', path.join(GROUPS, 'testing.xml'), '--speed-runs', '2', '--report-dir', evalDir], { timeoutMs: 300_000 });
    expect([0, GATE_EXIT], e.stderr).toContain(e.code);
    const rep = JSON.parse(readFileSync(path.join(evalDir, 'report.json'), 'utf8')) as { warnings: string[] };
    expect(rep.warnings.some((w) => /^TensorRT engines were not built or timed here \(.+\): accuracy is that of model\.qdq\.onnx/.test(w))).toBe(true);
  }, 300_000);
});
