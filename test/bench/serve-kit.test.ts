import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { cpuSplit, metricSamples, metricValue, threadTicks } from '../../bench/serve-kit.js';

describe('bench:server CPU split', () => {
  it.skipIf(!existsSync('/proc/self/task'))('reads per-thread ticks from /proc and splits busy time into event loop, busiest threads and the rest', () => {
    const pid = process.pid;
    const before = threadTicks(pid)!;
    expect(before.has(pid)).toBe(true);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let x = 0;
    while (performance.now() - t0 < 300) x += Math.sqrt(x + 1); // ~0.3 s of event-loop work
    const after = threadTicks(pid)!;
    const line = cpuSplit(pid, before, after, cpu0, (performance.now() - t0) / 1000)!;
    const eventLoop = Number(/event loop ([\d.]+)/.exec(line)![1]);
    expect(eventLoop).toBeGreaterThan(0.2); // this thread was busy the whole time (loose: CI machines are shared)
    expect(Number(/load generator ([\d.]+)/.exec(line)![1])).toBeGreaterThan(0.2);
    // kernel time is part of the server's total
    expect(Number(/\(([\d.]+) in the kernel\)/.exec(line)![1])).toBeLessThanOrEqual(Number(/server ([\d.]+) cores/.exec(line)![1]));
    expect(x).toBeGreaterThan(0);
  });
  it('says nothing without /proc data', () => {
    expect(cpuSplit(1, null, null, process.cpuUsage(), 1)).toBeNull();
    expect(threadTicks(-1)).toBeNull();
  });
});

describe('bench /metrics samples', () => {
  it('reads counters, gauges and histogram parts from prom-client\'s own exposition, labels in any order', async () => {
    const { Registry, Counter, Gauge, Histogram } = await import('prom-client');
    const registers = [new Registry()];
    const g = new Gauge({ name: 'faceopt_requests_admitted', help: 'h', registers });
    const h = new Histogram({ name: 'faceopt_batch_size', help: 'h', labelNames: ['model'], buckets: [1, 2, 4, 8], registers });
    const c = new Counter({ name: 'faceopt_http_requests_total', help: 'h "quoted"', labelNames: ['route', 'status'], registers });
    g.set(3);
    for (const b of [1, 3, 8, 8, 20]) h.observe({ model: 'recognizer' }, b);
    h.observe({ model: 'detector' }, 1);
    c.inc({ route: '/embed', status: '200' }, 5);
    c.inc({ route: '/a "b"\\c', status: '400' }, 2);
    const text = await registers[0]!.metrics();

    expect(metricValue(text, 'faceopt_requests_admitted')).toBe(3);
    expect(metricValue(text, 'faceopt_batch_size_sum', { model: 'recognizer' })).toBe(40);
    expect(metricValue(text, 'faceopt_batch_size_count', { model: 'recognizer' })).toBe(5);
    expect(metricValue(text, 'faceopt_batch_size_count', { model: 'detector' })).toBe(1);
    const buckets = metricSamples(text, 'faceopt_batch_size_bucket').filter((s) => s.labels.model === 'recognizer');
    expect(buckets.map((b) => [b.labels.le, b.value])).toEqual([['1', 1], ['2', 1], ['4', 2], ['8', 4], ['+Inf', 5]]);
    expect(metricValue(text, 'faceopt_http_requests_total', { status: '200', route: '/embed' })).toBe(5);
    expect(metricValue(text, 'faceopt_http_requests_total', { route: '/a "b"\\c' })).toBe(2); // escaped label values
    // a name is matched whole (faceopt_batch_size is not faceopt_batch_size_sum), absent samples give the fallback
    expect(metricSamples(text, 'faceopt_batch_size')).toEqual([]);
    expect(metricValue(text, 'faceopt_nothing', {}, 0)).toBe(0);
    expect(metricValue(text, 'faceopt_batch_size_sum', { model: 'nobody' })).toBeNaN();
    expect(metricSamples('x_total{le="+Inf"} +Inf\n', 'x_total')[0]!.value).toBe(Infinity);
  });
});
