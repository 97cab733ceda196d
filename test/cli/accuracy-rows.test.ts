/**
 * The INT8 issue's own check, run as a user runs it: `faceopt optimize --int8` on the real models with the
 * real photos (the README's command for mobileface; the README's SCRFD flags for both SCRFD files), whole
 * evaluation included. Each run must exit 0 (its report's gates pass), write a model that onnxruntime-node
 * loads and runs, with QuantizeLinear/DequantizeLinear in it, and meet the accuracy rows as its
 * report records them: mobileface mean cosine >= 0.995 and min >= 0.97 over the faces of
 * pairs_devtest.tsv, LFW DevTest 10-fold accuracy change >= -0.2 pp; SCRFD recall against FP32 >= 99.5% at
 * IoU 0.5 and keypoint error <= 2% of the box. The other tests of `optimize` use small calibrations and
 * skip evaluation to stay quick: these three are the end-to-end runs (about 2 minutes each here).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { expect, it } from 'vitest';
import { loadModel } from '../../pipeline/onnx/index.js';
import { createSession } from '../../pipeline/runtime.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';

const work = mkdtempSync(path.join(tmpdir(), 'faceopt-accuracy-rows-'));
const env = { FACEOPT_MODELS: path.join(work, 'models'), FACEOPT_REPORTS: path.join(work, 'reports') };
/** One run may take ~2 min alone and several times that beside the rest of the suite on two cores. */
const RUN_MS = 600_000;

/** The written model: Q/DQ nodes, and onnxruntime-node loads it and gives finite outputs for one input. */
async function checkModel(file: string): Promise<void> {
  const ops = loadModel(file).graph.opHistogram();
  expect(ops.QuantizeLinear).toBeGreaterThan(0);
  expect(ops.DequantizeLinear).toBeGreaterThan(0);
  const session = await createSession(readFileSync(file));
  try {
    const name = session.inputNames[0]!;
    const meta = (session.inputMetadata as unknown as { name: string; shape: (number | string)[] }[]).find((m) => m.name === name);
    const dims = (meta?.shape ?? []).map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? 1 : 640));
    const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 0.5);
    const out = await session.run({ [name]: new ort.Tensor('float32', data, dims) });
    for (const t of Object.values(out)) expect((t.data as Float32Array).every(Number.isFinite)).toBe(true);
  } finally {
    await session.release();
  }
}

function report(name: string): any {
  return JSON.parse(readFileSync(path.join(work, 'reports', `${name}.int8`, 'report.json'), 'utf8'));
}

describeShared('faceopt optimize --int8 on the real models meets the INT8 issue\'s accuracy rows', () => {
  it('mobileface_paddle_128d, the README command: mean cosine >= 0.995, min >= 0.97, LFW 10-fold change >= -0.2 pp', async () => {
    const r = faceopt(['optimize', '--int8', '--model', shared('models', 'mobileface_paddle_128d.onnx'), '--faces', shared('faces', 'lfw'),
      '--calibration-list', shared('faces', 'lfw', 'calibration.txt'), '--pairs', shared('faces', 'lfw', 'pairs_devtest.tsv'), '--quiet'], { env, timeoutMs: RUN_MS });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/PASS: all 3 accuracy gates met/);
    const rep = report('mobileface_paddle_128d');
    expect(rep.gates.pass).toBe(true);
    const { cosine, verification } = rep.recognizer;
    expect(cosine.count).toBeGreaterThan(1500); // the faces of pairs_devtest.tsv's photos
    expect(cosine.mean).toBeGreaterThanOrEqual(0.995);
    expect(cosine.min).toBeGreaterThanOrEqual(0.97);
    expect(verification.delta.delta * 100).toBeGreaterThanOrEqual(-0.2);
    await checkModel(path.join(work, 'models', 'mobileface_paddle_128d.int8.onnx'));
  }, RUN_MS + 60_000);

  for (const file of ['scrfd_500m_bnkps', 'scrfd_500m_bnkps_dynamic']) {
    it(`${file}, the README's SCRFD flags: recall vs FP32 >= 99.5% at IoU 0.5, keypoint error <= 2% of the box`, async () => {
      const r = faceopt(['optimize', '--int8', '--model', shared('models', `${file}.onnx`), '--faces', shared('faces', 'lfw'),
        '--calibration-list', shared('faces', 'lfw', 'calibration.txt'), '--calibration-size', '100',
        '--boxes', shared('faces', 'groups', 'training.xml'), '--boxes', shared('faces', 'groups', 'testing.xml'),
        '--face-free', shared('faces', 'groups', 'dogs.jpg'), '--quiet'], { env, timeoutMs: RUN_MS });
      expect(r.code, r.stderr).toBe(0);
      const rep = report(file);
      expect(rep.gates.pass).toBe(true);
      const vs = rep.detector.vsReference;
      expect(vs.referenceFaces).toBeGreaterThan(200); // LFW evaluation photos and the group photos
      expect(vs.iouThreshold).toBe(0.5);
      expect(vs.recall).toBeGreaterThanOrEqual(0.995);
      expect(vs.keypointError.mean).toBeLessThanOrEqual(0.02);
      await checkModel(path.join(work, 'models', `${file}.int8.onnx`));
    }, RUN_MS + 60_000);
  }
});
