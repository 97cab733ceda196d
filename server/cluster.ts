/**
 * `--workers N`: N processes (node:cluster) share the port, each with its own sessions and
 * floor(cores / N) intra-op threads. The primary only supervises: it restarts a worker that died
 * unexpectedly, forwards SIGTERM/SIGINT and exits 0 once every worker has drained, and sums the
 * workers' Prometheus metrics for whichever worker is asked for /metrics.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const ASK = 'faceopt:metrics?';
const ANSWER = 'faceopt:metrics!';

interface Ask { type: typeof ASK; id: number }
interface Answer { type: typeof ANSWER; id: number; text?: string; error?: string }

/** Worker side: answer the primary's metric requests from `registry`, and ask it for the cluster-wide sum. */
export function workerMetrics(registry: Registry): () => Promise<string> {
  new AggregatorRegistry(); // installs prom-client's worker-side listener
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const waiting = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void }>();
  process.on('message', (m: Answer) => {
    if (m?.type !== ANSWER) return;
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (!w) return;
    if (m.error !== undefined) w.reject(new Error(m.error));
    else w.resolve(m.text ?? '');
  });
  return () => new Promise<string>((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject });
    process.send?.({ type: ASK, id } satisfies Ask);
    setTimeout(() => {
      if (waiting.delete(id)) reject(new Error('the primary did not answer the metrics request'));
    }, 6000).unref();
  });
}

export interface PrimaryOptions {
  workers: number;
  shutdownTimeoutMs: number;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Run the supervising primary: fork `workers` copies of this process (same argv; they see
 * cluster.isWorker), keep them alive, stop them on SIGTERM/SIGINT. Resolves with the exit code.
 */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  let exitCode = 0;
  const restarts: number[] = [];

  const onMessage = (worker: Worker, m: Ask) => {
    if (m?.type !== ASK) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: ANSWER, id: m.id, text } satisfies Answer),
      (e: Error) => worker.send({ type: ANSWER, id: m.id, error: e.message } satisfies Answer),
    );
  };
  cluster.on('message', onMessage);

  // the workers whose process has not exited. Not cluster.workers: Node removes a worker from it only
  // once both its 'exit' and its IPC 'disconnect' have happened, in either order, so at the last 'exit'
  // it could still list that worker; the promise then never settled and the primary ended with code 13
  // (unsettled top-level await) instead of 0 (seen once in a CI run, 2026-12-05 18:4x)
  const alive = new Set<Worker>();
  const fork = () => { alive.add(cluster.fork()); };
  return new Promise<number>((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      alive.delete(worker);
      if (stopping) {
        // the first failure's code stands (a worker that could not start: 64-78)
        if (code !== 0 && exitCode === 0) exitCode = 1;
        if (alive.size === 0) resolve(exitCode);
        return;
      }
      // a worker that fails at start (bad model, port taken) fails every time: give up instead of looping;
      // at once for a usage or configuration error (exit codes 64-78, as the CLI's errors use them)
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && now - restarts[0] > 60_000) restarts.shift();
      const configError = code !== null && code >= 64 && code <= 78;
      if (code !== 0 && (configError || restarts.length > opts.workers * 3)) {
        opts.log(configError ? 'a worker could not start (its error is above); stopping' : 'workers keep exiting; stopping', { code, signal });
        stopping = true;
        exitCode = code ?? 1;
        for (const w of alive) w.kill('SIGTERM');
        if (alive.size === 0) resolve(exitCode);
        return;
      }
      opts.log('worker exited; starting a new one', { pid: worker.process.pid, code, signal });
      fork();
    });
    const stop = (sig: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      opts.log('stopping workers', { signal: sig });
      for (const w of alive) w.kill('SIGTERM');
      setTimeout(() => resolve(1), opts.shutdownTimeoutMs + 5000).unref();
      if (alive.size === 0) resolve(0);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    for (let i = 0; i < opts.workers; i++) fork();
  });
}
