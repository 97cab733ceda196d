/**
 * `--workers N`: N processes (node:cluster) serve one port, each with its own sessions and
 * floor(cores / N) intra-op threads. The primary listens and hands each connection to a warm worker
 * (handoff.ts); it restarts a worker that died unexpectedly, forwards SIGTERM/SIGINT and exits 0 once
 * every worker has drained, and sums the workers' Prometheus metrics for whichever worker is asked for
 * /metrics.
 */
import cluster, { type Worker } from 'node:cluster';
import type net from 'node:net';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import { CONNECTION_CLOSED, Dispatcher, HANDOFF_ANSWER, WORKER_READY, type HandoffAnswer } from './handoff.js';

const ASK = 'faceopt:metrics?';
const ANSWER = 'faceopt:metrics!';
const COLLECT = 'faceopt:collect?';
const COLLECTED = 'faceopt:collect!';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
interface Ask { type: typeof ASK; id: number }
interface Answer { type: typeof ANSWER; id: number; text?: string; error?: string }
interface Collect { type: typeof COLLECT; id: number }
interface Collected { type: typeof COLLECTED; id: number; metrics?: MetricsJson }

/** How long the primary waits before starting again a replacement worker that could not start while others serve. */
export const REPLACE_RETRY_MS = 30_000;

/** How long the primary waits for one worker's metrics before answering without them. */
export const WORKER_METRICS_TIMEOUT_MS = 2000;

