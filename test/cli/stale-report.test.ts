/**
 * A run that replaces a variant file and then stops before writing its own report (Ctrl-C during the
 * evaluation, an evaluation that fails) must not leave the earlier run's report beside the new file:
 * `faceopt report` printed that verdict (PASS) for bytes it never evaluated.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import { sha256File } from '../../pipeline/fsutil.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const evaluation = vi.hoisted(() => ({ fail: false }));
vi.mock('../../pipeline/evaluate/evaluate.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../pipeline/evaluate/evaluate.js')>();
  return {
    ...actual,
    evaluateVariant: async (...args: Parameters<typeof actual.evaluateVariant>) => {
      if (evaluation.fail) throw new Error('evaluation stopped');
      return actual.evaluateVariant(...args);
    },
  };
});
const { optimizeInt8 } = await import('../../pipeline/optimize/int8.js');

const work = mkdtempSync(path.join(tmpdir(), 'faceopt-stale-report-'));

describe('optimize --int8 stopped after the model is written', () => {
  it('leaves no earlier report describing other bytes beside the new file', async () => {
    const file = path.join(work, 'mlp.onnx');
    await saveModel(tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 16] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'w', 'b'], ['h'], 'fc1', { transB: 1 }), makeNode('Relu', ['h'], ['r'], 'relu'), makeNode('Gemm', ['r', 'w2'], ['y'], 'fc2', { transB: 1 })],
      initializers: [{ name: 'w', dims: [32, 16], data: seededFloats(512, 1) }, { name: 'b', dims: [32], data: seededFloats(32, 2) }, { name: 'w2', dims: [4, 32], data: seededFloats(128, 3) }],
    }), file);
    const out = path.join(work, 'mlp.int8.onnx');
    const reportDir = path.join(work, 'report');
    // no timed choices (float prefix/suffix): the same settings give the same bytes
    const base = { model: file, out, reportDir, method: 'minmax' as const, quantize: {}, floatPrefix: 0, floatSuffix: 0, log: () => undefined, quiet: true };
    await optimizeInt8(base);
    const first = JSON.parse(readFileSync(path.join(reportDir, 'report.json'), 'utf8'));
    expect(first.variant.sha256).toBe(await sha256File(out));

    // a second run with other settings writes other bytes, then its evaluation stops
    evaluation.fail = true;
    await expect(optimizeInt8({ ...base, quantize: { perChannel: false } })).rejects.toThrow('evaluation stopped');
    const now = await sha256File(out);
    expect(now).not.toBe(first.variant.sha256);
    const json = path.join(reportDir, 'report.json');
    if (existsSync(json)) expect(JSON.parse(readFileSync(json, 'utf8')).variant.sha256).toBe(now);
    expect(existsSync(path.join(reportDir, 'report.md'))).toBe(existsSync(json));

    // a run that writes the same bytes again keeps the report that describes them
    evaluation.fail = false;
    await optimizeInt8(base);
    evaluation.fail = true;
    const kept = JSON.parse(readFileSync(json, 'utf8')).variant.sha256;
    await expect(optimizeInt8(base)).rejects.toThrow('evaluation stopped');
    expect(JSON.parse(readFileSync(json, 'utf8')).variant.sha256).toBe(kept);
  });
});
