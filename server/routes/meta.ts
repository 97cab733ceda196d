/**
 * Service routes: liveness (/health: the process answers), readiness (/ready: models loaded and warmed,
 * 503 before), Prometheus metrics, and /v1/models (what is served, its hashes, its report verdict and
 * key numbers, and the verify threshold in force).
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { TOOL_VERSION } from '../../pipeline/version.js';
import type { AppContext } from '../app.js';
import type { ServedModel } from '../models.js';

function modelJson(m: ServedModel, inputSize: readonly [number, number] | null) {
  return {
    variant: m.variant,
    source: m.source,
    file: path.basename(m.path),
    sha256: m.sha256,
    sizeBytes: m.sizeBytes,
    inputSize,
    ...(m.evaluatedInputSize ? { evaluatedInputSize: m.evaluatedInputSize } : {}),
    report: m.report,
    ...(m.reportNote ? { reportNote: m.reportNote } : {}),
    verdict: m.verdict === null ? 'unverified' : m.verdict.pass ? 'pass' : 'fail',
    reasons: m.verdict?.reasons ?? [],
    keyNumbers: m.keyNumbers ?? [],
  };
}

/** Register /health, /ready, /metrics and /v1/models. */
export function registerMetaRoutes(app: FastifyInstance, ctx: AppContext): void {
  const started = Date.now();
  app.get('/health', async () => ({ status: 'ok', version: TOOL_VERSION, pid: process.pid, uptimeS: Math.round((Date.now() - started) / 1000) }));

  app.get('/ready', async () => {
    // not ready while loading, and while every inference thread is dead and restarting
    if (!ctx.service.healthy) throw ctx.service.notReadyError();
    return { status: 'ready', models: ctx.models.id };
  });

  app.get('/metrics', async (_req, reply) => {
    const text = ctx.clusterMetrics ? await ctx.clusterMetrics() : await ctx.metrics.registry.metrics();
    return reply.header('content-type', ctx.metrics.registry.contentType).send(text);
  });

  app.get('/v1/models', async () => {
    const info = ctx.service.backendInfo;
    return {
      id: ctx.models.id,
      ready: ctx.service.state === 'ready',
      manifest: ctx.models.manifest,
      detector: modelJson(ctx.models.detector, info?.detector.inputSize ?? null),
      recognizer: modelJson(ctx.models.recognizer, info?.recognizer.inputSize ?? null),
      matchThreshold: ctx.models.matchThreshold,
      batching: { maxBatch: ctx.config.batch.maxBatch, maxWaitMs: ctx.config.batch.maxWaitMs },
      inference: { lanes: ctx.service.lanes, threadsPerLane: ctx.config.intraOpThreads, latencyLaneThreads: ctx.config.latencyLaneThreads, workers: ctx.config.workers, inferenceThread: ctx.config.inferenceThread },
      limits: { bodyLimit: ctx.config.bodyLimit, maxPixels: ctx.config.maxPixels, maxQueue: ctx.config.maxQueue, timeoutMs: ctx.config.timeoutMs, maxImagesPerRequest: ctx.config.maxImagesPerRequest },
      cache: ctx.service.cache.status(),
    };
  });
}
