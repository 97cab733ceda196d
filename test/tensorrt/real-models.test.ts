/**
 * The TensorRT plan on the real InsightFace-family models (shared folder): calibrated on a few real
 * LFW faces, the Q/DQ graph follows TensorRT's rules, runs on CPU, and — with the accuracy slice —
 * keeps the output cosine against the float graph at the target.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { collectActivationStats, type InputBatch } from '../../pipeline/calibrate/run.js';
import { detectorBatches, recognizerBatches, splitCalibration } from '../../pipeline/calibrate/sources.js';
import { TENSORRT_REWRITES } from '../../pipeline/cli/optimize-tensorrt.js';
import { summarizeModel } from '../../pipeline/faces/graph-summary.js';
import { detectProfile } from '../../pipeline/faces/profile.js';
import { loadModel } from '../../pipeline/onnx/model.js';
import { prepareFloatGraph } from '../../pipeline/quantize/index.js';
import { writeTensorrtBundle } from '../../pipeline/tensorrt/plan.js';
import { describeShared, shared } from '../helpers/shared.js';

const FACES = shared('faces', 'lfw');
const DETECTOR = shared('models', 'scrfd_500m_bnkps.onnx');
let tmp: string | undefined;
afterAll(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

async function collect(it: AsyncIterable<InputBatch>): Promise<InputBatch[]> {
  const out: InputBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describeShared('TensorRT plans of the real models', () => {
  it.each([
    ['mobileface_paddle_128d.onnx', 24, 8],
    ['scrfd_500m_bnkps.onnx', 8, 4],
    ['scrfd_500m_bnkps_dynamic.onnx', 8, 4],
  ] as const)('%s: Q/DQ graph valid, runs on CPU, meets the cosine target on held-apart faces', async (file, nCal, nSlice) => {
    tmp ??= await mkdtemp(path.join(tmpdir(), 'faceopt-trt-real-'));
    const model = loadModel(shared('models', file));
    const profile = detectProfile(summarizeModel(model.proto));
    prepareFloatGraph(model, TENSORRT_REWRITES, 13);
    const split = splitCalibration(FACES, { size: nCal + nSlice });
    const batches = (images: string[]) => (profile.role === 'recognizer'
      ? recognizerBatches({ facesDir: FACES, images, detector: DETECTOR, profile })
      : detectorBatches({ facesDir: FACES, images, profile, detSize: [640, 640] }));
    // the CLI's defaults: percentile ranges for recognizers, min/max on mosaic frames for detectors
    const stats = await collectActivationStats(model, batches(split.calibration.slice(0, nCal)), { method: profile.role === 'recognizer' ? 'percentile' : 'minmax' });
    const slice = await collect(batches(split.calibration.slice(nCal)));
    const plan = await writeTensorrtBundle({
      model, stats, outDir: path.join(tmp, file), precision: 'int8', role: profile.role,
      accuracy: { slice, maxFloat: 16 }, batch: profile.role === 'recognizer' ? { min: 1, opt: 4, max: 16 } : undefined,
    });
    const q = plan.quantization!;
    expect(q.check.violations).toEqual([]);
    expect(q.check.quantizeNodes).toBeGreaterThan(30);
    expect(Object.keys(q.cpuRun.outputs).length).toBe(profile.role === 'recognizer' ? 1 : 9);
    expect(q.accuracy!.samples).toBe(nSlice);
    // the role's default target, the same as --int8's
    expect(q.accuracy!.target).toBe(profile.role === 'recognizer' ? 0.995 : 0.998);
    // measured (percentile, this slice): mobileface all-int8 ~0.46 -> >= 0.995 with ~12 float layers
    expect(q.accuracy!.met, JSON.stringify(q.accuracy)).toBe(true);
    expect(q.accuracy!.cosine).toBeGreaterThanOrEqual(profile.role === 'recognizer' ? 0.995 : 0.998);
  });
});
