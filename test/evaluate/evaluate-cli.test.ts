/**
 * `faceopt evaluate` end to end on the real models (run as a subprocess of the built CLI): a model
 * against itself passes every gate with cosine 1 and accuracy delta 0; a copy with its weights
 * rounded to 2 bits fails the gates with readable reasons and a non-zero exit; a detector against
 * itself on the annotated group photos finds every reference face. Runtime is kept small: 100 LFW
 * pairs (50 same, 50 different) written to a temp folder, 3 timed runs per model.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataType } from '../../pipeline/onnx/proto.js';
import { loadModel, saveModel } from '../../pipeline/onnx/model.js';
import { ERRORS } from '../../pipeline/errors.js';
import { availableProviders } from '../../pipeline/runtime.js';
import type { Report } from '../../pipeline/report/types.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';
import { oneInt8OneFloatConv } from '../onnx/tiny.js';

const LFW = shared('faces', 'lfw');
const GROUPS = shared('faces', 'groups');
const MOBILEFACE = shared('models', 'mobileface_paddle_128d.onnx');
const SCRFD = shared('models', 'scrfd_500m_bnkps.onnx');
const GATE_EXIT = ERRORS.FACEOPT_ERR_GATE_FAILED.exit;
let tmp = '';

beforeAll(async () => { tmp = await mkdtemp(path.join(tmpdir(), 'faceopt-evaluate-')); });
afterAll(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

/** Every 10th same and every 10th different pair of LFW DevTest, 50 of each (spread over the list). */
async function pairsSubset(): Promise<string> {
  const rows = readFileSync(path.join(LFW, 'pairs_devtest.tsv'), 'utf8').split('\n').slice(1).filter(Boolean);
  const pick = (same: string) => rows.filter((r) => r.endsWith(`\t${same}`)).filter((_, i) => i % 10 === 0).slice(0, 50);
  const file = path.join(tmp, 'pairs100.tsv');
  await writeFile(file, `left\tright\tsame\n${[...pick('1'), ...pick('0')].join('\n')}\n`);
  return file;
}

/**
 * A damaged copy: every float weight of rank >= 2 rounded per tensor to 2 bits, two's-complement
 * levels: w -> clamp(round(w/s), -2, 1) * s with s = max|w| / 2 (4 levels: -2s, -s, 0, s). A level
 * at 0 matters: a mid-rise 2-bit grid (no zero) blows MobileFaceNet's activations up to NaN.
 */
async function twoBitCopy(src: string, out: string): Promise<number> {
  const model = loadModel(src);
  const g = model.graph;
  let n = 0;
  for (const name of g.initializerNames()) {
    const t = g.initializer(name)!;
    if (t.dataType !== DataType.FLOAT || (t.dims?.length ?? 0) < 2) continue;
    const w = g.getFloat(name);
    let max = 0;
    for (const v of w) max = Math.max(max, Math.abs(v));
    if (max === 0) continue;
    const s = max / 2;
    const q = w.map((v) => Math.min(1, Math.max(-2, Math.round(v / s))) * s);
    g.setTensor(name, DataType.FLOAT, (t.dims ?? []).map(Number), q);
    n++;
  }
  await saveModel(model, out);
  return n;
}

const readReport = async (dir: string): Promise<Report> => JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as Report;

