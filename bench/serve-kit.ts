/**
 * What the server benchmarks share: starting the built `faceopt serve` as a child process on a free
 * loopback port and waiting for /ready, multipart bodies as `curl -F` sends them, the server process's
 * resident memory (Linux /proc), samples of its /metrics (Prometheus text), the LFW photo list, and a
 * plain-text table printer. Used by bench/server.ts (load) and bench/hostile.ts (malformed requests +
 * memory).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { FaceoptError } from '../pipeline/errors.js';
import { sharedDir } from '../pipeline/paths.js';

export interface Row { [column: string]: string }

/**
 * A plain-text table of `rows` (columns in first-seen order); the first `leftCols` columns are padded
 * on the right (labels), the others on the left (numbers), so benchmark output lines up in a terminal.
 */
export function table(rows: Row[], leftCols = 3): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((s, i) => (i < leftCols ? s.padEnd(width[i]) : s.padStart(width[i]))).join('  ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => r[c] ?? '')))].join('\n');
}

export const BOUNDARY = 'faceoptbenchboundary';

/** One multipart part: a file (Buffer, with a file name and type) or a plain text field (string). */
export interface BodyPart { name: string; data: Buffer | string; filename?: string; type?: string }

/**
 * A multipart/form-data body with the given parts, delimited by BOUNDARY (send it with
 * `content-type: multipart/form-data; boundary=${BOUNDARY}`). Buffers become file parts, strings text fields.
 */
