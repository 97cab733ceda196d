/**
 * The micro-batcher's timing rules and bookkeeping, driven by fake timers and runs held open by the test
 * (no wall-clock assumptions): with maxBatch 1 an item does not wait maxWaitMs, a batch that fills up runs at once, what queued during a run goes right
 * after it, a burst's share is ceil(total / lanes) and stays so burst after burst, expired items are
 * dropped, a run with the wrong number of outputs fails its items, and idle() waits for every run.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { MicroBatcher } from '../../server/batcher.js';

/** A model whose runs stay open until the test ends them, in the order they started. */
function heldRuns() {
  const runs: { items: number[]; finish: () => void }[] = [];
  const run = (items: number[]) => new Promise<number[]>((resolve) => { runs.push({ items, finish: () => resolve(items.map((x) => x * 10)) }); });
  return { runs, run, sizes: () => runs.map((r) => r.items.length) };
}

beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] }); });
afterEach(() => { vi.useRealTimers(); });

describe('MicroBatcher timing', () => {
  it('maxBatch 1 (batching off) runs each item at once; a partial batch waits maxWaitMs for company', async () => {
    const m = heldRuns();
    const serial = new MicroBatcher<number, number>({ name: 't', maxBatch: 1, maxWaitMs: 10_000, run: m.run });
    const one = serial.submit(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(m.sizes()).toEqual([1]);
    m.runs[0]!.finish();
    expect(await one).toBe(10);
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 2, maxWaitMs: 10_000, run: m.run });
    const alone = b.submit(3);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(m.sizes()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1_001);
    expect(m.sizes()).toEqual([1, 1]);
    m.runs[1]!.finish();
    expect(await alone).toBe(30);
  });

  it('a batch that fills up while its first item waits for company runs at once', async () => {
    const m = heldRuns();
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 3, maxWaitMs: 10_000, run: m.run });
    const first = b.submit(1); // arms the 10 s wait
    await vi.advanceTimersByTimeAsync(5);
    expect(m.sizes()).toEqual([]);
    const rest = [2, 3].map((x) => b.submit(x)); // full: waits no longer (it waited out the 10 s before)
    await vi.advanceTimersByTimeAsync(1);
    expect(m.sizes()).toEqual([3]);
    m.runs[0]!.finish();
    expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30]);
    await vi.advanceTimersByTimeAsync(20_000); // the replaced wait does not fire a second, empty run
    expect(m.sizes()).toEqual([3]);
  });

  it('with two lanes, the part of a burst left waiting for company runs as soon as a run ends', async () => {
    const m = heldRuns();
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 8, maxWaitMs: 10_000, lanes: 2, run: m.run });
    const first = [1, 2, 3, 4, 5, 6, 7, 8].map((x) => b.submit(x)); // full: lane 1 takes its share, 4
    await vi.advanceTimersByTimeAsync(1);
    expect(m.sizes()).toEqual([4]); // the other 4 wait for company (the second lane is free)
    m.runs[0]!.finish();
    await vi.advanceTimersByTimeAsync(1); // they have waited a whole run: they go now, not after 10 s,
    expect(m.sizes()).toEqual([4, 2]); // a share of them (ceil(4 / 2) with both lanes free)
    for (let i = 1; i < 8 && m.sizes().reduce((a, n) => a + n, 0) < 8; i++) {
      m.runs.slice(1).forEach((r) => r.finish());
      await vi.advanceTimersByTimeAsync(10_001);
    }
    m.runs.forEach((r) => r.finish());
    expect(await Promise.all(first)).toEqual([10, 20, 30, 40, 50, 60, 70, 80]);
  });

  it('items that queued during a run go right after it, without another maxWaitMs', async () => {
    const m = heldRuns();
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 4, maxWaitMs: 10_000, run: m.run });
    const first = [1, 2, 3, 4].map((x) => b.submit(x));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(m.sizes()).toEqual([4]);
    const later = b.submit(5); // the lane is busy: waits for the run, not for maxWaitMs
    await vi.advanceTimersByTimeAsync(1);
    expect(m.sizes()).toEqual([4]);
    m.runs[0]!.finish();
    await Promise.all(first);
    await vi.advanceTimersByTimeAsync(1);
    expect(m.sizes()).toEqual([4, 1]);
    m.runs[1]!.finish();
    expect(await later).toBe(50);
  });

  it('lanes: a run takes ceil(total / lanes) of an odd burst, and every later burst is split again', async () => {
    const m = heldRuns();
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 32, maxWaitMs: 1, lanes: 2, run: m.run });
    const sizes: number[][] = [];
    for (const n of [5, 16, 16]) {
      expect(m.runs).toHaveLength(0);
      const out = Array.from({ length: n }, (_, i) => b.submit(i));
      await vi.advanceTimersByTimeAsync(5);
      sizes.push(m.sizes());
      let done = false;
      void Promise.all(out).then(() => { done = true; });
      for (let k = 0; !done && k < 20; k++) {
        for (const r of m.runs.splice(0)) r.finish();
        await vi.advanceTimersByTimeAsync(5);
      }
      expect(done).toBe(true);
    }
    // 5 over two lanes: 3 (ceil(5/2)) and 2; each burst of 16 after the others: 8 and 8
    expect(sizes).toEqual([[3, 2], [8, 8], [8, 8]]);
    await b.idle();
  });
});

