/**
 * Prometheus metrics (prom-client) for one app: request counts and latency by route and status, admitted
 * requests and queue depth, batch sizes, inference time, cache hits/misses/errors per layer, rejected
 * requests by reason, and a model-info gauge naming what is served. Each app gets its own Registry so
 * several apps in one process (tests) never share counters. In multi-worker mode the worker answering
 * /metrics asks the primary for the sum over all workers (see cluster.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly latency: Histogram<'route' | 'method' | 'status'>;
  readonly inflight: Gauge;
  readonly queueDepth: Gauge<'stage'>;
  readonly batchSize: Histogram<'model'>;
  readonly inference: Histogram<'model'>;
  readonly cache: Counter<'layer' | 'result'>;
  readonly rejected: Counter<'reason'>;
  readonly modelInfo: Gauge<'role' | 'variant' | 'sha256' | 'source' | 'verdict'>;
  readonly reclaims: Counter;
  readonly ready: Gauge;
  readonly laneRestarts: Counter<'outcome'>;
}

/** Create the registry and every metric; `defaults` adds process metrics (RSS, CPU, event-loop lag). */
export function createMetrics(opts: { defaults?: boolean; labels?: Record<string, string> } = {}): ServerMetrics {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'faceopt_' });
  const registers = [registry];
  const m: ServerMetrics = {
    registry,
    requests: new Counter({ name: 'faceopt_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers }),
    latency: new Histogram({
      name: 'faceopt_http_request_duration_seconds', help: 'HTTP request latency by route, method and status',
      labelNames: ['route', 'method', 'status'], registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    inflight: new Gauge({ name: 'faceopt_requests_admitted', help: 'Inference requests admitted and not yet finished (bounded by --queue)', registers }),
    queueDepth: new Gauge({ name: 'faceopt_queue_depth', help: 'Items waiting per stage (decode, detector, recognizer)', labelNames: ['stage'], registers }),
    batchSize: new Histogram({ name: 'faceopt_batch_size', help: 'Items per model run', labelNames: ['model'], registers, buckets: [1, 2, 4, 8, 16, 32, 64, 128] }),
    inference: new Histogram({
      name: 'faceopt_inference_seconds', help: 'Model run time per batch', labelNames: ['model'], registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    cache: new Counter({ name: 'faceopt_cache_requests_total', help: 'Cache lookups by layer (memory, redis) and result (hit, miss, error); a Redis write that fails counts as error', labelNames: ['layer', 'result'], registers }),
    rejected: new Counter({ name: 'faceopt_requests_rejected_total', help: 'Requests refused (overloaded, not_ready, unauthorized, shutting_down before any work; timeout wherever the deadline passed, inference included)', labelNames: ['reason'], registers }),
    modelInfo: new Gauge({
      name: 'faceopt_model_info', help: 'Served models (value 1); verdict is pass, fail or unverified',
      labelNames: ['role', 'variant', 'sha256', 'source', 'verdict'], registers, aggregator: 'max',
    }),
    reclaims: new Counter({ name: 'faceopt_memory_reclaims_total', help: 'Full garbage collections run to free large decoded photos (reclaim.ts)', registers }),
    ready: new Gauge({ name: 'faceopt_ready', help: '1 when models are loaded and warmed and an inference thread is alive', registers, aggregator: 'min' }),
    laneRestarts: new Counter({ name: 'faceopt_inference_threads_total', help: 'Inference threads that died unasked (outcome died), were started again (restarted) or failed to start again (failed)', labelNames: ['outcome'], registers }),
  };
  // counters whose label values are known start at 0, so rate() and alerts read 0 rather than no data
  for (const reason of REJECT_REASONS) m.rejected.inc({ reason }, 0);
  for (const outcome of ['died', 'restarted', 'failed']) m.laneRestarts.inc({ outcome }, 0);
  return m;
}

/** Every `reason` faceopt_requests_rejected_total counts. */
export const REJECT_REASONS = ['overloaded', 'not_ready', 'unauthorized', 'shutting_down', 'timeout'] as const;
