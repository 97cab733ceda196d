/**
 * Running the server for real: build the app, listen, and stop cleanly. SIGTERM/SIGINT stop accepting
 * connections, let in-flight requests finish (new requests on open connections get 503), release the
 * sessions and the Redis connection, and exit 0; past shutdownTimeoutMs the process exits 1 anyway.
 * With workers > 1 this process becomes the cluster primary and each worker runs this same function.
 */
import cluster from 'node:cluster';
import net from 'node:net';
import sharp from 'sharp';
import { FaceoptError, isFaceoptError } from '../pipeline/errors.js';
import { buildApp, type AppOptions, type FaceoptApp } from './app.js';
import { runPrimary, workerMetrics } from './cluster.js';
import { takeConnections, WORKER_READY } from './handoff.js';
import type { ServerConfig } from './config.js';

function exitCodeOf(e: unknown): number {
  return isFaceoptError(e) ? e.exitCode : 70;
}

/** What each listen failure needs from the user, by the system's error code. */
const BIND_FIXES: Record<string, string> = {
  EADDRINUSE: 'a free port (another process listens on this one: pick another --port or stop it)',
  EACCES: 'a port this user may bind (ports below 1024 need root: e.g. --port 5555)',
  EADDRNOTAVAIL: 'an address of this machine (127.0.0.1, or 0.0.0.0 for every interface)',
  ENOTFOUND: 'a host name that resolves or an address of this machine (127.0.0.1, or 0.0.0.0 for every interface)',
  EAI_AGAIN: 'a host name that resolves or an address of this machine (127.0.0.1, or 0.0.0.0 for every interface)',
};

/** A listen failure as the coded error a user can act on (port taken, not allowed, address not here, no such host). */
export function bindError(e: unknown, host: string, port: number): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  const fix = code === undefined ? undefined : BIND_FIXES[code];
  if (fix) return new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: fix, name: '--host/--port', received: `${host}:${port} (${code})` });
  return e;
}

/**
 * The cluster primary's port, bound before any worker is forked (a port that cannot be bound fails
 * here, once): its connections stay paused, unread, until a worker takes them (handoff.ts).
 */
async function listenForWorkers(host: string, port: number): Promise<net.Server> {
  const listener = net.createServer({ pauseOnConnect: true });
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host, port, exclusive: true }, resolve);
    });
  } catch (e) {
    listener.close();
    throw bindError(e, host, port);
  }
  return listener;
}

