/**
 * The app factory: `buildApp(config)` returns a Fastify instance with every route, limit, hook and
 * metric in place, without listening, so tests drive it through `inject` and `faceopt serve` calls
 * listen. Models are chosen and checked before it returns (a failed variant or a bad file is a start-up
 * error); they load and warm in the background, and /ready answers 503 until they have.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import multipart from '@fastify/multipart';
import { Ajv } from 'ajv';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { FaceoptError } from '../pipeline/errors.js';
import { servedDetSize } from './analyzer-options.js';
import type { FaceBackend } from './backend.js';
import { resolveServerConfig, type ServerConfig, type ServerConfigInput } from './config.js';
import { answerClientError, requestTimeoutMs, trackConnections } from './connections.js';
import { errorBody, handleError } from './errors.js';
import { FIELD_SIZE, RAW_TYPES } from './input.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import { selectModels, type ServedModels } from './models.js';
import { registerExtractRoute } from './routes/extract.js';
import { registerFaceRoutes } from './routes/faces.js';
import { registerMetaRoutes } from './routes/meta.js';
import { fullGc, MemoryReclaimer } from './reclaim.js';
import { FaceService } from './service.js';

/** What the routes share. */
export interface AppContext {
  readonly config: ServerConfig;
  readonly models: ServedModels;
  readonly service: FaceService;
  readonly metrics: ServerMetrics;
  /** Multi-worker mode: the metrics of all workers, summed by the primary (set by the cluster worker). */
  clusterMetrics: (() => Promise<string>) | null;
}

export interface AppOptions {
  /** Use these models instead of selecting them from the config (tests). */
  models?: ServedModels;
  /** Load this backend instead of the ONNX face pipeline (tests with synthetic backends). */
  backend?: () => Promise<FaceBackend>;
  /** Extra default labels on every metric (e.g. worker id). */
  metricLabels?: Record<string, string>;
  /** Pino destination stream for the JSON logs (default stdout). */
  logStream?: NodeJS.WritableStream;
  /** How large photos' memory is given back (default: V8's full collection, see reclaim.ts); null turns it off. */
  reclaimer?: MemoryReclaimer | null;
}

export interface FaceoptApp extends FastifyInstance {
  /** Shared state; `ctx.service.state` is 'ready' once models are warm. */
  faceopt: AppContext;
  /** Resolves when models are loaded and warmed; rejects when loading failed. */
  faceoptReady: Promise<void>;
}

/** Methods an endpoint may take (for the 405 of a known URL called with another). */
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** Routes anyone may call without the API key (probes). */
const OPEN_ROUTES = new Set(['/health', '/ready']);

function keyDigest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** onRequest hook: `Authorization: Bearer <key>` with a constant-time comparison. */
function requireApiKey(apiKey: string, metrics: ServerMetrics) {
  const want = keyDigest(apiKey);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (OPEN_ROUTES.has(req.routeOptions.url ?? '')) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (m && timingSafeEqual(keyDigest(m[1].trim()), want)) return;
    metrics.rejected.inc({ reason: 'unauthorized' });
    reply.header('www-authenticate', 'Bearer');
    throw new FaceoptError('FACEOPT_ERR_UNAUTHORIZED');
  };
}

/**
 * Build the app (no listen). Throws coded errors for bad settings or models that may not be served.
 * `faceoptReady` settles when the models are warm; the Fastify instance closes the service on close().
 */
