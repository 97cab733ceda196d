/**
 * A recognizer exported with a fixed batch of 1 ([1,3,112,112], as some ArcFace exports are) is calibrated
 * one face at a time by `--int8` and `--tensorrt`: batches of 16 failed with "invalid dimensions"
 * (FACEOPT_ERR_INFERENCE, exit 70).
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
      model: file, out: path.join(dir, 'mbf_b1.int8.onnx'), facesDir: shared('faces', 'lfw'), calibrationSize: 40,
      detector: shared('models', 'scrfd_500m_bnkps.onnx'), evaluate: false, quiet: true, threads: 1,
      method: 'minmax', quantize: {}, floatPrefix: 0, floatSuffix: 0, log: (l) => lines.push(l),
    } as Int8Options);
    expect(existsSync(r.modelPath)).toBe(true);
    expect(lines.join('\n')).toMatch(/calibration: \d+ images/);
  }, 240_000);
});
