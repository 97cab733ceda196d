/**
 * measureSpeed on tiny Gemm graphs: how many runs and blocks it makes by default, what its note says for
 * one block, the batch a fixed-batch model is timed at, the session settings it records; the edges of
 * the batch it picks and of the not-faster warning. Only counts and texts are checked, never times.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstTimedBatch, measureSpeed, notFasterWarning, SPEED_BLOCK, SPEED_RUNS } from '../../pipeline/evaluate/speed.js';
import { tinyGemm } from './tiny-gemm.js';

const root = mkdtempSync(path.join(tmpdir(), 'faceopt-speed-audit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dynamic = '';
let fixed4 = '';
beforeAll(async () => {
  dynamic = await tinyGemm(path.join(root, 'dyn.onnx'));
  fixed4 = await tinyGemm(path.join(root, 'f4.onnx'), 4);
});

describe('measureSpeed on tiny graphs', () => {
  it('by default times SPEED_RUNS runs per model in blocks, one ratio per block, and records the session settings', async () => {
    const s = await measureSpeed({ reference: dynamic, variant: dynamic, dims: [1, 16], batch8: false, session: { intraOpThreads: 1 } });
    expect(SPEED_RUNS).toBe(30);
    expect(s.reference.batch1.samples).toBe(SPEED_RUNS);
    expect(s.variant.batch1.samples).toBe(SPEED_RUNS);
    expect(s.blockSpeedups!.batch1).toHaveLength(SPEED_RUNS / SPEED_BLOCK.runs);
    expect(s.note).toContain(`take turns in blocks of ${SPEED_BLOCK.runs} timed runs`);
    expect(s).toMatchObject({ executionProvider: 'cpu', threads: 1, speedup: { batch8: null }, blockSpeedups: { batch8: null } });
    expect(s.batch1TimedAt).toBeUndefined();
  });

  it('one block of exactly SPEED_BLOCK.runs runs, or of one run, is named so', async () => {
    const ten = await measureSpeed({ reference: dynamic, variant: dynamic, dims: [1, 16], batch8: false, runs: SPEED_BLOCK.runs });
    expect(ten.note).toContain(`take turns in one block of ${SPEED_BLOCK.runs} timed runs (`);
    expect(ten.blockSpeedups!.batch1).toHaveLength(1);
    const one = await measureSpeed({ reference: dynamic, variant: dynamic, dims: [1, 16], batch8: false, runs: 1 });
    expect(one.note).toContain('take turns in one block of 1 timed run (');
    expect(one.threads).toBeNull();
  });

  it('a model that fixes a batch of 4 is timed at batch 4 (it refuses batch 1), and the result says so', async () => {
    const s = await measureSpeed({ reference: fixed4, variant: fixed4, dims: [4, 16], batch8: false, runs: 1 });
    expect(s.batch1TimedAt).toBe(4);
    expect(s.reference.batch1.samples).toBe(1);
    expect(s.note).toMatch(/^both models fix a batch of 4, so the batch-1 row is timed at batch 4; /);
  });
});

describe('edges', () => {
  it('firstTimedBatch: batch 1 whenever batch 8 is timed (the batch is dynamic)', () => {
    expect(firstTimedBatch([4, 3, 112, 112], true)).toBe(1);
    expect(firstTimedBatch([], false)).toBe(1);
  });
  it('notFasterWarning: a file of exactly 0.9x the reference\'s still saves file size', () => {
    expect(notFasterWarning({ speedup: { batch1: 1, batch8: null } }, 0.9)).toMatch(/: here it saves file size only;/);
    expect(notFasterWarning({ speedup: { batch1: 1, batch8: null } }, 0.91)).toMatch(/saves neither time nor file size \(0\.91x the file\)/);
  });
});