export async function buildApp(input: ServerConfigInput | ServerConfig = {}, opts: AppOptions = {}): Promise<FaceoptApp> {
  const config = resolveServerConfig(input as ServerConfigInput);
  const models = opts.models ?? await selectModels(config);
  const metrics = createMetrics({ labels: opts.metricLabels });
  /**
   * Every answer counted by route, method and status, and logged as one "request" line; timed unless
   * `timed` is false (an answer Fastify makes before routing has no start time: its elapsedTime reads 0).
   */
  const recordResponse = (req: FastifyRequest, reply: FastifyReply, timed = true): void => {
    const route = req.routeOptions?.url ?? 'unmatched'; // the pattern, never the raw URL: bounded label values
    const labels = { route, method: req.method, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    if (timed) metrics.latency.observe(labels, reply.elapsedTime / 1000);
    req.log.info({ method: req.method, route, status: reply.statusCode, ...(timed ? { ms: Math.round(reply.elapsedTime * 10) / 10 } : {}), cache: reply.getHeader('x-faceopt-cache') }, 'request');
  };

  const app = Fastify({
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel, ...(opts.logStream ? { stream: opts.logStream } : {}) },
    logController: new LogController({ disableRequestLogging: true }), // one line per request, written in onResponse below
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    // slow-loris guards: headers within headersTimeoutMs, the whole request within requestTimeout (the
    // handler's deadline is timeoutMs); Node checks both every connectionsCheckingInterval, answered 408
    http: { headersTimeout: config.headersTimeoutMs, requestTimeout: requestTimeoutMs(config), connectionsCheckingInterval: Math.min(5_000, Math.max(50, Math.floor(config.headersTimeoutMs / 4))) },
    requestTimeout: requestTimeoutMs(config),
    // a request arriving while closing gets the coded 503 of the onRequest hook below, not Fastify's own
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 200 },
    clientErrorHandler: answerClientError,
    // a URL Fastify cannot decode (`/%zz`) gets the coded body every other error has
    frameworkErrors: (err, req, reply) => {
      const e = new FaceoptError('FACEOPT_ERR_BAD_HTTP', { reason: err.code === 'FST_ERR_BAD_URL' ? 'a URL that is not valid percent-encoding' : String(err.code ?? 'unparseable').toLowerCase() });
      // no hook runs for these: counted and logged here, as onResponse does for the others
      const r = reply as unknown as FastifyReply;
      r.raw.once('finish', () => recordResponse(req as unknown as FastifyRequest, r, false));
      void r.code(e.httpStatus).send(errorBody(e));
    },
  }) as unknown as FaceoptApp;

  // No coercion: a JSON body says what it means (with coercion `"threshold": null` became 0 and `"image":
  // 5` the text "5"); the query string's options are text, parsed by input.ts faceQuery like form fields
  const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, allErrors: false, useDefaults: true, allowUnionTypes: true });
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));

  // `Expect: 100-continue` (curl's default over 1 MB): Node would answer 100 Continue before any hook
  // ran; the request goes through Fastify instead, and the hook below decides after the API key
  app.server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => { app.server.emit('request', req, res); });

  const reclaimer = opts.reclaimer !== undefined ? opts.reclaimer : new MemoryReclaimer(fullGc(), {}, () => metrics.reclaims.inc());
  // the detector's size counts in cache keys whether --det-size or its report set it
  const service = new FaceService({ ...config, detSize: servedDetSize(models, config) }, models.id, metrics, app.log, reclaimer);
  const ctx: AppContext = { config, models, service, metrics, clusterMetrics: null };
  app.decorate('faceopt', ctx);

  for (const m of [models.detector, models.recognizer]) {
    if (m.reportNote) app.log.warn({ role: m.role }, m.reportNote);
    metrics.modelInfo.set({ role: m.role, variant: m.variant, sha256: m.sha256.slice(0, 16), source: m.source, verdict: m.verdict === null ? 'unverified' : m.verdict.pass ? 'pass' : 'fail' }, 1);
  }
  metrics.ready.set(0);

  await app.register(multipart, {
    limits: {
      fileSize: config.bodyLimit,
      files: config.maxImagesPerRequest + 1,
      fields: 16,
      fieldSize: FIELD_SIZE,
      parts: config.maxImagesPerRequest + 17,
      headerPairs: 64,
      fieldNameSize: 64,
    },
  });
  app.removeContentTypeParser(['text/plain']);
  app.addContentTypeParser([...RAW_TYPES], { parseAs: 'buffer', bodyLimit: config.bodyLimit }, (_req, body, done) => done(null, body));

  // While closing, a request that still arrives (on a connection opened just before, or pipelined) is
  // refused (503, Connection: close), and answers to requests still in flight carry `Connection: close`,
  // so their sockets end with them and close() does not wait out the keep-alive timeout; idle kept-alive
  // connections are closed by close() itself, silent ones and stalled bodies by trackConnections.
  let closing = false;
  const connections = trackConnections(app.server, config.timeoutMs, () => metrics.rejected.inc({ reason: 'timeout' }));
  app.addHook('preClose', async () => { closing = true; connections.closeSilent(); });
  app.addHook('onClose', async () => { connections.stop(); });
  app.addHook('onRequest', async () => {
    if (!closing) return;
    metrics.rejected.inc({ reason: 'shutting_down' });
    throw new FaceoptError('FACEOPT_ERR_SHUTTING_DOWN');
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });
  if (config.apiKey) app.addHook('onRequest', requireApiKey(config.apiKey, metrics));
  // bodies are read as sent: a compressed one would fail later as bad JSON or a bad image
  app.addHook('onRequest', async (req) => {
    const encoding = String(req.headers['content-encoding'] ?? '').trim().toLowerCase();
    if (encoding && encoding !== 'identity') throw new FaceoptError('FACEOPT_ERR_UNSUPPORTED_ENCODING', { encoding: encoding.slice(0, 40) });
  });
  // a body declared over the limit is refused before the client sends it, instead of inviting it with
  // 100 Continue and answering 413 after; within the limit, the client is told to go on
  app.addHook('onRequest', async (req, reply) => {
    // last of the refusals that need no body; an HTTP/1.0 client's expectation is ignored (RFC 9110 10.1.1)
    if (String(req.headers.expect ?? '').toLowerCase() !== '100-continue' || req.raw.httpVersion !== '1.1') return;
    if (Number(req.headers['content-length'] ?? 0) > config.bodyLimit) throw new FaceoptError('FACEOPT_ERR_PAYLOAD_TOO_LARGE', { limit: config.bodyLimit });
    reply.raw.writeContinue();
  });
  app.addHook('onResponse', async (req, reply) => recordResponse(req, reply));
  // every 503 timeout counts once, wherever the deadline was noticed (the admission timer, a deadline
  // check between stages, the batcher dropping an expired item, every photo of an extract timing out)
  app.setErrorHandler(handleError(config.bodyLimit, (e) => { if (e.code === 'FACEOPT_ERR_TIMEOUT') metrics.rejected.inc({ reason: 'timeout' }); }));
  app.setNotFoundHandler((req, reply) => {
    const url = req.url.split('?')[0].slice(0, 100);
    // an endpoint called with the wrong method is a 405 naming the right one, not a 404
    const allowed = HTTP_METHODS.filter((method) => method !== req.method && app.hasRoute({ method, url }));
    const e = allowed.length
      ? new FaceoptError('FACEOPT_ERR_METHOD_NOT_ALLOWED', { method: req.method, url, allowed: allowed.join(' or ') })
      : new FaceoptError('FACEOPT_ERR_ROUTE_NOT_FOUND', { method: req.method, url });
    if (allowed.length) reply.header('allow', allowed.join(', '));
    return reply.code(e.httpStatus).send(errorBody(e));
  });

  registerMetaRoutes(app, ctx);
  registerFaceRoutes(app, ctx);
  registerExtractRoute(app, ctx);

  app.addHook('onClose', async () => {
    await service.close();
  });

  const t0 = performance.now();
  // loaded on demand: with the inference thread, this thread never loads onnxruntime
  const loadBackend = async (): Promise<FaceBackend> => (config.inferenceThread
    ? (await import('./worker-backend.js')).WorkerBackend.load(models, config)
    : (await import('./backend.js')).AnalyzerBackend.load(models, config));
  app.faceoptReady = service.start(opts.backend ?? loadBackend).then(() => {
    if (service.state !== 'ready') return; // closed while loading: the models were let go
    app.log.info({ ms: Math.round(performance.now() - t0), detector: models.detector.variant, recognizer: models.recognizer.variant, models: models.id, inference: inferenceLayout(config) }, 'models loaded and warmed');
  });
  app.faceoptReady.catch((e: unknown) => app.log.error({ err: e instanceof Error ? e.message : String(e) }, 'model loading failed'));
  return app;
}

