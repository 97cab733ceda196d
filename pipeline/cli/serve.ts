/**
 * `faceopt serve`: the HTTP service for the promoted variant (models/manifest.json) or for model files
 * given directly. Flags map one to one onto server/config.ts; secrets and the Redis URL also come from
 * the environment (FACEOPT_API_KEY, REDIS_URL) so they stay out of `ps`. Start-up problems (a failed
 * variant, a changed file, a taken port) end the command with their coded error and exit code.
 */
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { PROVIDERS, requireProvider, type Provider } from '../runtime.js';
import { DECIMAL_NUMBER, FaceoptError } from '../errors.js';
import { DEFAULTS, MIN_DET_THRESHOLD, resolveServerConfig } from '../../server/config.js';

interface ServeFlags {
  host?: string; port?: string; detector?: string; recognizer?: string; manifest?: string; allowFailed?: boolean;
  apiKey?: string; workers?: string; lanes?: string; threads?: string; provider?: string; detSize?: string; detThreshold?: string;
  matchThreshold?: string; maxBatch?: string; maxWaitMs?: string; batching?: boolean; queue?: string; timeoutMs?: string;
  bodyLimit?: string; maxPixels?: string; maxImages?: string; cacheSize?: string; cacheBytes?: string; redisUrl?: string; logLevel?: string;
  shutdownTimeoutMs?: string; headersTimeoutMs?: string; inferenceThread?: boolean; latencyLane?: boolean;
}

