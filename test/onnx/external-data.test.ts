import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, saveModel } from '../../pipeline/onnx/index.js';
import { modelFile } from '../../pipeline/evaluate/evaluate.js';
import { externalModel } from './tiny.js';

describe('models with external data', () => {
  it('the report counts the external data files in the model size', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-ext-'));
    const file = externalModel(dir);
    const f = await modelFile(file, 'fp32');
    expect(f.sizeBytes).toBe(statSync(file).size + 1024);
  });
  it('saveModel refuses an --out that is one of the source\'s external data files', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-ext-'));
    const file = externalModel(dir);
    const m = loadModel(file);
    const data = path.join(dir, 'weights.bin');
    const before = readFileSync(data);
    await expect(saveModel(m, data)).rejects.toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE' });
    await expect(saveModel(m.clone(), data, { source: file })).rejects.toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE' });
    expect(readFileSync(data)).toEqual(before);
    await saveModel(m, path.join(dir, 'copy.onnx'));
  });
});
