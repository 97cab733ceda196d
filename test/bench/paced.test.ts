/**
 * bench:server's open-loop tail load (bench/paced.ts): Poisson arrivals (seeded, the right mean rate,
 * exponential gaps) and evenly spaced ones, sent whether or not earlier requests were answered, latency
 * from the scheduled arrival, non-2xx counted; the ideal FIFO server's latencies (fifoFloor) against
 * hand-computed queues and queueing theory.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrivalsOf, constantArrivals, fifoFloor, medianBlock, pacedLoad, poissonArrivals, steadyHost } from '../../bench/paced.js';

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
  it('counts a block only when the saturation rates before and after it differ by less than 0.88 / 0.8 either way', () => {
    expect(steadyHost(56, 43.3)).toBe(false); // the loaded phase that ran into a block: 44.8 sent against ~43 of capacity
    expect(steadyHost(56, 52)).toBe(true); // 44.8 <= 0.88 x 52 = 45.8
    expect(steadyHost(56, 50)).toBe(false); // 44.8 > 44.0
    expect(steadyHost(100, 100)).toBe(true);
    // faster afterwards: 34.6 sent against ~56 of capacity by the end, a block at 62%, not 80%, whose
    // shorter tail was kept while the slowed blocks were left out
    expect(steadyHost(43.3, 56)).toBe(false);
    expect(steadyHost(52, 56)).toBe(true); // 0.8 x 56 = 44.8 <= 0.88 x 52
    expect(steadyHost(50, 56)).toBe(false);
  });
});

describe('the block a row reports (medianBlock)', () => {
  const blocks = [{ r: 3 }, { r: 1 }, { r: 2 }, { r: 4 }];
  it('takes the middle block of an odd count', () => {
    expect(medianBlock(blocks.slice(0, 3), (b) => b.r, 'lower').r).toBe(2);
    expect(medianBlock(blocks.slice(0, 3), (b) => b.r, 'higher').r).toBe(2);
    expect(medianBlock([{ r: 5 }], (b) => b.r, 'lower').r).toBe(5);
  });
  it('takes the less favourable of the two middle blocks of an even count', () => {
    // p99/p50 (lower is better): 3, not 2; server/engine (higher is better): 2, not 3
    expect(medianBlock(blocks, (b) => b.r, 'lower').r).toBe(3);
    expect(medianBlock(blocks, (b) => b.r, 'higher').r).toBe(2);
    // two steady blocks of three: the tail row reports the worse one
    expect(medianBlock([{ r: 2.1 }, { r: 4.5 }], (b) => b.r, 'lower').r).toBe(4.5);
  });
  it('refuses no blocks', () => {
    expect(() => medianBlock([], (b: { r: number }) => b.r, 'lower')).toThrow();
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
        // 150 ms per answer, far longer than the ~10 ms between arrivals; /busy is refused; /drop waits
        // 400 ms and closes the socket without an answer
        if (req.url === '/drop') setTimeout(() => { inFlight--; req.socket.destroy(); }, 400);
        else setTimeout(() => { inFlight--; res.writeHead(req.url === '/busy' ? 503 : 200).end('{}'); }, 150);
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

  it('keeps requests that got no answer in the latency percentiles, with their time to the failure', async () => {
    const req = (path: string) => ({ method: 'POST', path, headers: { 'content-type': 'text/plain' }, body: Buffer.from('hello') });
    // every 4th request is dropped after 400 ms: a quarter of the requests, so p50 is an answered one and p99 a dropped one
    const r = await pacedLoad(base, [req('/a'), req('/b'), req('/c'), req('/drop')], 40, 1, { arrivals: 'constant' });
    expect(r.sent).toBe(40);
    expect(r.errors).toBe(10);
    expect(r.answered).toBe(30);
    expect(r.p50).toBeGreaterThanOrEqual(150);
    expect(r.p50).toBeLessThan(400);
    // left out, the dropped quarter would leave p99 at an answered request's ~150 ms
    expect(r.p99).toBeGreaterThanOrEqual(400);
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
