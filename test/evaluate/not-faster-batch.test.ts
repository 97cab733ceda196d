/**
 * evaluateVariant's "not faster" warning names the batch the speed runs used: a model exported with a
 * fixed batch of 4 is timed at batch 4 (the report's speed note says so), and the warning said "at batch 1".
 * measureSpeed is replaced by a fixed slow result, so the warning does not depend on this machine's load.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import type { SpeedResults } from '../../pipeline/report/types.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const timing = vi.hoisted(() => ({ batches: [] as number[] }));
vi.mock('../../pipeline/evaluate/speed.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../pipeline/evaluate/speed.js')>();
  const lat = { samples: 1, meanMs: 1, p50Ms: 1, p95Ms: 1, minMs: 1, maxMs: 1 };
  return {
    ...actual,
    measureSpeed: async (o: { dims: number[]; batch8: boolean }): Promise<SpeedResults> => {
      timing.batches.push(o.dims[0]!);
      const m = { batch1: lat, batch8: null, sessionStartMs: 1, peakMemoryBytes: null };
      // the batch the real measureSpeed times its first row at, and records
      const first = actual.firstTimedBatch(o.dims, o.batch8);
      return { executionProvider: 'cpu', threads: null, reference: m, variant: m, speedup: { batch1: 0.98, batch8: null }, ...(first > 1 ? { batch1TimedAt: first } : {}), note: null };
    },
  };
});
const { evaluateVariant } = await import('../../pipeline/evaluate/evaluate.js');

const work = mkdtempSync(path.join(tmpdir(), 'faceopt-notfaster-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('evaluateVariant: the not-faster warning of a fixed-batch model', () => {
  it('says "at batch 4" for a model fixed at batch 4', async () => {
    const model = path.join(work, 'fixed4.onnx');
    await saveModel(tinyModel({
      opset: 13, input: { name: 'x', shape: [4, 16] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'w'], ['y'], 'fc', { transB: 1 })],
      initializers: [{ name: 'w', dims: [8, 16], data: seededFloats(128, 1) }],
    }), model);
    const report = await evaluateVariant({
      role: 'generic', reference: model, variant: model, variantName: 'same', variantPrecision: 'fp32',
      inputDims: [4, 16], dynamicBatch: false,
      split: { method: 'none', description: 'none', calibrationImages: 0, evaluationImages: 0, calibrationIdentities: null, evaluationIdentities: null, sharedIdentities: null },
    });
    expect(timing.batches).toEqual([4]);
    const warning = report.warnings.find((w) => w.includes('not faster'));
    expect(warning).toMatch(/\(0\.98x at batch 4\)/);
  });
});
