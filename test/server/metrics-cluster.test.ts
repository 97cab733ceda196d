/**
 * server/metrics.ts across workers (a mutation audit found these unchecked): summed over workers,
 * faceopt_ready is the least of them (one worker not ready makes the sum not ready) and faceopt_model_info
 * stays 1; every rejection reason and inference-thread outcome starts at 0.
 */
import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { withClusterAggregators } from '../../server/cluster.js';
import { createMetrics, REJECT_REASONS } from '../../server/metrics.js';

const value = (text: string, line: string) => Number(new RegExp(`^${line.replace(/[{}"=,/]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);

describe('metrics over workers', () => {
  it('faceopt_ready is the minimum, faceopt_model_info the maximum', async () => {
    const workers = [createMetrics({ defaults: false }), createMetrics({ defaults: false })];
    workers[0]!.ready.set(1);
    workers[1]!.ready.set(0);
    for (const w of workers) w.modelInfo.set({ role: 'detector', variant: 'int8', sha256: 'ab', source: 'manifest', verdict: 'pass' }, 1);
    const answers = await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON()));
    const text = await AggregatorRegistry.aggregate(answers.map(withClusterAggregators)).metrics();
    expect(value(text, 'faceopt_ready')).toBe(0);
    expect(value(text, 'faceopt_model_info{role="detector",variant="int8",sha256="ab",source="manifest",verdict="pass"}')).toBe(1);
    workers[1]!.ready.set(1);
    const both = await AggregatorRegistry.aggregate((await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON()))).map(withClusterAggregators)).metrics();
    expect(value(both, 'faceopt_ready')).toBe(1);
  });

  it('every rejection reason and thread outcome reads 0 before any happened', async () => {
    const text = await createMetrics({ defaults: false }).registry.metrics();
    for (const reason of ['overloaded', 'not_ready', 'unauthorized', 'shutting_down', 'timeout']) {
      expect(REJECT_REASONS).toContain(reason);
      expect(value(text, `faceopt_requests_rejected_total{reason="${reason}"}`), reason).toBe(0);
    }
    for (const outcome of ['died', 'restarted', 'failed']) expect(value(text, `faceopt_inference_threads_total{outcome="${outcome}"}`), outcome).toBe(0);
  });

  it('process metrics are on by default with the faceopt_ prefix, off with defaults: false; labels go on every series', async () => {
    expect(await createMetrics().registry.metrics()).toMatch(/^faceopt_process_cpu_seconds_total /m);
    expect(await createMetrics({ defaults: false }).registry.metrics()).not.toMatch(/process_cpu/);
    expect(await createMetrics({ defaults: false, labels: { worker: '3' } }).registry.metrics()).toMatch(/^faceopt_ready\{worker="3"\} 0$/m);
  });

  it('batch sizes are bucketed at powers of two up to 128', async () => {
    const m = createMetrics({ defaults: false });
    m.batchSize.observe({ model: 'recognizer' }, 3);
    const text = await m.registry.metrics();
    for (const le of ['1', '2', '4', '8', '16', '32', '64', '128']) expect(text, le).toContain(`faceopt_batch_size_bucket{le="${le}",model="recognizer"}`);
    expect(value(text, 'faceopt_batch_size_bucket{le="2",model="recognizer"}')).toBe(0);
    expect(value(text, 'faceopt_batch_size_bucket{le="4",model="recognizer"}')).toBe(1);
  });
});