export function multipartParts(parts: BodyPart[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const file = Buffer.isBuffer(p.data);
    const head = file
      ? `Content-Disposition: form-data; name="${p.name}"; filename="${p.filename ?? 'face.jpg'}"\r\nContent-Type: ${p.type ?? 'image/jpeg'}`
      : `Content-Disposition: form-data; name="${p.name}"`;
    chunks.push(Buffer.from(`--${BOUNDARY}\r\n${head}\r\n\r\n`), Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

/** A multipart body with one `file` part, as `curl -F file=@x.jpg` sends it. */
export function multipartBody(jpeg: Buffer): Buffer {
  return multipartParts([{ name: 'file', data: jpeg }]);
}

/** A free TCP port on 127.0.0.1 (the OS picks it; a race with other processes is possible but rare). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)); });
  });
}

/**
 * The environment for a benchmarked `faceopt serve`: the bench's own, less what `serve` reads as settings
 * the bench did not choose. REDIS_URL would put a shared Redis cache behind `--cache-size 0` (the crops and
 * photos are sent over and over, so after the first round every request was a cache hit), and
 * FACEOPT_API_KEY would answer every request 401 (counted as served by a req/s that counted any answer).
 */
export const SERVER_ENV_DROPPED = ['REDIS_URL', 'FACEOPT_API_KEY'] as const;

export function serverEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of SERVER_ENV_DROPPED) delete out[k];
  return out;
}

/** The slice of an autocannon result okRate reads. */
export interface CannonCounts { '2xx': number; duration: number }

/**
 * Successful (2xx) answers per second of an autocannon run. autocannon's `requests.average` counts every
 * answer, 401s, 422s and 503s included, per one-second sample: a server that refuses fast reads as a fast
 * server. Here only 2xx count, over the run's measured duration.
 */
export function okRate(r: CannonCounts): number {
  return r.duration > 0 ? r['2xx'] / r.duration : 0;
}

export interface Server { proc: ChildProcess; base: string; stop: () => Promise<void>; /** ms from spawning the process to the first 200 from /ready (polled every 20 ms). */ readyMs: number }

/**
 * Start `faceopt serve` (the built CLI, bin/faceopt.js) on a free loopback port with cache off (memory and
 * Redis: serverEnv), warn-level
 * logs and a 1024-deep queue (`extra` flags come after and win), and wait up to 60 s for /ready (polled
 * every 20 ms; the time it took is `readyMs`).
 * Throws when the process exits or never gets ready; `stop` sends SIGTERM and waits for the exit.
 */
export async function startServer(det: string, rec: string, extra: string[]): Promise<Server> {
  const port = await freePort();
  const bin = path.resolve('bin/faceopt.js');
  const t0 = performance.now();
  const proc = spawn(process.execPath, [bin, 'serve', '--port', String(port), '--detector', det, '--recognizer', rec, '--cache-size', '0', '--log-level', 'warn', '--queue', '1024', ...extra], { stdio: ['ignore', 'ignore', 'inherit'], env: serverEnv() });
  const base = `http://127.0.0.1:${port}`;
  const stop = () => new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
  while (performance.now() - t0 < 60_000) {
    if (proc.exitCode !== null) throw new Error(`faceopt serve exited with ${proc.exitCode}`);
    try { if ((await fetch(`${base}/ready`)).status === 200) return { proc, base, stop, readyMs: performance.now() - t0 }; } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  await stop();
  throw new Error(`faceopt serve did not get ready within 60 s on ${base}`);
}

/** Resident memory of process `pid` in bytes (VmRSS from /proc, Linux only); null when unreadable. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU ticks (1/100 s) a thread has used so far: user + kernel time, and kernel time alone. */
export interface Ticks { all: number; sys: number }

/** CPU ticks used so far by each thread of process `pid` (Linux /proc); null when unreadable. */
export function threadTicks(pid: number): Map<number, Ticks> | null {
  try {
    const out = new Map<number, Ticks>();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const sys = Number(f[12]); // stime
      out.set(Number(tid), { all: Number(f[11]) + sys, sys }); // utime + stime
    }
    return out;
  } catch {
    return null;
  }
}

/**
 * Where the server's CPU went between two threadTicks snapshots, in cores: its event-loop thread
 * (tid = pid), its two busiest other threads (onnxruntime's, under load) and the rest, how much of it was
 * kernel time, plus the load generator's process. One line for the bench output; null without /proc.
 */
export function cpuSplit(pid: number, before: Map<number, Ticks> | null, after: Map<number, Ticks> | null, loadBefore: NodeJS.CpuUsage, seconds: number): string | null {
  if (!before || !after) return null;
  const cores = (k: keyof Ticks) => [...after].map(([tid, t]) => [tid, (t[k] - (before.get(tid)?.[k] ?? 0)) / 100 / seconds] as const);
  const used = cores('all');
  const kernel = cores('sys').reduce((a, [, c]) => a + c, 0);
  const main = used.find(([tid]) => tid === pid)?.[1] ?? 0;
  const others = used.filter(([tid]) => tid !== pid).map(([, c]) => c).sort((a, b) => b - a);
  const total = main + others.reduce((a, b) => a + b, 0);
  const load = process.cpuUsage(loadBefore);
  const gen = (load.user + load.system) / 1e6 / seconds;
  return `server ${total.toFixed(2)} cores (${kernel.toFixed(2)} in the kernel) (busiest threads ${others.slice(0, 2).map((c) => c.toFixed(2)).join(' + ')}, event loop ${main.toFixed(2)}, ${others.length - 2} others ${others.slice(2).reduce((a, b) => a + b, 0).toFixed(2)}), load generator ${gen.toFixed(2)}`;
}

/** The LFW photos named in `<lfw>/pairs_devtest.tsv`, as absolute paths, each once, in file order. */
export function lfwPhotos(lfw: string): string[] {
  const pairs = readFileSync(path.join(lfw, 'pairs_devtest.tsv'), 'utf8').trim().split('\n').slice(1);
  return [...new Set(pairs.flatMap((l) => l.split('\t').slice(0, 2)))].map((f) => path.join(lfw, f));
}

/**
 * The detector, recognizer and LFW folder a server bench runs on (flags override the shared models).
 * FACEOPT_ERR_FILE_NOT_FOUND (exit 66, one coded line) when any is missing: the bench cannot run here.
 */
export function benchData(bench: string, flags: { detector?: string; recognizer?: string }): { det: string; rec: string; lfw: string } {
  const shared = sharedDir();
  const det = flags.detector ?? path.join(shared, 'models', 'scrfd_500m_bnkps.onnx');
  const rec = flags.recognizer ?? path.join(shared, 'models', 'mobileface_paddle_128d.onnx');
  const lfw = path.join(shared, 'faces', 'lfw');
  const missing = [det, rec, lfw].filter((f) => !existsSync(f));
  if (missing.length) {
    const flagged = missing.filter((f) => f === flags.detector || f === flags.recognizer);
    throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', flagged.length
      ? { path: flagged.join(', '), hint: ` (${bench}: check the model flags)` }
      : { path: missing.join(', '), hint: ` (${bench} needs the shared models and photos: set FACEOPT_SHARED, now ${shared})` });
  }
  return { det, rec, lfw };
}

/** One sample of a Prometheus text exposition: its labels and value. */
export interface MetricSample { labels: Record<string, string>; value: number }

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every sample of metric `name` (histogram parts by their full name: `x_bucket`, `x_sum`, `x_count`) in `text`, in order. */
export function metricSamples(text: string, name: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const m = SAMPLE_LINE.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL_PAIR)) labels[k!] = v!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ labels, value: m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]) });
  }
  return out;
}

/** The value of the sample of `name` whose labels include `labels` (the first such); `fallback` when none. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}, fallback = NaN): number {
  const s = metricSamples(text, name).find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s ? s.value : fallback;
}

/** The server's /metrics (Prometheus text). */
export async function metricsText(base: string | URL): Promise<string> {
  return (await fetch(new URL('/metrics', base))).text();
}
