/**
 * bench:server's open-loop tail load (bench/paced.ts): Poisson arrivals (seeded, the right mean rate,
 * exponential gaps) and evenly spaced ones, sent whether or not earlier requests were answered, latency
 * from the scheduled arrival, non-2xx counted; the ideal FIFO server's latencies (fifoFloor) against
 * hand-computed queues and queueing theory.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrivalsOf, constantArrivals, fifoFloor, pacedLoad, poissonArrivals, steadyHost } from '../../bench/paced.js';

describe('Poisson arrivals', () => {
  it('are seeded, ascending, inside the window, at the mean rate, with exponential gaps', () => {
    expect(poissonArrivals(40, 5, 3)).toEqual(poissonArrivals(40, 5, 3));
    expect(poissonArrivals(40, 5, 3)).not.toEqual(poissonArrivals(40, 5, 4));
    const a = poissonArrivals(50, 400, 11);
    expect(a.every((t, i) => t >= 0 && t < 400_000 && (i === 0 || t > a[i - 1]!))).toBe(true);
    expect(a.length / 400).toBeGreaterThan(49);
    expect(a.length / 400).toBeLessThan(51);
    const gaps = a.slice(1).map((t, i) => t - a[i]!);
    const mean = gaps.reduce((p, q) => p + q, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((p, q) => p + (q - mean) ** 2, 0) / gaps.length);
    expect(mean).toBeCloseTo(20, 0);
    expect(sd / mean).toBeGreaterThan(0.95); // exponential: sd = mean (evenly spaced arrivals would give 0)
    expect(sd / mean).toBeLessThan(1.05);
  });
});

describe('evenly spaced arrivals', () => {
  it('start at 0, keep the gap and stay inside the window', () => {
    expect(constantArrivals(4, 1)).toEqual([0, 250, 500, 750]);
    expect(constantArrivals(40, 5)).toHaveLength(200);
    expect(arrivalsOf('constant', 4, 1, 9)).toEqual([0, 250, 500, 750]);
    expect(arrivalsOf('poisson', 40, 5, 3)).toEqual(poissonArrivals(40, 5, 3));
  });
});

describe('the ideal FIFO server (fifoFloor)', () => {
  it('queues a burst first come, first served on its workers', () => {
    // four requests at once, two workers of 10 ms: answered at 10, 10, 20, 20
    expect(fifoFloor([0, 0, 0, 0], 2, 10)).toEqual({ p50: 15, p99: 20 });
    // one worker: 10, 20, 30, 40 ms
    const one = fifoFloor([0, 0, 0, 0], 1, 10);
    expect(one.p50).toBe(25);
    expect(one.p99).toBeCloseTo(39.7, 6);
  });

  it('never queues evenly spaced arrivals below capacity', () => {
    expect(fifoFloor(constantArrivals(50, 20), 2, 30)).toEqual({ p50: 30, p99: 30 });
  });

  it('gives M/D/2 queueing at 80% of capacity under Poisson arrivals', () => {
    // 2 workers of 25 ms = 80 per second; Poisson at 64 per second over 2000 s (128k requests)
    const { p50, p99 } = fifoFloor(poissonArrivals(64, 2000, 7), 2, 25);
    // M/D/2 at rho 0.8 (simulated independently with 200k requests): p50 ~1.55 and p99 ~6.3 service times
    expect(p50 / 25).toBeGreaterThan(1.4);
    expect(p50 / 25).toBeLessThan(1.7);
    expect(p99 / p50).toBeGreaterThan(3.6);
    expect(p99 / p50).toBeLessThan(4.6);
  });
});

describe('a steady host (steadyHost)', () => {
  it('counts a block unless the saturation rate after it fell so far that 80% of the one before exceeds 88% of it', () => {
    expect(steadyHost(56, 43.3)).toBe(false); // the loaded phase that ran into a block: 44.8 sent against ~43 of capacity
    expect(steadyHost(43.3, 56)).toBe(true); // faster afterwards: 80% of the slower rate before
    expect(steadyHost(56, 52)).toBe(true); // 44.8 <= 0.88 x 52 = 45.8
    expect(steadyHost(56, 50)).toBe(false); // 44.8 > 44.0
    expect(steadyHost(100, 100)).toBe(true);
  });
});

describe('open-loop load', () => {
  let server: http.Server;
  let base = '';
  let inFlight = 0;
  let maxInFlight = 0;
  let bodies = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let n = 0;
      req.on('data', (c: Buffer) => { n += c.length; });
      req.on('end', () => {
        if (n === 5) bodies++;
        // 150 ms per answer, far longer than the ~10 ms between arrivals; /busy is refused
        setTimeout(() => { inFlight--; res.writeHead(req.url === '/busy' ? 503 : 200).end('{}'); }, 150);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends at the arrivals without waiting for answers, times from the scheduled arrival and counts non-2xx', async () => {
    const req = (path: string) => ({ method: 'POST', path, headers: { 'content-type': 'text/plain' }, body: Buffer.from('hello') });
    const r = await pacedLoad(base, [req('/a'), req('/b'), req('/c'), req('/busy')], 100, 1, { seed: 5 });
    expect(r.sent).toBe(poissonArrivals(100, 1, 5).length);
    expect(r.answered).toBe(r.sent);
    expect(bodies).toBe(r.sent);
    expect(r.errors).toBe(0);
    expect(r.non2xx).toBe(Math.floor(r.sent / 4)); // every 4th request goes to /busy
    expect(maxInFlight).toBeGreaterThan(5); // open loop: ~15 requests wait at once
    expect(r.p50).toBeGreaterThanOrEqual(150);
    expect(r.p99).toBeGreaterThanOrEqual(r.p50);
    expect(r.rate).toBeGreaterThan(40);
  });

  it('sends evenly spaced arrivals when asked', async () => {
    const req = { method: 'POST', path: '/a', headers: { 'content-type': 'text/plain' }, body: Buffer.from('hello') };
    const r = await pacedLoad(base, [req], 50, 1, { arrivals: 'constant' });
    expect(r.sent).toBe(50);
    expect(r.answered).toBe(50);
    // every request waits its 150 ms and no more: nothing queues in a server without a queue
    expect(r.p50).toBeGreaterThanOrEqual(150);
    expect(r.p99).toBeLessThan(400);
  });
});