/** Worker side: answer the primary's metric requests from `registry`, and ask it for the cluster-wide sum. */
export function workerMetrics(registry: Registry): () => Promise<string> {
  let next = 0;
  const waiting = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void }>();
  process.on('message', (m: Answer | Collect) => {
    if (m?.type === COLLECT) {
      registry.getMetricsAsJSON().then(
        // a callback, so a reply on a channel closing meanwhile is dropped, not an uncaught 'error'
        (metrics) => process.send?.({ type: COLLECTED, id: m.id, metrics } satisfies Collected, undefined, {}, () => {}),
        () => process.send?.({ type: COLLECTED, id: m.id } satisfies Collected, undefined, {}, () => {}),
      );
      return;
    }
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
  /** The port, listening with pauseOnConnect: its connections are handed to the workers. */
  listener: net.Server;
  shutdownTimeoutMs: number;
  log: (msg: string, fields?: Record<string, unknown>, level?: 'info' | 'error') => void;
}

/**
 * Exit codes of a worker that could not start and would fail the same way again: a usage or
 * configuration error (64-78, as the CLI's errors use them, but for 70 and 75) or a variant that failed
 * its gates (3).
 */
export function isConfigExit(code: number | null): boolean {
  // 70 (internal or inference error) and 75 (temporary failure) may pass: those workers are restarted
  return code !== null && (code === 3 || (code >= 64 && code <= 78 && code !== 70 && code !== 75));
}

/**
 * A worker's metrics with the aggregator the cluster needs where prom-client's default would sum: the
 * per-process file descriptor limit is the same limit in every worker (two workers read 40000 for 20000).
 */
export function withClusterAggregators(metrics: MetricsJson): MetricsJson {
  return metrics.map((m) => (/process_max_fds$/.test(m.name) ? { ...m, aggregator: 'max' as const } : m));
}

/**
 * Only what only grows, copied: counters and histograms (a dead worker's gauges mean nothing any more;
 * prom-client's JSON shares its live series objects).
 */
function monotonic(metrics: MetricsJson): MetricsJson {
  return metrics.filter((m) => ['counter', 'histogram'].includes(String(m.type))).map((m) => ({ ...m, values: m.values.map((v) => ({ ...v, labels: { ...v.labels } })) }));
}

/** Sum two sets of counters and histograms, series by series (synchronously, unlike prom-client's aggregate). */
export function sumMonotonic(a: MetricsJson, b: MetricsJson): MetricsJson {
  const series = (v: MetricValue<string>) => `${(v as { metricName?: string }).metricName ?? ''}|${JSON.stringify(Object.entries(v.labels).sort(([x], [y]) => (x < y ? -1 : 1)))}`;
  const out = new Map(monotonic(a).map((m) => [m.name, m]));
  for (const m of monotonic(b)) {
    const into = out.get(m.name);
    if (!into) {
      out.set(m.name, m);
      continue;
    }
    const at = new Map(into.values.map((v, i) => [series(v), i]));
    for (const v of m.values) {
      const i = at.get(series(v));
      if (i === undefined) into.values.push({ ...v });
      else into.values[i] = { ...into.values[i]!, value: into.values[i]!.value + v.value };
    }
  }
  return [...out.values()];
}

/**
 * The cluster's metrics as the primary keeps them: the sum over the workers that take connections (a
 * worker starting, restarting or stopped is not asked), each given WORKER_METRICS_TIMEOUT_MS to answer.
 * Counters and histograms never go backwards: a worker that died adds the counts it last reported (its
 * counts were dropped, so totals fell, which Prometheus reads as a reset), and one that did not answer in
 * time adds its last answer's. The answer says how many workers were summed fresh and how many of the
 * configured ones were not, in faceopt_cluster_workers{state}.
 */
export class ClusterMetrics {
  /** Each serving worker's last answer, counters and histograms only. */
  private readonly last = new Map<number, MetricsJson>();
  /** Workers that exited, by id, with their last report: a round in flight may still bring a newer one. */
  private readonly exited = new Map<number, MetricsJson>();
  /** Exited workers' last reports summed, once no round could still change them. */
  private departed: MetricsJson = [];
  private rounds = 0;

  constructor(private readonly configured: number) {}

  /** A worker exited: its last reported counts stay in the sums. */
  workerExited(id: number): void {
    this.exited.set(id, this.last.get(id) ?? []);
    this.last.delete(id);
  }

  async collect<W extends { id: number }>(workers: Iterable<W>, ask: (w: W) => Promise<MetricsJson | null>): Promise<string> {
    if (this.rounds === 0) {
      for (const m of this.exited.values()) this.departed = sumMonotonic(this.departed, m);
      this.exited.clear();
    }
    this.rounds++;
    try {
      const round = [...workers].map((w) => ({ w, id: w.id, last: this.last.get(w.id) }));
      const answers = await Promise.all(round.map(async (r) => {
        const answer = await ask(r.w).catch(() => null);
        if (answer) (this.exited.has(r.id) ? this.exited : this.last).set(r.id, monotonic(answer));
        return { ...r, answer };
      }));
      // each worker of the round once (its answer, else its last report); exited ones not in it as they left
      const inRound = new Set(round.map((r) => r.id));
      const fresh = answers.flatMap((a) => (a.answer ? [a.answer] : []));
      const stale = answers.flatMap((a) => (!a.answer && a.last ? [a.last] : []));
      const gone = [...this.exited].flatMap(([id, m]) => (inRound.has(id) ? [] : [m]));
      const parts = [...fresh, ...stale, ...gone, this.departed].filter((m) => m.length > 0);
      const text = parts.length ? await AggregatorRegistry.aggregate(parts.map(withClusterAggregators)).metrics() : '';
      return clusterWorkersText(text, fresh.length, Math.max(0, this.configured - fresh.length));
    } finally {
      this.rounds--;
    }
  }
}

/** faceopt_cluster_workers, after `text` (the summed metrics). */
function clusterWorkersText(text: string, answered: number, missing: number): string {
  return `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}# HELP faceopt_cluster_workers Workers whose metrics this answer sums fresh (answered), and configured workers it lacks (missing: starting, restarting or not answering in time; their counters count as last reported)
# TYPE faceopt_cluster_workers gauge
faceopt_cluster_workers{state="answered"} ${answered}
faceopt_cluster_workers{state="missing"} ${missing}
`;
}

/**
 * Run the supervising primary: fork `workers` copies of this process (same argv; they see
 * cluster.isWorker), keep them alive, stop them on SIGTERM/SIGINT. Resolves with the exit code.
 */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
  let stopping = false;
  let exitCode = 0;
  const restarts: number[] = [];
  /** Workers that take connections (once warm): the ones asked for metrics. */
  const serving = new Set<Worker>();
  const dispatcher = new Dispatcher<Worker>();
  opts.listener.on('connection', (socket: net.Socket) => dispatcher.connection(socket));
  let nextCollect = 0;
  const collecting = new Map<number, (m: MetricsJson | null) => void>();
  const metrics = new ClusterMetrics(opts.workers);

  const askWorker = (w: Worker): Promise<MetricsJson | null> => new Promise((resolve) => {
    const id = nextCollect++;
    const timer = setTimeout(() => { collecting.delete(id); resolve(null); }, WORKER_METRICS_TIMEOUT_MS);
    collecting.set(id, (m) => { clearTimeout(timer); collecting.delete(id); resolve(m); });
    try {
      w.send({ type: COLLECT, id } satisfies Collect, (e: Error | null) => { if (e) collecting.get(id)?.(null); });
    } catch {
      collecting.get(id)?.(null);
    }
  });

  const onMessage = (worker: Worker, m: Ask | Collected | HandoffAnswer | { type: typeof WORKER_READY | typeof CONNECTION_CLOSED }) => {
    if (m?.type === HANDOFF_ANSWER) {
      dispatcher.answered(m.id, m.accepted, m.stopping === true);
      return;
    }
    if (m?.type === CONNECTION_CLOSED) {
      dispatcher.closed(worker);
      return;
    }
    if (m?.type === WORKER_READY) {
      serving.add(worker);
      dispatcher.workerReady(worker);
      return;
    }
    if (m?.type === COLLECTED) {
      collecting.get(m.id)?.(m.metrics ?? null);
      return;
    }
    if (m?.type !== ASK) return;
    metrics.collect([...serving].filter((w) => w.isConnected()), askWorker).then(
      // with a callback: to a worker gone meanwhile, send() reports the closed channel there instead of
      // emitting 'error' on the Worker, which nothing handles (it ended the primary, and with it the port)
      (text) => worker.send({ type: ANSWER, id: m.id, text } satisfies Answer, undefined, {}, () => undefined),
      (e: Error) => worker.send({ type: ANSWER, id: m.id, error: e.message } satisfies Answer, undefined, {}, () => undefined),
    ).catch(() => undefined);
  };
  cluster.on('message', onMessage);
  // a worker that died or disconnected takes no more connections; what it left unanswered goes to another
  // (node:cluster's 'disconnect' never comes for a worker killed while a hand-off awaits its receipt:
  // child_process postpones it until that receipt, so 'exit' counts too)
  cluster.on('disconnect', (worker) => { serving.delete(worker); dispatcher.workerGone(worker); });
  cluster.on('exit', (worker) => dispatcher.workerExited(worker));
  cluster.on('fork', (worker) => {
    // an 'error' nobody handles ends the primary: log it instead
    worker.on('error', (e: Error) => opts.log('worker channel error', { pid: worker.process.pid, err: e.message }, 'error'));
    // a hand-off the worker's channel could not deliver (child_process internal NACK): see notReceived
    worker.process.on('internalMessage', (m: { cmd?: string } | undefined) => { if (m?.cmd === 'NODE_HANDLE_NACK') dispatcher.notReceived(worker); });
  });
  opts.listener.on('error', (e: Error) => opts.log('accepting a connection failed', { err: e.message }, 'error'));
  const stopTakingConnections = () => {
    dispatcher.stop();
    opts.listener.close();
  };

  // the workers whose process has not exited. Not cluster.workers: Node removes a worker from it only
  // once both its 'exit' and its IPC 'disconnect' have happened, in either order, so at the last 'exit'
  // it could still list that worker; the promise then never settled and the primary ended with code 13
  // (unsettled top-level await) instead of 0 (seen once in a CI run, 2026-12-05 18:4x)
  const alive = new Set<Worker>();
  const fork = () => { alive.add(cluster.fork()); };
  let retryTimer: NodeJS.Timeout | null = null;
  return new Promise<number>((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      alive.delete(worker);
      serving.delete(worker);
      metrics.workerExited(worker.id);
      if (stopping) {
        // the first failure's code stands (a worker that could not start: 64-78, or 3). A worker that
        // our SIGTERM ended before it set up its handler (still starting) stopped as asked.
        const asked = code === null && (signal === 'SIGTERM' || signal === 'SIGINT');
        if (code !== 0 && !asked && exitCode === 0) exitCode = code ?? 1;
        if (alive.size === 0) resolve(exitCode);
        return;
      }
      // a worker that fails at start (bad model, port taken) fails every time: give up instead of looping;
      // at once for a usage or configuration error (isConfigExit)
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && now - restarts[0] > 60_000) restarts.shift();
      const configError = isConfigExit(code);
      if (code !== 0 && configError && serving.size > 0) {
        // a replacement that cannot start (its model file changed or went since the others loaded theirs)
        // while others serve: they keep serving what they verified, and it is tried again later (the
        // cluster stopped, taking the port from the healthy workers too)
        opts.log(`a new worker could not start (its error is above); ${serving.size} worker(s) keep serving; trying again in ${REPLACE_RETRY_MS / 1000} s`, { code, signal }, 'error');
        retryTimer = setTimeout(() => { retryTimer = null; if (!stopping) fork(); }, REPLACE_RETRY_MS);
        return;
      }
      if (code !== 0 && (configError || restarts.length > opts.workers * 3)) {
        opts.log(configError ? 'a worker could not start (its error is above); stopping' : 'workers keep exiting; stopping', { code, signal }, 'error');
        stopping = true;
        stopTakingConnections();
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
      if (retryTimer) clearTimeout(retryTimer);
      stopTakingConnections();
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