describe('MicroBatcher items and outputs', () => {
  it('an item whose deadline has already passed is refused with FACEOPT_ERR_TIMEOUT and never run', async () => {
    const seen: number[] = [];
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 4, maxWaitMs: 0, run: async (xs) => { seen.push(...xs); return xs; } });
    const late = b.submit(1, { at: performance.now() - 1, ms: 60_000 });
    const onTime = b.submit(2, { at: performance.now() + 60_000, ms: 60_000 });
    const settled = Promise.allSettled([late, onTime]);
    await vi.advanceTimersByTimeAsync(1);
    const [l, o] = await settled;
    expect(l.status === 'rejected' && isFaceoptError(l.reason, 'FACEOPT_ERR_TIMEOUT')).toBe(true);
    expect(o).toEqual({ status: 'fulfilled', value: 2 });
    expect(seen).toEqual([2]);
  });

  it('a run that returns fewer outputs than items fails every item of it, naming the model', async () => {
    const b = new MicroBatcher<number, number>({ name: 'recognizer', maxBatch: 4, maxWaitMs: 0, run: async (xs) => xs.slice(1) });
    const settled = Promise.allSettled([b.submit(1), b.submit(2)]);
    await vi.advanceTimersByTimeAsync(1);
    const res = await settled;
    expect(res.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((res[0] as PromiseRejectedResult).reason)).toContain('recognizer returned 1 outputs for 2 inputs');
  });
});

describe('MicroBatcher idle()', () => {
  it('waits for the run in progress, not only for the queue to empty', async () => {
    const m = heldRuns();
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 1, maxWaitMs: 0, run: m.run });
    const item = b.submit(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(b.depth).toBe(0);
    let idle = false;
    void b.idle().then(() => { idle = true; });
    await vi.advanceTimersByTimeAsync(10);
    expect(idle).toBe(false);
    m.runs[0]!.finish();
    await item;
    await vi.advanceTimersByTimeAsync(1);
    expect(idle).toBe(true);
  });

  it('with two lanes, waits for the last run, not the first to finish', async () => {
    const m = heldRuns();
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 1, maxWaitMs: 0, lanes: 2, run: m.run });
    const items = [b.submit(1), b.submit(2)];
    await vi.advanceTimersByTimeAsync(1);
    expect(m.sizes()).toEqual([1, 1]);
    let idle = false;
    void b.idle().then(() => { idle = true; });
    m.runs[0]!.finish();
    await items[0];
    await vi.advanceTimersByTimeAsync(10);
    expect(idle).toBe(false);
    expect(b.busy).toBe(true);
    m.runs[1]!.finish();
    await items[1];
    await vi.advanceTimersByTimeAsync(1);
    expect(idle).toBe(true);
  });
});
