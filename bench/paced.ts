/**
 * Open-loop load at a fixed mean rate, for bench:server's tail-latency rows ("p99 at 80% of
 * saturation"). Requests go out at their scheduled arrivals whether or not earlier ones were answered,
 * each on a keep-alive socket of its own when needed, and each latency runs from the request's
 * scheduled arrival, so a late send counts against the server rather than hiding (no coordinated
 * omission). Two arrival processes:
 * - 'constant': evenly spaced, as wrk2's `-R`, k6's constant-arrival-rate and vegeta's default pacer
 *   send; a server that stalls (GC pauses, a blocked event loop, a lane left idle) shows in its p99.
 * - 'poisson': exponential gaps from a seeded generator, as MLPerf's server scenario sends queries;
 *   its p99 also holds the queueing that random bursts cause in any server, which `fifoFloor`
 *   estimates for an ideal one.
 *
 * Why not autocannon's `overallRate`: it gives each connection a budget per wall-clock second and
 * sends back to back until it is spent, then waits for the next second. At 80% of saturation that is
 * ~0.8 s of saturated, closed-loop load followed by ~0.2 s of nothing, every second: a burst test,
 * not a server at 80% of its capacity.
 */
import http from 'node:http';
import { percentileSorted } from '../pipeline/evaluate/stats.js';

/** Arrival offsets in ms (ascending, from 0) of a Poisson process of `rate` per second over `seconds`, seeded. */
export function poissonArrivals(rate: number, seconds: number, seed = 1): number[] {
  // mulberry32: small seeds give well-mixed streams from the first value on
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32; // (0, 1)
  };
  const out: number[] = [];
  for (let t = -Math.log(uniform()) * (1000 / rate); t < seconds * 1000; t += -Math.log(uniform()) * (1000 / rate)) out.push(t);
  return out;
}

/** Arrival offsets in ms of evenly spaced requests at `rate` per second over `seconds`, the first at 0. */
export function constantArrivals(rate: number, seconds: number): number[] {
  const out: number[] = [];
  for (let i = 0; i * (1000 / rate) < seconds * 1000; i++) out.push(i * (1000 / rate));
  return out;
}

export type ArrivalKind = 'constant' | 'poisson';

/** Arrival offsets in ms of `kind` at `rate` per second over `seconds` (the seed picks the Poisson stream). */
export function arrivalsOf(kind: ArrivalKind, rate: number, seconds: number, seed = 1): number[] {
  return kind === 'constant' ? constantArrivals(rate, seconds) : poissonArrivals(rate, seconds, seed);
}

/**
 * What an ideal server would answer under the same `arrivals` (ms offsets, ascending): `servers`
 * workers taking requests first come, first served, each request taking exactly `serviceMs`, no other
 * cost. Returns the p50 and p99 of its latencies (arrival to answer). With Poisson arrivals at 80% of
 * capacity and two workers this is about 4 (M/D/2), so a measured p99/p50 near it is queueing, not the
 * server; with evenly spaced arrivals below capacity it is 1.
 */
export function fifoFloor(arrivals: readonly number[], servers: number, serviceMs: number): { p50: number; p99: number } {
  const free = new Array<number>(servers).fill(-Infinity);
  const latencies: number[] = [];
  for (const at of arrivals) {
    let k = 0;
    for (let i = 1; i < servers; i++) if (free[i]! < free[k]!) k = i;
    const end = Math.max(at, free[k]!) + serviceMs;
    free[k] = end;
    latencies.push(end - at);
  }
  latencies.sort((a, b) => a - b);
  return { p50: latencies.length ? percentileSorted(latencies, 50) : NaN, p99: latencies.length ? percentileSorted(latencies, 99) : NaN };
}

