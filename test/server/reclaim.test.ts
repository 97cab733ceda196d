/**
 * Giving large photos' memory back: the reclaimer runs a full collection once large decodes stop (or
 * when many piled up), never more often than its interval, and ignores small photos; the real
 * collector can be obtained at run time; a server fed a large photo runs one collection.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import sharp from 'sharp';
import { fullGc, MemoryReclaimer } from '../../server/reclaim.js';
import { fakeApp, FakeBackend } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MemoryReclaimer', () => {
  it('collects once after large decodes go quiet; small decodes never trigger it', async () => {
    let runs = 0;
    const freed: number[] = [];
    const r = new MemoryReclaimer(() => runs++, { largeBytes: 100, quietMs: 300, forceBytes: 10_000, minIntervalMs: 0 }, (b) => freed.push(b));
    r.noteDecoded(99); // small: ignored
    await sleep(400);
    expect(runs).toBe(0);
    r.noteDecoded(500);
    await sleep(150);
    r.noteDecoded(700); // the quiet period starts again
    await sleep(150);
    expect(runs).toBe(0); // 300 ms after the first large decode, 150 ms after the last
    await sleep(400);
    expect(runs).toBe(1);
    expect(freed).toEqual([1200]);
    r.close();
  });

  it('collects at once when forceBytes piled up, but not more often than minIntervalMs', async () => {
    const at: number[] = [];
    const r = new MemoryReclaimer(() => at.push(performance.now()), { largeBytes: 1, quietMs: 60_000, forceBytes: 100, minIntervalMs: 400 });
    r.noteDecoded(150);
    await sleep(100);
    expect(at.length).toBe(1); // at once, not after the minute of quiet
    r.noteDecoded(150); // over forceBytes again, but within the interval: waits for it
    await sleep(100);
    expect(at.length).toBe(1);
    await sleep(500);
    expect(at.length).toBe(2);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(395);
    r.close();
  });

  it('without a collector it does nothing; the real one is available at run time', async () => {
    const r = new MemoryReclaimer(null, { largeBytes: 1, quietMs: 1 });
    r.noteDecoded(1e9);
    await sleep(10);
    expect(r.runs).toBe(0);
    const gc = fullGc();
    expect(typeof gc).toBe('function');
    gc!(); // runs a full collection without throwing
  });
});

describe('server', () => {
  it('a large photo leads to one full collection shortly after its request; the default server counts them in /metrics', async () => {
    let runs = 0;
    const reclaimer = new MemoryReclaimer(() => runs++, { quietMs: 50, minIntervalMs: 0 });
    const { app } = await fakeApp({ cache: { memoryEntries: 0 } }, new FakeBackend(), true, { reclaimer });
    try {
      const big = await sharp({ create: { width: 1600, height: 1200, channels: 3, background: { r: 120, g: 90, b: 60 } } }).jpeg().toBuffer(); // 5.8 MB decoded
      const small = await sharp({ create: { width: 200, height: 200, channels: 3, background: { r: 120, g: 90, b: 60 } } }).jpeg().toBuffer();
      expect((await app.inject({ method: 'POST', url: '/v1/embed', payload: small, headers: { 'content-type': 'image/jpeg' } })).statusCode).toBe(200);
      await sleep(150);
      expect(runs).toBe(0);
      expect((await app.inject({ method: 'POST', url: '/v1/embed', payload: big, headers: { 'content-type': 'image/jpeg' } })).statusCode).toBe(200);
      await sleep(300);
      expect(runs).toBe(1);
    } finally {
      await app.close();
    }
    const { app: plain } = await fakeApp();
    try {
      expect((await plain.inject({ url: '/metrics' })).body).toMatch(/^faceopt_memory_reclaims_total 0$/m);
    } finally {
      await plain.close();
    }
  });
});

describe('MemoryReclaimer limits and lifecycle (fake timers)', () => {
  afterEach(() => { vi.useRealTimers(); });
  const fake = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });

  it('a decode of exactly largeBytes counts; exactly forceBytes collects without waiting for quiet', () => {
    fake();
    let runs = 0;
    const r = new MemoryReclaimer(() => runs++, { largeBytes: 100, quietMs: 50, forceBytes: 1000, minIntervalMs: 0 });
    r.noteDecoded(100);
    vi.advanceTimersByTime(60);
    expect(runs).toBe(1);
    const forced = new MemoryReclaimer(() => runs++, { largeBytes: 1, quietMs: 60_000, forceBytes: 100, minIntervalMs: 0 });
    forced.noteDecoded(100);
    vi.advanceTimersByTime(1);
    expect(runs).toBe(2);
    r.close();
    forced.close();
  });

  it('each collection reports the bytes decoded since the previous one, and the count starts again', () => {
    fake();
    const freed: number[] = [];
    const r = new MemoryReclaimer(() => undefined, { largeBytes: 1, quietMs: 50, forceBytes: 1000, minIntervalMs: 0 }, (b) => freed.push(b));
    r.noteDecoded(600);
    vi.advanceTimersByTime(60);
    r.noteDecoded(300);
    vi.advanceTimersByTime(60);
    r.noteDecoded(500); // 500 since the last collection: under forceBytes, waits for quiet
    vi.advanceTimersByTime(10);
    expect(freed).toEqual([600, 300]);
    vi.advanceTimersByTime(50);
    expect(freed).toEqual([600, 300, 500]);
    expect(r.runs).toBe(3);
    r.close();
  });

  it('close() cancels a collection that was scheduled', () => {
    fake();
    let runs = 0;
    const r = new MemoryReclaimer(() => runs++, { largeBytes: 1, quietMs: 50, minIntervalMs: 0 });
    r.noteDecoded(10);
    r.close();
    vi.advanceTimersByTime(1000);
    expect(runs).toBe(0);
  });

  it('a scheduled collection does not keep the process alive (its timer is unref\'d)', () => {
    const timers = () => process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length;
    const r = new MemoryReclaimer(() => undefined, { largeBytes: 1, quietMs: 60_000, minIntervalMs: 0 });
    const before = timers();
    r.noteDecoded(10);
    expect(timers()).toBe(before);
    r.close();
  });

  it('with the defaults (the inference threads\' reclaimer): 256 MiB of decodes collect without waiting for quiet, and collections stay 1 s apart', () => {
    fake();
    let runs = 0;
    const r = new MemoryReclaimer(() => runs++);
    r.noteDecoded(256 << 20);
    vi.advanceTimersByTime(1);
    expect(runs).toBe(1);
    r.noteDecoded(256 << 20);
    vi.advanceTimersByTime(900);
    expect(runs).toBe(1);
    vi.advanceTimersByTime(100);
    expect(runs).toBe(2);
    r.close();
  });
});