/** A numeric flag's value; FACEOPT_ERR_BAD_ARGUMENT quoting what was typed when it is not a number (ranges are checked by resolveServerConfig). */
function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  // decimal text only, as checkNumber reads it: Number() took '0x10' as port 16
  const n = DECIMAL_NUMBER.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a number', name: flag, received: JSON.stringify(v) });
  return n;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('Serve the promoted face models over HTTP (POST /embed, /v1/embed, /v1/detect, /v1/verify, /v1/extract)')
    .option('--host <host>', `address to bind (default ${DEFAULTS.host}; the images' CMD passes --host 0.0.0.0)`)
    .option('--port <n>', `port (default ${DEFAULTS.port})`)
    .option('--detector <model>', 'serve this detector file (path or PACK/FILE) instead of the manifest\'s')
    .option('--recognizer <model>', 'serve this recognizer file (path or PACK/FILE) instead of the manifest\'s')
    .option('--manifest <file>', 'serving manifest (default: $FACEOPT_MODELS/manifest.json, models/manifest.json where unset; written by `faceopt promote`)')
    .option('--allow-failed', 'serve a variant whose report failed its accuracy gates')
    .option('--api-key <key>', 'require `Authorization: Bearer <key>` (default: $FACEOPT_API_KEY; none when unset or empty; trimmed, at least 8 characters)')
    .option('--workers <n>', `worker processes sharing the port (default ${DEFAULTS.workers}); threads are split across them`)
    .option('--lanes <n>', 'inference lanes per worker: threads with their own sessions, one batch each at a time (default: 2 plus a latency lane on the cpu provider with 2+ cores per worker and no --threads, else 1; docs/server.md)')
    .option('--latency-lane', 'with --lanes 2 or more: one more lane with all the threads, used while the other lanes are idle (a lone request gets every core; on by default with the default lanes)')
    .option('--no-latency-lane', 'without the latency lane')
    .option('--threads <n>', 'intra-op threads per lane (default: cores / (workers x lanes))')
    .option('--provider <name>', `execution provider: ${PROVIDERS.join(', ')} (default cpu)`)
    .option('--det-size <n>', 'detector input size for dynamic-input detectors (default: the size the promoted detector\'s report evaluated, else 640)')
    .option('--det-threshold <t>', `default detection score threshold, ${MIN_DET_THRESHOLD} to 1 (default ${DEFAULTS.detThreshold})`)
    .option('--match-threshold <t>', '/v1/verify cosine threshold (default: the recognizer report\'s, else 0.3)')
    .option('--max-batch <n>', `most face crops per recognizer run (default ${DEFAULTS.maxBatchCpu} on the CPU, ${DEFAULTS.maxBatch} with cuda/tensorrt)`)
    .option('--max-wait-ms <ms>', `how long an idle recognizer waits to fill a batch (default ${DEFAULTS.maxWaitMs})`)
    .option('--no-batching', 'run the recognizer on one crop at a time')
    .option('--no-inference-thread', 'run the models on the event loop instead of a worker thread (it stalls HTTP while a batch runs)')
    .option('--queue <n>', `requests admitted at once, per worker process; more get 503 + Retry-After (default ${DEFAULTS.maxQueue})`)
    .option('--timeout-ms <ms>', `per-request deadline (default ${DEFAULTS.timeoutMs})`)
    .option('--body-limit <bytes>', `largest request body (default ${DEFAULTS.bodyLimit})`)
    .option('--max-pixels <n>', `largest image, width x height (default ${DEFAULTS.maxPixels})`)
    .option('--max-images <n>', `most images per /v1/extract request (default ${DEFAULTS.maxImagesPerRequest})`)
    .option('--cache-size <n>', `in-memory result cache entries, 0 = off (default ${DEFAULTS.memoryEntries})`)
    .option('--cache-bytes <n>', `estimated bytes the in-memory result cache may hold, 0 = off; a result over 1/8 of it is not kept (default ${DEFAULTS.memoryBytes}, 256 MiB)`)
    .option('--redis-url <url>', 'shared Redis cache (default: $REDIS_URL; none when unset)')
    .option('--log-level <level>', `JSON log level on stdout: fatal, error, warn, info, debug, trace, silent (default ${DEFAULTS.logLevel})`)
    .option('--shutdown-timeout-ms <ms>', `how long SIGTERM waits for in-flight requests (default ${DEFAULTS.shutdownTimeoutMs})`)
    .option('--headers-timeout-ms <ms>', `a request's headers must arrive within this time, or 408 (default ${DEFAULTS.headersTimeoutMs})`)
    .action(async (f: ServeFlags) => {
      if (f.provider !== undefined && !(PROVIDERS as readonly string[]).includes(f.provider)) {
        throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `one of ${PROVIDERS.join(', ')}`, name: '--provider', received: f.provider });
      }
      const config = resolveServerConfig({
        host: f.host,
        port: num(f.port, '--port'),
        detector: f.detector ?? null,
        recognizer: f.recognizer ?? null,
        manifest: f.manifest ?? null,
        allowFailed: f.allowFailed === true,
        apiKey: f.apiKey ?? (process.env.FACEOPT_API_KEY || null),
        workers: num(f.workers, '--workers'),
        lanes: num(f.lanes, '--lanes'),
        latencyLane: f.latencyLane,
        inferenceThread: f.inferenceThread !== false,
        intraOpThreads: num(f.threads, '--threads'),
        provider: f.provider as Provider | undefined,
        detSize: num(f.detSize, '--det-size') ?? null,
        detThreshold: num(f.detThreshold, '--det-threshold'),
        matchThreshold: num(f.matchThreshold, '--match-threshold') ?? null,
        maxQueue: num(f.queue, '--queue'),
        timeoutMs: num(f.timeoutMs, '--timeout-ms'),
        bodyLimit: num(f.bodyLimit, '--body-limit'),
        maxPixels: num(f.maxPixels, '--max-pixels'),
        maxImagesPerRequest: num(f.maxImages, '--max-images'),
        logLevel: f.logLevel,
        shutdownTimeoutMs: num(f.shutdownTimeoutMs, '--shutdown-timeout-ms'),
        headersTimeoutMs: num(f.headersTimeoutMs, '--headers-timeout-ms'),
        batch: { maxBatch: f.batching === false ? 1 : num(f.maxBatch, '--max-batch'), maxWaitMs: num(f.maxWaitMs, '--max-wait-ms') },
        cache: { memoryEntries: num(f.cacheSize, '--cache-size'), memoryBytes: num(f.cacheBytes, '--cache-bytes'), redisUrl: f.redisUrl ?? (process.env.REDIS_URL || null) },
      });
      // a GPU provider this machine lacks fails here, before anything listens or a worker is forked
      if (config.provider !== 'cpu') requireProvider(config.provider);
      // the inference thread starts loading the models first, while this thread loads the server
      const { prestartBackend } = await import('../../server/worker-backend.js');
      let early: Awaited<ReturnType<typeof prestartBackend>> = null;
      try {
        early = await prestartBackend(config);
        // loaded here, not at the top: other commands should not pay for Fastify, Redis and prom-client
        const { runServer } = await import('../../server/serve.js');
        process.exitCode = await runServer(config, early ?? {});
      } catch (e) {
        // the inference threads started above would keep the process up after the error line
        const release = async () => { await early?.backend().then((b) => b.release(), () => undefined); };
        // a cluster worker ends here with the error's code: its IPC channel to the primary would keep it
        // alive after the line, and the primary waiting for it, forever
        if (cluster.isWorker) await (await import('../../server/serve.js')).exitWorker(e, release);
        await release();
        throw e;
      }
    });
}