/**
 * An open-loop block at `share` of the saturation rate measured before it counts when the host kept its
 * pace: the saturation rates before and after it differ by less than STEADY_LOAD / share (0.88 / 0.8:
 * 10%) either way. The host has quiet and loaded phases: an open loop at 80% of a quiet-phase rate that
 * runs into a loaded phase is a server at 100% and more, and its queue grows for the rest of the run
 * (2026-12-06 03:1x: saturation 56.0 before a block and 43.3 after it, p99/p50 13.0 in that block against
 * 1.6 in the next). The other way round is no better: 80% of a loaded-phase rate that runs into a quiet
 * phase is a server at 60-70%, whose tail is shorter than at 80%. Keeping those blocks while leaving out
 * the slowed ones (as before 2026-12-06) pulled the median toward the blocks that were under-loaded.
 */
export const STEADY_LOAD = 0.88;

export function steadyHost(before: number, after: number, share = 0.8): boolean {
  return share * Math.max(before, after) <= STEADY_LOAD * Math.min(before, after);
}

/**
 * The block a row reports: the median of `items` by `key`. With an even count there are two middle
 * blocks, and the one picked is the less favourable: the lower of the two where higher is better
 * (server/engine), the higher where lower is better (p99/p50), so a row never rounds its median in its
 * own favour (the tail rows used to take the lower p99/p50 of two).
 */
export function medianBlock<T>(items: readonly T[], key: (t: T) => number, better: 'higher' | 'lower'): T {
  if (items.length === 0) throw new Error('medianBlock of no blocks');
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[better === 'higher' ? (sorted.length - 1) >> 1 : sorted.length >> 1]!;
}

export interface PacedRequest { method: string; path: string; headers: Record<string, string>; body: Buffer }

export interface PacedResult {
  /** Requests sent and answered (any status). */
  sent: number;
  answered: number;
  /** Answers per second over the time from the first arrival to the last answer. */
  rate: number;
  /**
   * Latency percentiles (ms) of every request sent, from scheduled arrival to the end of the answer; a
   * request that got no answer (socket error, the timeout) counts with its time to the failure, so a
   * dropped request cannot leave the tail (it used to be left out of the percentiles).
   */
  p50: number;
  p99: number;
  /** Non-2xx answers and requests that failed without an answer (socket errors, the timeout). */
  non2xx: number;
  errors: number;
}

/**
 * Send `requests` (cycled) to `base` at the arrivals of arrivalsOf(o.arrivals, rate, seconds, o.seed)
 * (default Poisson, seed 1); wait for every answer (up to `timeoutMs` each) and summarise.
 */
export async function pacedLoad(base: string, requests: readonly PacedRequest[], rate: number, seconds: number, o: { seed?: number; timeoutMs?: number; arrivals?: ArrivalKind } = {}): Promise<PacedResult> {
  const arrivals = arrivalsOf(o.arrivals ?? 'poisson', rate, seconds, o.seed ?? 1);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  const url = new URL(base);
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let lastEnd = 0;
  const one = (r: PacedRequest, scheduled: number) => new Promise<void>((resolve) => {
    let settled = false;
    // a failure (no answer, or an answer cut short) counts once, with its time to the failure
    const fail = () => { if (settled) return; settled = true; errors++; latencies.push(performance.now() - scheduled); resolve(); };
    const req = http.request({ host: url.hostname, port: url.port, method: r.method, path: r.path, headers: { ...r.headers, 'content-length': String(r.body.length) }, agent, timeout: o.timeoutMs ?? 30_000 }, (res) => {
      res.resume();
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        settled = true;
        const end = performance.now();
        lastEnd = Math.max(lastEnd, end);
        latencies.push(end - scheduled);
        if (!res.statusCode || res.statusCode < 200 || res.statusCode >= 300) non2xx++;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', fail);
    req.end(r.body);
  });
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  for (const [i, at] of arrivals.entries()) {
    const wait = t0 + at - performance.now();
    if (wait > 1) await new Promise((res) => setTimeout(res, wait));
    pending.push(one(requests[i % requests.length]!, t0 + at));
  }
  await Promise.all(pending);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const answered = arrivals.length - errors;
  const span = (lastEnd - t0 - (arrivals[0] ?? 0)) / 1000;
  return { sent: arrivals.length, answered, rate: span > 0 ? answered / span : 0, p50: latencies.length ? percentileSorted(latencies, 50) : NaN, p99: latencies.length ? percentileSorted(latencies, 99) : NaN, non2xx, errors };
}