describeShared('faceopt evaluate on real models', () => {
  it('mobileface against itself: cosine 1, accuracy delta 0, every gate passes, exit 0', async () => {
    const pairs = await pairsSubset();
    const dir = path.join(tmp, 'self');
    const r = faceopt(['evaluate', '--model', MOBILEFACE, '--reference', MOBILEFACE, '--faces', LFW, '--pairs', pairs,
      '--calibration-list', path.join(LFW, 'calibration.txt'), '--report-dir', dir, '--speed-runs', '3'], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/PASS: all 3 accuracy gates met/);
    expect(readdirSync(dir).sort()).toEqual(['report.html', 'report.json', 'report.md']);
    const rep = await readReport(dir);
    expect(rep.variantName).toBe('self');
    expect(rep.role).toBe('recognizer');
    expect(rep.reference.sha256).toBe(rep.variant.sha256);
    // measured: 194 faces (100 pairs, 194 distinct photos), mean 0.9999999966 (float32 dot products)
    expect(rep.recognizer!.cosine.count).toBeGreaterThan(180);
    expect(Math.abs(rep.recognizer!.cosine.mean - 1)).toBeLessThan(1e-6);
    expect(Math.abs(rep.recognizer!.cosine.min - 1)).toBeLessThan(1e-6);
    const v = rep.recognizer!.verification!;
    expect(v.reference.pairs + v.skippedPairs).toBe(100);
    expect(v.delta.delta).toBe(0);
    expect(v.delta.perFold).toEqual(Array(10).fill(0));
    expect(v.reference.kFold.accuracyMean).toBeGreaterThan(0.9);
    expect(v.variant.kFold.accuracyMean).toBe(v.reference.kFold.accuracyMean);
    expect(rep.gates.pass).toBe(true);
    expect(rep.gates.checks.map((c) => c.status)).toEqual(['pass', 'pass', 'pass']);
    // evaluation faces are never calibration faces: the split says how and shares no identity
    expect(rep.evaluationData.split.method).toBe('list');
    expect(rep.evaluationData.split.calibrationImages).toBe(300);
    // and it names the detector that found and aligned the faces, its threshold and the face rule
    expect(rep.evaluationData.alignment).toMatchObject({ detector: expect.stringMatching(/scrfd_500m_bnkps(_dynamic)?\.onnx$/), detectorSha256: expect.stringMatching(/^[0-9a-f]{64}$/), scoreThreshold: 0.5 });
    expect(readFileSync(path.join(dir, 'report.md'), 'utf8')).toMatch(/Faces: per photo the detected face nearest its centre, aligned .*Detector .*scrfd_500m_bnkps(_dynamic)?\.onnx \(sha256 [0-9a-f]{12}\), score threshold 0\.5\./);
    expect(rep.evaluationData.split.calibrationIdentities).toBe(60);
    expect(rep.evaluationData.split.sharedIdentities).toBe(0);
    expect(rep.evaluationData.split.description).toMatch(/calibration\.txt excluded/);
    expect(rep.speed!.reference.batch8).not.toBeNull(); // dynamic batch on both sides
  });

  it('a 2-bit copy fails the gates with readable reasons and exit code FACEOPT_ERR_GATE_FAILED', async () => {
    const pairs = await pairsSubset();
    const damaged = path.join(tmp, 'mobileface_paddle_128d.2bit.onnx');
    expect(await twoBitCopy(MOBILEFACE, damaged)).toBeGreaterThan(40);
    const dir = path.join(tmp, 'damaged');
    const r = faceopt(['evaluate', '--model', damaged, '--reference', MOBILEFACE, '--faces', LFW, '--pairs', pairs,
      '--calibration-list', path.join(LFW, 'calibration.txt'), '--report-dir', dir, '--speed-runs', '3'], { timeoutMs: 240_000 });
    expect(r.code).toBe(GATE_EXIT);
    expect(r.code).not.toBe(0);
    // one stderr line from the coded error, no stack trace; the summary on stdout says why
    expect(r.stderr).toMatch(/Accuracy gates failed: Mean cosine between reference and variant embeddings is -?0\.\d+ over \d+ faces, below the gate of 0\.995/);
    expect(r.stderr).toContain(path.join(dir, 'report.md'));
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toMatch(/FAIL: 3 of 3 accuracy gates failed/);
    expect(r.stdout).toMatch(/\[FAIL\] Lowest per-face cosine is -?0\.\d+, below the gate of 0\.97/);
    expect(r.stdout).toMatch(/\[FAIL\] 10-fold verification accuracy changed by -\d+\.\d\d pp \(\d+\.\d\d% -> \d+\.\d\d%/);
    const rep = await readReport(dir);
    expect(rep.variantName).toBe('2bit');
    expect(rep.gates.pass).toBe(false);
    // measured: mean cosine -0.003, min -0.204 over 194 faces; 10-fold accuracy 98% -> 50%
    expect(rep.recognizer!.cosine.nonFinite).toBe(0);
    expect(rep.recognizer!.cosine.mean).toBeLessThan(0.5);
    expect(rep.recognizer!.verification!.delta.delta).toBeLessThan(-0.2);
    expect(rep.gates.reasons.length).toBeGreaterThanOrEqual(2);
    for (const reason of rep.gates.reasons) expect(reason).toMatch(/below the gate of/);
  });

  it('scrfd_500m against itself on the annotated group photos: recall 1 vs the reference', async () => {
    const boxes = readdirSync(GROUPS).filter((f) => f.endsWith('.xml')).sort().map((f) => path.join(GROUPS, f));
    expect(boxes.length).toBe(2);
    const dir = path.join(tmp, 'detector');
    const r = faceopt(['evaluate', '--model', SCRFD, '--reference', SCRFD, ...boxes.flatMap((b) => ['--boxes', b]),
      '--face-free', path.join(GROUPS, 'dogs.jpg'), '--report-dir', dir, '--speed-runs', '3', '--format', 'json'], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    const rep = await readReport(dir);
    // --format json prints report.json itself
    expect(JSON.parse(r.stdout)).toEqual(rep);
    expect(rep.role).toBe('detector');
    expect(rep.evaluationData.alignment).toBeUndefined();
    const d = rep.detector!;
    expect(d.vsReference.recall).toBe(1);
    expect(d.vsReference.precision).toBe(1);
    expect(d.vsReference.matched).toBe(d.vsReference.referenceFaces);
    expect(d.vsReference.referenceFaces).toBeGreaterThan(30);
    expect(d.vsReference.meanIou).toBeCloseTo(1, 6);
    // both models score the same against the 43 annotated boxes of the 9 VOC photos
    expect(d.vsGroundTruth!.reference.referenceFaces).toBe(43);
    expect(d.vsGroundTruth!.variant.recall).toBe(d.vsGroundTruth!.reference.recall);
    expect(d.faceFree!.images).toBe(1);
    expect(d.faceFree!.variantDetections).toBe(d.faceFree!.referenceDetections);
    expect(rep.gates.pass).toBe(true);
    expect(rep.evaluationData.split.method).toBe('separate-sources');
    expect(rep.evaluationData.split.evaluationImages).toBe(10);
    expect(rep.evaluationData.split.description).toBe('evaluation on 9 annotated photos of testing.xml, training.xml and 1 face-free photo(s); no faces folder was named, so no calibration photos were in play');
  });

  it('--provider tensorrt fails with FACEOPT_ERR_PROVIDER_UNAVAILABLE where the EP is missing; usage errors are coded', async () => {
    const base = ['evaluate', '--model', MOBILEFACE, '--reference', MOBILEFACE, '--report-dir', path.join(tmp, 'never')];
    if (!availableProviders().includes('tensorrt')) {
      const r = faceopt([...base, '--faces', LFW, '--provider', 'tensorrt']);
      expect(r.code).toBe(ERRORS.FACEOPT_ERR_PROVIDER_UNAVAILABLE.exit);
      expect(r.stderr).toMatch(/^faceopt: FACEOPT_ERR_PROVIDER_UNAVAILABLE: Execution provider tensorrt is not available here .*Available: cpu/m);
    }
    const bad = faceopt([...base, '--provider', 'tpu']);
    expect(bad.code).toBe(ERRORS.FACEOPT_ERR_BAD_ARGUMENT.exit);
    expect(bad.stderr).toMatch(/Expected cpu \| cuda \| tensorrt for --provider but received tpu/);
    const noFaces = faceopt(base);
    expect(noFaces.code).toBe(ERRORS.FACEOPT_ERR_BAD_ARGUMENT.exit);
    expect(noFaces.stderr).toMatch(/--faces DIR/);
    const wrongRole = faceopt(['evaluate', '--model', MOBILEFACE, '--reference', SCRFD, '--faces', LFW]);
    expect(wrongRole.code).toBe(ERRORS.FACEOPT_ERR_MODEL_ROLE.exit);
    expect(wrongRole.stderr).toMatch(/is not a detector model \(recognised as recognizer\)\. Pass a detector model as --reference .*scrfd_500m_bnkps\.onnx is, or as --reference the float model mobileface_paddle_128d\.onnx was made from \(or set both roles with --role\)\./);
    // the other role's settings are refused, not ignored; a quantized reference is refused
    const otherRole = faceopt([...base, '--faces', LFW, '--boxes', path.join(GROUPS, 'training.xml'), '--gate-recall', '0.9']);
    expect(otherRole.code).toBe(ERRORS.FACEOPT_ERR_BAD_ARGUMENT.exit);
    expect(otherRole.stderr.trim()).toBe('faceopt: FACEOPT_ERR_BAD_ARGUMENT: Expected only recognizer settings (the model is a recognizer) for evaluate but received --boxes (detectors only), --gate-recall (detectors only).');
    // a --faces folder that is not there is named as missing (it read "No calibration images found")
    const noDir = faceopt([...base, '--faces', path.join(tmp, 'nowhere'), '--report-dir', path.join(tmp, 'never')]);
    expect(noDir.code).toBe(ERRORS.FACEOPT_ERR_FILE_NOT_FOUND.exit);
    expect(noDir.stderr).toContain('FACEOPT_ERR_FILE_NOT_FOUND');
    expect(noDir.stderr).not.toContain('calibration');
    // --det-size sizes nothing of a recognizer's evaluation: refused, not ignored (33 ran to a PASS report)
    const recDetSize = faceopt([...base, '--faces', LFW, '--det-size', '33', '--report-dir', path.join(tmp, 'never')]);
    expect(recDetSize.code).toBe(ERRORS.FACEOPT_ERR_BAD_ARGUMENT.exit);
    expect(recDetSize.stderr).toContain('Expected no --det-size for a recognizer');
    const detPairs = faceopt(['evaluate', '--model', SCRFD, '--reference', SCRFD, '--faces', LFW, '--pairs', path.join(LFW, 'pairs_devtest.tsv'), '--report-dir', path.join(tmp, 'never')]);
    expect(detPairs.code).toBe(ERRORS.FACEOPT_ERR_BAD_ARGUMENT.exit);
    expect(detPairs.stderr).toContain('but received --pairs (recognizers only)');
    const int8 = path.join(tmp, 'reference.int8.onnx');
    await saveModel(oneInt8OneFloatConv(), int8);
    const quantRef = faceopt([...base.slice(0, 3), '--reference', int8, '--faces', LFW, '--report-dir', path.join(tmp, 'never')]);
    expect(quantRef.code).toBe(ERRORS.FACEOPT_ERR_ALREADY_QUANTIZED.exit);
    expect(quantRef.stderr).toContain(`${int8} is already quantized (it has QuantizeLinear/DequantizeLinear nodes)`);
    expect(readdirSync(tmp)).not.toContain('never');
  });
});
