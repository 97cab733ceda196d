/**
 * Admission and the decode semaphore in detail, with fake timers and a fake clock (no wall-clock
 * assumptions): Retry-After is the queue's work at the recent pace, in whole seconds, capped at 60; the
 * work's deadline is now + timeout; the admitted count is reported as it changes; a finished request
 * leaves no deadline timer behind; checkDeadline refuses a passed deadline; a
 * semaphore's slot count survives a double release and hand-overs.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { Admission, checkDeadline, Semaphore } from '../../server/admission.js';

const retryAfterOf = (e: unknown): number => Number((e as { params: { retryAfter: number } }).params.retryAfter);

describe('Admission (fake clock)', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }); });
  afterEach(() => { vi.useRealTimers(); });

  /** Run one request that takes `ms` (fake) so the admission learns its pace. */
  async function learn(adm: Admission, ms: number): Promise<void> {
    const p = adm.run(() => new Promise<void>((r) => setTimeout(r, ms)));
    await vi.advanceTimersByTimeAsync(ms);
    await p;
    await vi.advanceTimersByTimeAsync(0);
    expect(adm.inflight).toBe(0);
  }

  it('Retry-After: requests in the queue x the recent mean request time, rounded up to whole seconds', async () => {
    const adm = new Admission(4, 10_000_000);
    await learn(adm, 10_000); // mean: 0.8 x 50 + 0.2 x 10000 = 2040 ms
    let finish!: () => void;
    const gate = new Promise<void>((r) => { finish = r; });
    const held = Array.from({ length: 4 }, () => adm.run(() => gate));
    const refused = await adm.run(async () => 1).catch((e: unknown) => e);
    expect(isFaceoptError(refused, 'FACEOPT_ERR_OVERLOADED')).toBe(true);
    expect(retryAfterOf(refused)).toBe(9); // ceil(4 x 2040 / 1000)
    finish();
    await Promise.all(held);
  });

  it('Retry-After is capped at 60 s however slow the recent requests were', async () => {
    const adm = new Admission(1, 10_000_000);
    await learn(adm, 400_000); // mean 80 s
    let finish!: () => void;
    const held = adm.run(() => new Promise<void>((r) => { finish = r; }));
    const refused = await adm.run(async () => 1).catch((e: unknown) => e);
    expect(retryAfterOf(refused)).toBe(60);
    finish();
    await held;
  });

  it('the work gets the request deadline (now + timeout), and the admitted count is reported after each change', async () => {
    const counts: number[] = [];
    const adm = new Admission(2, 1000, { onAdmitted: (n) => counts.push(n) });
    let seen: unknown = null;
    let finish!: () => void;
    const t0 = performance.now();
    const p = adm.run((d) => { seen = d; return new Promise<void>((r) => { finish = r; }); });
    expect(seen).toEqual({ at: t0 + 1000, ms: 1000 });
    expect(counts).toEqual([1]);
    finish();
    await p;
    await vi.advanceTimersByTimeAsync(0);
    expect(counts).toEqual([1, 0]);
  });

  it('a request that finished in time leaves no deadline timer behind', async () => {
    const adm = new Admission(2, 30_000);
    expect(await adm.run(async () => 7)).toBe(7);
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('checkDeadline', () => {
  it('refuses a deadline that has passed with FACEOPT_ERR_TIMEOUT naming the budget; a future one passes', () => {
    let thrown: unknown = null;
    try { checkDeadline({ at: performance.now() - 1, ms: 60_000 }); } catch (e) { thrown = e; }
    expect(isFaceoptError(thrown, 'FACEOPT_ERR_TIMEOUT')).toBe(true);
    expect(String((thrown as Error).message)).toContain('60000');
    expect(() => checkDeadline({ at: performance.now() + 60_000, ms: 60_000 })).not.toThrow();
    expect(() => checkDeadline(null)).not.toThrow();
  });
});

describe('Semaphore slot count', () => {
  it('a release called twice frees one slot only', async () => {
    const s = new Semaphore(1);
    const r1 = await s.acquire();
    r1();
    r1();
    const r2 = await s.acquire();
    let third = false;
    void s.acquire().then(() => { third = true; });
    await new Promise((r) => setImmediate(r));
    expect(third).toBe(false);
    expect(s.waiting).toBe(1);
    r2();
  });

  it('a slot handed over to a waiter stays taken: the next caller waits', async () => {
    const s = new Semaphore(1);
    const r1 = await s.acquire();
    const p2 = s.acquire();
    r1(); // handed to the waiter
    const r2 = await p2;
    let third = false;
    const p3 = s.acquire().then((r) => { third = true; return r; });
    await new Promise((r) => setImmediate(r));
    expect(third).toBe(false);
    r2();
    (await p3)();
    expect(third).toBe(true);
  });
});
