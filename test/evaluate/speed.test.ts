/**
 * Side-by-side speed measurement: the two models take turns in blocks, the first runs of each block
 * untimed; measureSpeed on two synthetic models gives a complete, well-formed result.
 */
import { describe, expect, it } from 'vitest';
import { blockSpeedups, firstTimedBatch, measureSpeed, NOT_FASTER_BELOW, notFasterWarning, pairedSpeedup, pairedTimes, SPEED_BLOCK, timeInBlocks } from '../../pipeline/evaluate/speed.js';
import { fastestShortest } from '../../pipeline/quantize/prefix.js';
import { latencySummary } from '../../pipeline/evaluate/metrics.js';
import { fixtureFile } from '../fixtures/index.js';

describe('timeInBlocks', () => {
  it('alternates blocks, skips the settling runs and returns exactly `runs` timings each', async () => {
    const calls: string[] = [];
    let t = 0;
    const runner = (name: string) => async () => { calls.push(name); return ++t; };
    const runs = SPEED_BLOCK.runs + 3;
    const [ta, tb] = await timeInBlocks(runner('a'), runner('b'), runs);
    expect(ta).toHaveLength(runs);
    expect(tb).toHaveLength(runs);
    const block = (name: string, n: number) => Array(SPEED_BLOCK.settle + n).fill(name);
    expect(calls).toEqual([...block('a', SPEED_BLOCK.runs), ...block('b', SPEED_BLOCK.runs), ...block('a', 3), ...block('b', 3)]);
    // the settling runs' values are not among the timings
    expect(ta.slice(0, 2)).toEqual([SPEED_BLOCK.settle + 1, SPEED_BLOCK.settle + 2]);
  });
});

describe('blockSpeedups', () => {
  it('one ratio of medians per pair of blocks, in order', () => {
    const n = SPEED_BLOCK.runs;
    const ta = [...Array(n).fill(10), ...Array(n).fill(12), 9, 9, 30];
    const tb = [...Array(n).fill(5), ...Array(n).fill(4), 3, 3, 1];
    expect(blockSpeedups(ta, tb)).toEqual([2, 3, 3]);
  });
});

describe('pairedSpeedup', () => {
  const n = SPEED_BLOCK.runs;
  it('is the median of the block ratios, inside their range where the pooled medians are not', () => {
    // the host slows down during the first variant block: every pair of blocks reads 4x or more, but the
    // medians over all runs pair a fast reference timing with a slow variant one
    const ta = [...Array(n).fill(8), ...Array(n).fill(12), ...Array(n).fill(12)];
    const tb = [...Array(n / 2).fill(2), ...Array(n / 2).fill(3), ...Array(n).fill(3), ...Array(n).fill(2.9)];
    const blocks = blockSpeedups(ta, tb);
    expect(blocks.map((x) => Number(x.toFixed(3)))).toEqual([3.2, 4, 4.138]);
    const pooled = latencySummary(ta).p50Ms / latencySummary(tb).p50Ms;
    expect(pooled).toBeCloseTo(12 / 2.95, 9);
    expect(pairedSpeedup(blocks, latencySummary(ta), latencySummary(tb))).toBe(4);
  });
  it('takes the mean of the middle two for an even count, and the pooled ratio without blocks', () => {
    const l = latencySummary([10]);
    expect(pairedSpeedup([2, 5, 3, 4], l, l)).toBe(3.5);
    expect(pairedSpeedup([], latencySummary([9, 9]), latencySummary([3, 3]))).toBe(3);
  });
});

