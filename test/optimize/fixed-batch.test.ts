/**
 * A recognizer exported with a fixed batch ([1,3,112,112], as some ArcFace exports are, or [4,...]) is
 * calibrated that many faces at a time by `--int8` and `--tensorrt`: batches of 16 failed with "invalid
 * dimensions" (FACEOPT_ERR_INFERENCE, exit 70); until 2026-12-06 a fixed batch other than 1 still did.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { onnx } from '../../pipeline/onnx/proto.js';
import { optimizeInt8, type Int8Options } from '../../pipeline/optimize/int8.js';
import { mobilefacenet } from '../fixtures/mobilefacenet.js';
import { describeShared, shared } from '../helpers/shared.js';

const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-fixed-batch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeShared('a recognizer with a fixed batch of 1', () => {
  it('--int8 calibrates it on aligned faces and writes a model', async () => {
    const file = path.join(dir, 'mbf_b1.onnx');
    writeFileSync(file, onnx.ModelProto.encode(mobilefacenet({ batchDim: 1 as unknown as string })).finish());
    const lines: string[] = [];
    const r = await optimizeInt8({
      model: file, out: path.join(dir, 'mbf_b1.int8.onnx'), reportDir: path.join(dir, 'mbf_b1-report'), facesDir: shared('faces', 'lfw'), calibrationSize: 40,
      detector: shared('models', 'scrfd_500m_bnkps.onnx'), evaluate: false, quiet: true, threads: 1,
      method: 'minmax', quantize: {}, floatPrefix: 0, floatSuffix: 0, log: (l) => lines.push(l),
    } as Int8Options);
    expect(existsSync(r.modelPath)).toBe(true);
    expect(lines.join('\n')).toMatch(/calibration: \d+ images/);
  }, 240_000);
});

describeShared('a recognizer with a fixed batch of 4', () => {
  it('--int8 calibrates it in batches of exactly 4 (the last filled up with its own faces), searches, and evaluates', async () => {
    const file = path.join(dir, 'mbf_b4.onnx');
    writeFileSync(file, onnx.ModelProto.encode(mobilefacenet({ batchDim: 4 as unknown as string })).finish());
    const lines: string[] = [];
    // 41 photos: calibration and slice sizes that are not multiples of 4
    const r = await optimizeInt8({
      model: file, out: path.join(dir, 'mbf_b4.int8.onnx'), facesDir: shared('faces', 'lfw'), calibrationSize: 41,
      detector: shared('models', 'scrfd_500m_bnkps.onnx'), reportDir: path.join(dir, 'report-b4'), quiet: true, threads: 1,
      method: 'minmax', quantize: {}, log: (l) => lines.push(l),
    } as Int8Options).catch((e: Error & { code?: string }) => (e.code === 'FACEOPT_ERR_GATE_FAILED' ? null : Promise.reject(e)));
    expect(lines.join('\n')).toMatch(/calibration: \d+ images/);
    expect(existsSync(path.join(dir, 'mbf_b4.int8.onnx'))).toBe(true);
    // a synthetic-weight fixture may miss the accuracy gates; the report is written either way
    expect(r === null || existsSync(r.modelPath)).toBe(true);
    expect(existsSync(path.join(dir, 'report-b4', 'report.json'))).toBe(true);
  }, 400_000);
});
