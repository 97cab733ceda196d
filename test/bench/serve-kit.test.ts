import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { cpuSplit, metricSamples, metricValue, okRate, SERVER_ENV_DROPPED, serverEnv, startServer, threadTicks } from '../../bench/serve-kit.js';
import { describeShared, shared } from '../helpers/shared.js';

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

describe('bench servers run with what the bench chose', () => {
  it('serverEnv drops the serve settings read from the environment (Redis cache, API key) and keeps the rest', () => {
    const env = serverEnv({ REDIS_URL: 'redis://127.0.0.1:6379', FACEOPT_API_KEY: 'secret-key-1', PATH: '/bin', FACEOPT_SHARED: '/data' });
    expect(env).toEqual({ PATH: '/bin', FACEOPT_SHARED: '/data' });
    expect(SERVER_ENV_DROPPED).toEqual(['REDIS_URL', 'FACEOPT_API_KEY']);
  });

  describeShared('startServer on the shared models', () => {
    it('starts `faceopt serve` without Redis and without an API key even when the environment sets them', async () => {
      const saved = { REDIS_URL: process.env.REDIS_URL, FACEOPT_API_KEY: process.env.FACEOPT_API_KEY };
      process.env.REDIS_URL = 'redis://127.0.0.1:1';
      process.env.FACEOPT_API_KEY = 'bench-test-key-123';
      let server: Awaited<ReturnType<typeof startServer>> | null = null;
      try {
        server = await startServer(shared('models', 'scrfd_500m_bnkps.onnx'), shared('models', 'mobileface_paddle_128d.onnx'), ['--lanes', '1', '--threads', '1']);
        const res = await fetch(`${server.base}/v1/models`);
        expect(res.status).toBe(200); // with the key inherited: 401 on every route but /health and /ready
        const body = (await res.json()) as { cache: { memory: { maxEntries: number }; redis: unknown } };
        expect(body.cache.redis).toBeNull(); // with REDIS_URL inherited: a Redis cache behind --cache-size 0
        expect(body.cache.memory.maxEntries).toBe(0);
      } finally {
        for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
        await server?.stop();
      }
    }, 90_000);
  });
});

describe('okRate', () => {
  it('counts 2xx answers only, per second of the run (autocannon\'s requests.average counts every answer)', async () => {
    const { createRequire } = await import('node:module');
    const autocannon = createRequire(import.meta.url)('autocannon') as (o: Record<string, unknown>) => Promise<{ requests: { average: number; total: number }; '2xx': number; non2xx: number; duration: number }>;
    const http = await import('node:http');
    let n = 0;
    // every other answer is a refusal, as a server with an API key the load does not send would give
    const server = http.createServer((_req, res) => { n++; res.writeHead(n % 2 ? 200 : 401).end('{}'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = server.address() as import('node:net').AddressInfo;
      const r = await autocannon({ url: `http://127.0.0.1:${port}`, connections: 2, duration: 1 });
      expect(r['2xx']).toBeGreaterThan(0);
      expect(r.non2xx).toBeGreaterThan(0);
      expect(okRate(r)).toBeCloseTo(r['2xx'] / r.duration, 9);
      // the refusals are not served requests: requests.average counts them
      expect(okRate(r)).toBeLessThan(0.7 * r.requests.average);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    expect(okRate({ '2xx': 10, duration: 0 })).toBe(0);
  });
});
