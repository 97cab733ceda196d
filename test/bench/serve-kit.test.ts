import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { cpuSplit, threadTicks } from '../../bench/serve-kit.js';

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
