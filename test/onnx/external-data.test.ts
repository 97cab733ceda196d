import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, saveModel, makeNode, onnx } from '../../pipeline/onnx/index.js';
import { modelFile } from '../../pipeline/evaluate/evaluate.js';
import { tinyModel } from './tiny.js';

/** A model whose weight `w` lives in `weights.bin` beside it; returns the .onnx path. */
function externalModel(dir: string): string {
  const m = tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 256] }, outputs: ['y'],
    nodes: [makeNode('Mul', ['x', 'w'], ['y'], 'mul')],
    initializers: [{ name: 'w', dims: [256], data: new Float32Array(256).fill(0.5) }],
  });
  const w = m.graph.initializer('w')!;
  writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(w.rawData!));
  w.rawData = new Uint8Array();
  w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  w.externalData = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: '1024' }];
  const file = path.join(dir, 'ext.onnx');
  writeFileSync(file, m.toBytes());
  return file;
}

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