function jsonLine(level: number, msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, msg, ...fields })}\n`);
}

/** Longest a forced exit waits for the inference threads to let their sessions go. */
const FORCED_RELEASE_MS = 5000;

/**
 * Exit with `code` now, without draining: the sessions are released first (bounded). process.exit with
 * inference threads still holding onnxruntime sessions tore them down mid-flight and aborted now and
 * then (SIGABRT, exit 134, "terminate called after throwing an instance of 'Napi::Error'").
 */
async function forceExit(app: FaceoptApp, code: number): Promise<never> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    app.faceopt.service.releaseNow().catch(() => undefined),
    new Promise((resolve) => { timer = setTimeout(resolve, FORCED_RELEASE_MS); }),
  ]);
  clearTimeout(timer);
  process.exit(code);
}

/** Close the app (drain) and exit; the timeout exits with 1 (a second signal too, see runServer). */
async function shutdown(app: FaceoptApp, signal: string, timeoutMs: number): Promise<never> {
  app.log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
  const timer = setTimeout(() => {
    app.log.error({ timeoutMs }, 'shutdown timed out; exiting');
    void forceExit(app, 1);
  }, timeoutMs);
  timer.unref();
  try {
    await app.close();
    app.log.info('stopped');
    process.exit(0);
  } catch (e) {
    app.log.error({ err: (e as Error).message }, 'error while stopping');
    return forceExit(app, 1);
  }
}

/** The CLI's one line for a start-up error that ends a process (a cluster worker, or model loading). */
function startupFailureLine(e: unknown): void {
  const code = isFaceoptError(e) ? e.code : 'FACEOPT_ERR_INTERNAL';
  const message = (e as Error)?.message?.split('\n')[0] ?? String(e);
  process.stderr.write(`faceopt: ${code}: ${message}\n`);
}

/**
 * Serve until a signal: returns only on start-up failure (throws a coded error, before listening)
 * or, in the cluster primary, with the exit code once all workers have stopped.
 */
export async function runServer(config: ServerConfig, appOptions: Pick<AppOptions, 'models' | 'backend'> = {}): Promise<number> {
  if (config.workers > 1 && cluster.isPrimary) {
    const listener = await listenForWorkers(config.host, config.port);
    jsonLine(30, 'starting workers', { workers: config.workers, threadsPerWorker: config.intraOpThreads, host: config.host, port: config.port });
    return runPrimary({ workers: config.workers, listener, shutdownTimeoutMs: config.shutdownTimeoutMs, log: (msg, f, level) => jsonLine(level === 'error' ? 50 : 30, msg, f) });
  }
  // decoded pixels are request data, not worth caching; libvips threads follow the per-worker share
  sharp.cache(false);
  sharp.concurrency(config.intraOpThreads);
  const app = await buildApp(config, appOptions);
  if (cluster.isWorker) app.faceopt.clusterMetrics = workerMetrics(app.faceopt.metrics.registry);
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      if (!cluster.isWorker) void forceExit(app, 1); // a second Ctrl-C means "now"
      return;
    }
    stopping = true;
    void shutdown(app, sig, config.shutdownTimeoutMs);
  };
  process.on('SIGTERM', onSignal);
  // Ctrl-C reaches the whole process group; a worker waits for the primary's SIGTERM instead
  process.on('SIGINT', cluster.isWorker ? () => undefined : onSignal);

  const fail = async (e: unknown): Promise<never> => {
    const code = isFaceoptError(e) ? e.code : 'FACEOPT_ERR_INTERNAL';
    app.log.fatal({ code, err: (e as Error)?.message?.split('\n')[0] ?? String(e) }, 'cannot serve: model loading failed');
    startupFailureLine(e); // the CLI's one line, whatever the log level
    await app.close().catch(() => undefined);
    process.exit(exitCodeOf(e));
  };
  const never = new Promise<number>(() => undefined); // runs until a signal ends the process

  if (cluster.isWorker) {
    // a cluster worker takes connections only once warm: the primary hands them to ready workers, so a
    // cold (or restarted) worker never answers 503 while its siblings could serve. One whose models
    // failed to load never takes any: it ends with the error's code (the primary does not restart a
    // configuration error), as its IPC channel would otherwise keep it up serving nothing.
    const failed = await app.faceoptReady.then(() => null, (e: unknown) => e ?? new Error('model loading failed'));
    if (stopping) return never; // a signal came while the models loaded: shutdown() exits
    if (failed !== null) return fail(failed);
    await app.ready();
    takeConnections(app.server, () => !stopping);
    process.send?.({ type: WORKER_READY });
    return never;
  }
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    if (stopping) return never;
    await app.close().catch(() => undefined);
    throw bindError(e, config.host, config.port);
  }
  app.faceoptReady.catch(async (e: unknown) => {
    if (stopping) return; // closed while loading: shutdown() exits
    await fail(e);
  });
  return never;
}

/**
 * A cluster worker whose start-up failed before it served (models not selectable, bad settings): print
 * the CLI's line and exit with the error's code, after letting the inference threads go. Its IPC
 * channel to the primary would otherwise keep it alive, and the primary waiting for it, forever.
 */
export async function exitWorker(e: unknown, release: () => Promise<void>): Promise<never> {
  await release().catch(() => undefined);
  startupFailureLine(e);
  process.exit(exitCodeOf(e));
}