describe('pairedTimes', () => {
  const n = SPEED_BLOCK.runs;
  it('keeps the first runner\'s p50 and scales the others by their paired speed-up over it', () => {
    const t0 = [...Array(n).fill(10), ...Array(n).fill(12)];
    const t1 = [...Array(n).fill(5), ...Array(n).fill(6)];
    expect(pairedTimes([t0, t1, t0])).toEqual([11, 5.5, 11]);
  });
  it('picks the faster candidate where a change of pace between rounds makes the pooled medians pick the other', () => {
    // round one fast, round two twice as slow; candidate 1 is 8.7% faster in both, but one slow run in
    // its fast block moves its pooled median (which falls in the gap between the rounds) above candidate 0's
    const c0 = [...Array(n - 1).fill(10), 10.5, ...Array(n).fill(20)];
    const c1 = [...Array(n - 1).fill(9.2), 14, ...Array(n).fill(18.4)];
    const pooled = [c0, c1].map((t) => latencySummary(t).p50Ms);
    expect(pooled).toEqual([15.25, 16.2]);
    expect(fastestShortest(pooled)).toBe(0);
    const paired = pairedTimes([c0, c1]);
    expect(paired[0]).toBe(15.25);
    expect(paired[1]).toBeCloseTo(15.25 * 0.92, 9);
    expect(fastestShortest(paired)).toBe(1);
  });
});

describe('notFasterWarning', () => {
  it('warns only when no measured batch size is faster', () => {
    expect(notFasterWarning({ speedup: { batch1: 0.98, batch8: null } })).toMatch(/not faster .*0\.98x at batch 1\): here it saves file size only;/);
    expect(notFasterWarning({ speedup: { batch1: 0.98, batch8: null } }, 0.32)).toMatch(/: here it saves file size only;/);
    expect(notFasterWarning({ speedup: { batch1: 0.99, batch8: null } }, 1.0)).toMatch(/: here it saves neither time nor file size \(1\.00x the file\);/);
    expect(notFasterWarning({ speedup: { batch1: 1.01, batch8: 0.97 } })).toMatch(/1\.01x at batch 1, 0\.97x at batch 8/);
    expect(notFasterWarning({ speedup: { batch1: 0.99, batch8: NOT_FASTER_BELOW } })).toBeNull();
    expect(notFasterWarning({ speedup: { batch1: 2.3, batch8: 2.2 } })).toBeNull();
  });
  it('names the batch the first row was timed at: a fixed batch of 4 is "batch 4", not a batch 1 that never ran', () => {
    expect(notFasterWarning({ speedup: { batch1: 0.98, batch8: null }, batch1TimedAt: 4 }, 0.3)).toMatch(/not faster than the reference on this machine \(0\.98x at batch 4\): here it saves file size only;/);
    expect(notFasterWarning({ speedup: { batch1: 0.98, batch8: null }, batch1TimedAt: 4 }, 0.3)).not.toMatch(/batch 1/);
    // the batch measureSpeed times the first row at
    expect(firstTimedBatch([4, 3, 112, 112], false)).toBe(4);
    expect(firstTimedBatch([1, 3, 112, 112], false)).toBe(1);
    expect(firstTimedBatch([1, 3, 112, 112], true)).toBe(1);
  });
});

describe('measureSpeed', () => {
  it('times both models at batch 1 and 8 and reports the median block ratio', async () => {
    const model = await fixtureFile('mobilefacenet512');
    const s = await measureSpeed({ reference: model, variant: model, dims: [1, 3, 112, 112], batch8: true, runs: 4 });
    for (const m of [s.reference, s.variant]) {
      expect(m.batch1.samples).toBe(4);
      expect(m.batch1.p50Ms).toBeGreaterThan(0);
      expect(m.batch8?.p50Ms).toBeGreaterThan(0);
    }
    // one block (4 runs): its ratio, which is also the ratio of the medians over all runs
    expect(s.speedup.batch1).toBe(s.blockSpeedups!.batch1[0]);
    expect(s.speedup.batch8).toBe(s.blockSpeedups!.batch8![0]);
    expect(s.speedup.batch1).toBeCloseTo(s.reference.batch1.p50Ms / s.variant.batch1.p50Ms, 9);
    // the note says what ran: one block of 4 (it said "blocks of 10 timed runs")
    expect(s.note).toContain('take turns in one block of 4 timed runs');
    expect(SPEED_BLOCK.runs).toBeGreaterThan(4);
    expect(s.blockSpeedups?.batch1).toHaveLength(1);
    expect(s.blockSpeedups?.batch8).toHaveLength(1);
  });
});
