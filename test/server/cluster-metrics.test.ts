/**
 * `--workers N`: the primary's sum of the workers' metrics never lets a counter or histogram go backwards.
 * A worker that died keeps the counts it last reported (they vanished, which Prometheus reads as a counter
 * reset), one that does not answer in time counts as last reported, and gauges come from live answers only.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClusterMetrics, sumMonotonic } from '../../server/cluster.js';

function worker(id: number) {
  const registry = new Registry();
  const requests = new Counter({ name: 'req_total', help: 'h', labelNames: ['route'], registers: [registry] });
  const latency = new Histogram({ name: 'lat_seconds', help: 'h', buckets: [0.1, 1], registers: [registry] });
  const depth = new Gauge({ name: 'depth', help: 'h', registers: [registry] });
  return { id, registry, requests, latency, depth, answers: true };
}
type W = ReturnType<typeof worker>;
const ask = async (w: W) => (w.answers ? w.registry.getMetricsAsJSON() : null);
const value = (text: string, series: string): number => Number(new RegExp(`^${series.replace(/[{}"=+.]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

/** Two workers that answered one round with 1 and 2 /embed requests, b having served 3 more since. */
async function twoWorkersCounted(): Promise<{ metrics: ClusterMetrics; a: W; b: W }> {
  const metrics = new ClusterMetrics(2);
  const a = worker(1);
  const b = worker(2);
  a.requests.inc({ route: '/embed' }, 1);
  b.requests.inc({ route: '/embed' }, 2);
  await metrics.collect([a, b], ask);
  b.requests.inc({ route: '/embed' }, 3);
  return { metrics, a, b };
}

describe('ClusterMetrics', () => {
  it('keeps a dead or silent worker\'s counters and histograms at what it last reported, gauges only from answers', async () => {
    const metrics = new ClusterMetrics(2);
    const a = worker(1);
    const b = worker(2);
    a.requests.inc({ route: '/embed' }, 3);
    b.requests.inc({ route: '/embed' }, 5);
    b.requests.inc({ route: '/health' }, 2);
    b.latency.observe(0.5);
    a.depth.set(4);
    b.depth.set(6);
    const first = await metrics.collect([a, b], ask);
    expect(value(first, 'req_total{route="/embed"}')).toBe(8);
    expect(value(first, 'depth')).toBe(10);
    expect(value(first, 'faceopt_cluster_workers{state="answered"}')).toBe(2);

    // b serves 4 more requests unseen, then dies; c replaces it
    b.requests.inc({ route: '/embed' }, 4);
    metrics.workerExited(b.id);
    const c = worker(3);
    c.requests.inc({ route: '/embed' });
    c.depth.set(1);
    const second = await metrics.collect([a, c], ask);
    expect(value(second, 'req_total{route="/embed"}')).toBe(3 + 5 + 1); // b's last report stays (it fell to 4)
    expect(value(second, 'req_total{route="/health"}')).toBe(2);
    expect(value(second, 'lat_seconds_bucket{le="1"}')).toBe(1);
    expect(value(second, 'lat_seconds_count')).toBe(1);
    expect(value(second, 'depth')).toBe(5); // 4 + 1: no gauge of the dead worker

    // a does not answer this time: counted as last reported, and missing
    a.requests.inc({ route: '/embed' }, 10);
    a.answers = false;
    const third = await metrics.collect([a, c], ask);
    expect(value(third, 'req_total{route="/embed"}')).toBe(9);
    expect(value(third, 'depth')).toBe(1);
    expect(value(third, 'faceopt_cluster_workers{state="answered"}')).toBe(1);
    expect(value(third, 'faceopt_cluster_workers{state="missing"}')).toBe(1);
    a.answers = true;
    expect(value(await metrics.collect([a, c], ask), 'req_total{route="/embed"}')).toBe(19);
  });

  it('a worker that exits during a round is counted once: by its answer in that round, by what it left after', async () => {
    const { metrics, a, b } = await twoWorkersCounted();
    // b answers (5) and exits before the round is summed
    const during = await metrics.collect([a, b], async (w) => {
      const m = await ask(w);
      if (w === b) metrics.workerExited(b.id);
      return m;
    });
    expect(value(during, 'req_total{route="/embed"}')).toBe(6);
    expect(value(await metrics.collect([a], ask), 'req_total{route="/embed"}')).toBe(6);
  });

  it('sumMonotonic adds series by name, labels and histogram part, and drops gauges', async () => {
    const a = worker(1);
    const b = worker(2);
    a.requests.inc({ route: 'x' }, 1);
    b.requests.inc({ route: 'x' }, 2);
    b.requests.inc({ route: 'y' }, 7);
    a.latency.observe(0.05);
    b.latency.observe(0.05);
    b.depth.set(3);
    const sum = sumMonotonic([], await a.registry.getMetricsAsJSON());
    const both = sumMonotonic(sum, await b.registry.getMetricsAsJSON());
    expect(both.map((m) => m.name).sort()).toEqual(['lat_seconds', 'req_total']);
    const req = both.find((m) => m.name === 'req_total')!.values;
    expect(req.map((v) => [v.labels.route, v.value])).toEqual([['x', 3], ['y', 7]]);
    const lat = both.find((m) => m.name === 'lat_seconds')!.values;
    expect(lat.find((v) => (v as { metricName?: string }).metricName === 'lat_seconds_count')!.value).toBe(2);
    expect(lat.find((v) => v.labels.le === 0.1)!.value).toBe(2);
  });

  it('a worker that exits while an earlier round awaits its answer, with a second round in between, is counted once in each', async () => {
    const { metrics, a, b } = await twoWorkersCounted();
    let answerB: () => void = () => undefined;
    const slowB = new Promise<void>((resolve) => { answerB = resolve; });
    const first = metrics.collect([a, b], async (w) => { if (w === b) await slowB; return ask(w); });
    metrics.workerExited(b.id); // b's answer to the first round is still on its way
    expect(value(await metrics.collect([a], ask), 'req_total{route="/embed"}')).toBe(1 + 2); // b as last reported
    answerB();
    expect(value(await first, 'req_total{route="/embed"}')).toBe(1 + 5); // b's answer, not also its older report
    expect(value(await metrics.collect([a], ask), 'req_total{route="/embed"}')).toBe(1 + 5); // b's newest report stays
  });

  it('sumMonotonic matches a series whatever order its labels were given in', () => {
    const series = (labels: Record<string, string>, value: number) => [{ name: 'req_total', help: 'h', type: 'counter', aggregator: 'sum', values: [{ labels, value }] }] as unknown as Parameters<typeof sumMonotonic>[0];
    const sum = sumMonotonic(series({ route: '/embed', status: '200' }, 2), series({ status: '200', route: '/embed' }, 3));
    expect(sum[0]!.values.map((v) => v.value)).toEqual([5]);
  });
});