/**
 * The inference layout one worker serves with, in words, for the start-up log line: which provider, how
 * many lanes of how many threads, the latency lane, batches and the cache (in a container the layout is
 * given by flags, and this line shows what they came to).
 */
export function inferenceLayout(config: ServerConfig): string {
  const n = (k: number, one: string) => `${k} ${one}${k === 1 ? '' : 's'}`;
  const lanes = config.inferenceThread ? `${n(config.lanes, 'lane')} x ${n(config.intraOpThreads, 'thread')}` : `${n(config.intraOpThreads, 'thread')} on the event loop`;
  const latency = config.latencyLaneThreads !== null ? ` + a latency lane of ${n(config.latencyLaneThreads, 'thread')}` : '';
  const batch = config.batch.maxBatch > 1 ? `batches of at most ${config.batch.maxBatch} crops` : 'no batching';
  const cache = [config.cache.memoryEntries > 0 && config.cache.memoryBytes > 0 ? `memory cache ${config.cache.memoryEntries}` : 'memory cache off', config.cache.redisUrl ? 'Redis' : ''].filter(Boolean).join(' + ');
  return `${config.provider}, ${lanes}${latency}${config.workers > 1 ? ` per worker (${config.workers} workers)` : ''}; ${batch}; ${cache}`;
}
