/**
 * `faceopt serve` as a real process on a free loopback port (the built CLI, real models): /health,
 * /ready and the seed's `curl -F file=@face.jpg /embed`; JSON log lines on stdout; 431 for huge headers;
 * SIGTERM finishes the request in flight and exits 0; two processes share one Redis cache; --workers 2
 * serves from two processes and sums their metrics; start-up errors are one coded line and an exit code.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { availableProviders } from '../../pipeline/runtime.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';
import { childPids } from '../helpers/procs.js';
import { freePort, HAS_REDIS, startRedis, waitFor } from './helpers.js';

const DET = shared('models', 'scrfd_500m_bnkps.onnx');
const REC = shared('models', 'mobileface_paddle_128d.onnx');
const FACE = shared('faces', 'lfw', 'Abdullah_Gul', 'Abdullah_Gul_0013.jpg');
const BIN = path.resolve('bin/faceopt.js');

interface Server { proc: ChildProcess; port: number; base: string; out: () => string; exited: Promise<number | null>; readyMs: number }

async function startServer(extra: string[] = [], env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const t0 = Date.now();
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--detector', DET, '--recognizer', REC, ...extra], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => { out += String(d); });
  proc.stderr?.on('data', (d) => { out += String(d); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`server exited ${proc.exitCode}: ${out}`);
    try { return (await fetch(`${base}/ready`)).status === 200; } catch { return false; }
  }, 60_000, 'the server to be ready');
  return { proc, port, base, out: () => out, exited, readyMs: Date.now() - t0 };
}

function curl(args: string[]): { status: number; body: string } {
  const r = spawnSync('curl', ['-s', '-w', '\n%{http_code}', ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`could not run curl (${r.error.message}): these tests call the server as its users do, with curl; install it (.ci/run does)`);
  const lines = r.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

/**
 * A /v1/extract of 12 group photos (seconds of work), once the server has admitted it: its response to
 * come (wrapped, so awaiting this does not wait for the response itself).
 */
async function admittedUpload(base: string): Promise<{ response: Promise<Response> }> {
  const t1 = readFileSync(shared('faces', 'groups', 't1.jpg'));
  const form = new FormData();
  for (let i = 0; i < 12; i++) form.append('file', new Blob([t1], { type: 'image/jpeg' }), `t1-${i}.jpg`);
  const inFlight = fetch(`${base}/v1/extract?extract_embedding=true`, { method: 'POST', body: form });
  await waitFor(async () => /faceopt_requests_admitted 1/.test(await (await fetch(`${base}/metrics`)).text()), 20_000, 'the request to be admitted');
  return { response: inFlight };
}

describeShared('faceopt serve over a real socket', () => {
  let s: Server;
  beforeAll(async () => {
    s = await startServer(['--log-level', 'info', '--lanes', '2', '--threads', '1', '--latency-lane']);
    console.log(`[faceopt tests] spawn -> /ready in ${s.readyMs} ms (shared machine; not a benchmark)`);
  });
  afterAll(() => { if (s?.proc.exitCode === null) s.proc.kill('SIGKILL'); });

  it('curl: /health, /ready, and the seed\'s `curl -F file=@face.jpg /embed`', () => {
    expect(curl([`${s.base}/health`]).status).toBe(200);
    const ready = curl([`${s.base}/ready`]);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body).status).toBe('ready');
    const embed = curl(['-F', `file=@${FACE}`, `${s.base}/embed`]);
    expect(embed.status).toBe(200);
    const body = JSON.parse(embed.body) as { embedding: number[] };
    expect(Object.keys(body)).toEqual(['embedding']);
    expect(body.embedding).toHaveLength(128);
    expect(Math.hypot(...body.embedding)).toBeCloseTo(1, 5);
    const wrong = curl(['-F', `file=@${shared('models', 'PROVENANCE.md')};type=text/markdown`, `${s.base}/embed`]);
    expect(wrong.status).toBe(415);
    expect(JSON.parse(wrong.body).error.code).toBe('FACEOPT_ERR_UNSUPPORTED_MEDIA');
  });

  it('logs the inference layout it serves with once the models are warm', () => {
    const warm = s.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; inference?: string }).find((l) => l.msg === 'models loaded and warmed');
    expect(warm?.inference).toBe('cpu, 2 lanes x 1 thread + a latency lane of 2 threads; batches of at most 8 crops; memory cache 2048');
  });

  it('logs one JSON line per request to stdout', async () => {
    const requests = () => s.out().split('\n').filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; route?: string; status?: number; ms?: number }).filter((l) => l.msg === 'request');
    // the line is written just after the response is sent
    await waitFor(() => requests().some((r) => r.route === '/embed' && r.status === 200 && typeof r.ms === 'number'), 5000, 'the /embed log line');
    expect(requests().some((r) => r.route === '/embed' && r.status === 415)).toBe(true);
    expect(s.out()).not.toMatch(/\n\s+at /); // no stack traces
  });

  it('a 64 KB header gets a 4xx, and the server keeps serving', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: s.port, path: '/health', headers: { 'x-big': 'a'.repeat(64 * 1024) } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431); // FACEOPT_ERR_HEADERS_TOO_LARGE (Node's 16 KB header limit)
    expect((await fetch(`${s.base}/health`)).status).toBe(200);
  });

  it('a burst larger than the queue: 503 OVERLOADED with Retry-After for the excess, 200 for the rest, nothing else; the server recovers', async () => {
    const small = await startServer(['--queue', '2', '--lanes', '1', '--threads', '1', '--no-latency-lane', '--log-level', 'warn']);
    try {
      const t1 = readFileSync(shared('faces', 'groups', 't1.jpg'));
      const burst = await Promise.all(Array.from({ length: 16 }, async () => {
        const res = await fetch(`${small.base}/v1/extract`, { method: 'POST', body: t1, headers: { 'content-type': 'image/jpeg' } });
        return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() as { error?: { code: string } } };
      }));
      const refused = burst.filter((r) => r.status === 503);
      expect(refused.length).toBeGreaterThan(0);
      expect(burst.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(2);
      expect(burst.every((r) => r.status === 200 || r.status === 503)).toBe(true);
      for (const r of refused) {
        expect(r.body.error?.code).toBe('FACEOPT_ERR_OVERLOADED');
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      }
      expect(small.proc.exitCode).toBeNull();
      expect((await fetch(`${small.base}/ready`)).status).toBe(200);
      const after = await fetch(`${small.base}/v1/extract`, { method: 'POST', body: t1, headers: { 'content-type': 'image/jpeg' } });
      expect(after.status).toBe(200);
      const metrics = await (await fetch(`${small.base}/metrics`)).text();
      expect(metrics).toContain(`faceopt_requests_rejected_total{reason="overloaded"} ${refused.length}`);
    } finally {
      small.proc.kill('SIGTERM');
      expect(await small.exited).toBe(0);
    }
  });

  it('SIGTERM: the request in flight completes, new connections are refused, exit code 0', async () => {
    const { response: inFlight } = await admittedUpload(s.base);
    s.proc.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(200);
    const body = await res.json() as { images: { faces: unknown[] }[] };
    expect(body.images).toHaveLength(12);
    expect(body.images.every((i) => i.faces.length === 6)).toBe(true);
    expect(await s.exited).toBe(0);
    await expect(fetch(`${s.base}/health`)).rejects.toThrow();
    expect(s.out()).toContain('shutting down');
  });
});

describeShared('faceopt serve: replicas and workers', () => {
  const procs: ChildProcess[] = [];
  afterAll(() => { for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL'); });

  it.skipIf(!HAS_REDIS)('two server processes share one Redis cache: the second answers from it, identically', async () => {
    const redis = await startRedis();
    try {
      const env = { REDIS_URL: redis.url };
      const a = await startServer(['--cache-size', '0', '--log-level', 'warn'], env);
      const b = await startServer(['--cache-size', '0', '--log-level', 'warn'], env);
      procs.push(a.proc, b.proc);
      const send = (srv: Server) => curl(['-i', '-F', `file=@${FACE}`, `${srv.base}/v1/embed`]);
      const first = send(a);
      const second = send(b);
      expect(first.body).toMatch(/x-faceopt-cache: miss/i);
      expect(second.body).toMatch(/x-faceopt-cache: hit/i);
      const json = (r: { body: string }) => JSON.parse(r.body.slice(r.body.indexOf('{')));
      expect(json(second).embedding).toEqual(json(first).embedding);
      a.proc.kill('SIGTERM');
      b.proc.kill('SIGTERM');
      expect(await a.exited).toBe(0);
      expect(await b.exited).toBe(0);
    } finally {
      await redis.stop();
    }
  });

  it('--workers 2: two processes serve one port; /metrics sums both; SIGTERM stops all with 0', async () => {
    const w = await startServer(['--workers', '2', '--log-level', 'warn']);
    procs.push(w.proc);
    for (let i = 0; i < 6; i++) expect(curl(['-F', `file=@${FACE}`, `${w.base}/embed`]).status).toBe(200);
    const metrics = await (await fetch(`${w.base}/metrics`)).text();
    expect(metrics).toMatch(/faceopt_http_requests_total\{route="\/embed",method="POST",status="200"\} 6/);
    expect(metrics).toMatch(/faceopt_ready 1/);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });

  it('--workers 2: a start-up error in the workers ends the cluster at once with the single process\'s exit code (no hang, no restart)', async () => {
    const cases: [string[], number][] = [
      [['--detector', '/nonexistent/det.onnx', '--recognizer', REC], 66],
      [['--detector', DET, '--recognizer', REC, '--det-size', '320'], 64],
      [['--detector', '/nonexistent/det.onnx', '--recognizer', REC, '--no-inference-thread'], 66],
    ];
    for (const [args, code] of cases) {
      const t0 = Date.now();
      const r = faceopt(['serve', '--workers', '2', '--port', String(await freePort()), '--log-level', 'warn', ...args], { timeoutMs: 30_000 });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(r.stdout).not.toContain('starting a new one');
      expect(r.stdout).toContain('a worker could not start');
    }
  });

  it('--workers 2: a replacement worker that cannot start while the other serves leaves it serving (the cluster stopped, port and all), and is tried again later', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-replace-'));
    try {
      const rec = path.join(dir, 'rec.onnx');
      copyFileSync(REC, rec);
      chmodSync(rec, 0o644); // the shared model is read-only: as a user other than root the copy is too
      const w = await startServer(['--workers', '2', '--log-level', 'warn', '--recognizer', rec]);
      procs.push(w.proc);
      await waitFor(async () => /faceopt_cluster_workers\{state="answered"\} 2/.test(await (await fetch(`${w.base}/metrics`)).text()), 30_000, 'both workers');
      // the file is cut short on disk: workers that loaded it serve on, a new one cannot load it
      writeFileSync(rec, readFileSync(REC).subarray(0, 1000));
      const workers = childPids(w.proc.pid!);
      expect(workers).toHaveLength(2);
      process.kill(workers[0]!, 'SIGKILL');
      await waitFor(() => w.out().includes('a new worker could not start'), 30_000, 'the replacement to fail');
      expect(w.out()).toContain('1 worker(s) keep serving; trying again in 30 s');
      expect(w.out()).toContain('FACEOPT_ERR_MODEL_TRUNCATED');
      expect(w.proc.exitCode).toBeNull();
      for (let i = 0; i < 3; i++) expect(curl(['-F', `file=@${FACE}`, `${w.base}/embed`]).status).toBe(200);
      const text = await (await fetch(`${w.base}/metrics`)).text();
      expect(text).toMatch(/faceopt_cluster_workers\{state="answered"\} 1/);
      expect(text).toMatch(/faceopt_cluster_workers\{state="missing"\} 1/);
      w.proc.kill('SIGTERM');
      expect(await w.exited).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SIGTERM while the models are still loading: exit 0, no abort (single process and --workers 2)', async () => {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const proc = spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--detector', DET, '--recognizer', REC, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(proc);
      let err = '';
      proc.stderr?.on('data', (d) => { err += String(d); });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGABRT' ? 134 : -1))));
      // listening and answering /ready 503: the models load now
      await waitFor(async () => { try { return (await fetch(`http://127.0.0.1:${port}/ready`)).status === 503; } catch { return false; } }, 30_000, '/ready 503');
      proc.kill('SIGTERM');
      expect(await exited, err).toBe(0);
      expect(err).not.toContain('terminate called');
    }
    const w = spawn(process.execPath, [BIN, 'serve', '--workers', '2', '--port', String(await freePort()), '--detector', DET, '--recognizer', REC, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(w);
    let out = '';
    w.stdout?.on('data', (d) => { out += String(d); });
    w.stderr?.on('data', (d) => { out += String(d); });
    const wExited = new Promise<number | null>((resolve) => w.once('exit', (code) => resolve(code)));
    await waitFor(() => out.includes('starting workers'), 30_000, 'the primary to fork');
    await new Promise((r) => setTimeout(r, 400));
    w.kill('SIGTERM');
    expect(await wExited, out).toBe(0);
    expect(out).not.toContain('terminate called');
  });

  it('--shutdown-timeout-ms passed with an upload in flight: exit 1, never an abort', async () => {
    const face = readFileSync(FACE);
    for (let i = 0; i < 3; i++) {
      const s = await startServer(['--shutdown-timeout-ms', '500', '--log-level', 'warn']);
      procs.push(s.proc);
      const req = http.request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/v1/embed', headers: { 'content-type': 'image/jpeg', 'content-length': face.length } });
      req.on('error', () => undefined);
      req.write(face.subarray(0, 1024));
      await new Promise((r) => setTimeout(r, 200));
      s.proc.kill('SIGTERM');
      expect(await s.exited, s.out()).toBe(1);
      expect(s.out()).not.toContain('terminate called');
      req.destroy();
    }
  });

  it('--workers 2: /metrics answers at once while a worker is gone or restarting, naming the workers that did not answer', async () => {
    const w = await startServer(['--workers', '2', '--log-level', 'warn']);
    procs.push(w.proc);
    const workers = childPids(w.proc.pid!);
    expect(workers).toHaveLength(2);
    process.kill(workers[0], 'SIGKILL');
    // once the primary has seen the worker exit, connections go to the live worker only, and the new one
    // loads its models for a second or more before it listens: scrapes in that window must answer at once
    // (they waited 5 s for the starting worker and failed with 500)
    await waitFor(() => w.out().includes('starting a new one'), 10_000, 'the primary to see its worker exit');
    // no retry: since 2026-12-07 the primary hands connections over itself and none is lost to a dead
    // worker (with node:cluster's round robin such scrapes were reset or hung; the next test)
    const t0 = Date.now();
    const res = await fetch(`${w.base}/metrics`, { signal: AbortSignal.timeout(8000), headers: { connection: 'close' } });
    const text = await res.text();
    expect(res.status, text.slice(0, 200)).toBe(200);
    expect(Date.now() - t0).toBeLessThan(3000);
    // the restarted worker usually loads for a second or more; on a fast turn it may already listen
    const answered = Number(/faceopt_cluster_workers\{state="answered"\} (\d+)/.exec(text)?.[1]);
    const missing = Number(/faceopt_cluster_workers\{state="missing"\} (\d+)/.exec(text)?.[1]);
    expect(answered + missing, text.slice(-400)).toBe(2);
    expect(answered).toBeGreaterThanOrEqual(1);
    // the restarted worker is counted again once it listens
    await waitFor(async () => /faceopt_cluster_workers\{state="answered"\} 2/.test(await (await fetch(`${w.base}/metrics`)).text()), 30_000, 'both workers in /metrics');
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });

  it('--workers 2: no connection is lost to a worker killed with SIGKILL, keep-alive connections are spread evenly, and SIGTERM finishes an upload in flight on a worker', async () => {
    const w = await startServer(['--workers', '2', '--log-level', 'warn']);
    procs.push(w.proc);
    const workers = childPids(w.proc.pid!);
    expect(workers).toHaveLength(2);
    // 40 fresh connections from the moment of the kill on: node:cluster's round robin handed the first
    // of them to the dead worker and nobody answered it, ever (the client's timeout ended it; every time)
    const get = (timeoutMs: number) => new Promise<number | string>((resolve) => {
      const req = http.get(`${w.base}/health`, { agent: false, timeout: timeoutMs }, (r) => { r.resume(); r.on('end', () => resolve(r.statusCode ?? 0)); });
      req.on('timeout', () => req.destroy(new Error('no answer')));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    process.kill(workers[0]!, 'SIGKILL');
    const answers: Promise<number | string>[] = [];
    for (let i = 0; i < 10; i++) answers.push(get(10_000));
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 5));
      answers.push(get(10_000));
    }
    expect(await Promise.all(answers)).toEqual(new Array(40).fill(200));
    await waitFor(async () => /faceopt_cluster_workers\{state="answered"\} 2/.test(await (await fetch(`${w.base}/metrics`, { headers: { connection: 'close' } })).text()), 30_000, 'both workers in /metrics');
    // 16 keep-alive connections opened at once: 8 on each worker, give or take one connection of ours
    // still closing (least connections; node:cluster's round robin: 20 / 12 of 32, once 9 / 23)
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const ports = new Set(await Promise.all(Array.from({ length: 16 }, () => new Promise<string>((resolve, reject) => {
      http.get(`${w.base}/health`, { agent }, (r) => { const port = String(r.socket.localPort); r.resume(); r.on('end', () => resolve(port)); }).on('error', reject);
    }))));
    expect(ports.size).toBe(16);
    const ss = spawnSync('ss', ['-tnpH', 'state', 'established', `( sport = :${w.port} )`], { encoding: 'utf8' });
    if (ss.status === 0) {
      // the server side of each of our 16 connections (fetch's own keep-alive connections left out)
      const perPid = new Map<string, number>();
      for (const m of ss.stdout.matchAll(/:(\d+)\s+users:\(\("[^"]*",pid=(\d+)/g)) {
        if (ports.has(m[1]!)) perPid.set(m[2]!, (perPid.get(m[2]!) ?? 0) + 1);
      }
      const counts = [...perPid.values()].sort((x, y) => x - y);
      expect(counts, ss.stdout).toHaveLength(2);
      expect(counts[0], ss.stdout).toBeGreaterThanOrEqual(7);
    } else {
      console.log('[faceopt tests] ss (iproute2) not available: connection spread not checked');
    }
    agent.destroy();
    // SIGTERM: the upload a worker is serving completes (the worker counts the connections it was handed)
    const { response: inFlight } = await admittedUpload(w.base);
    w.proc.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { images: unknown[] }).images).toHaveLength(12);
    expect(await w.exited).toBe(0);
    await expect(fetch(`${w.base}/health`)).rejects.toThrow();
  });

  it('start-up errors: one coded line and the table\'s exit code, nothing listening', async () => {
    const missing = faceopt(['serve', '--detector', '/nonexistent/det.onnx', '--recognizer', REC]);
    expect(missing.code).toBe(66);
    expect(missing.stderr.trim()).toBe('faceopt: FACEOPT_ERR_FILE_NOT_FOUND: File not found: /nonexistent/det.onnx. Check the path, or run `faceopt models list` to see known packs (a model may also be named PACK/FILE).');
    const badPort = faceopt(['serve', '--port', '99999', '--detector', DET, '--recognizer', REC]);
    expect(badPort.code).toBe(64);
    expect(badPort.stderr).toContain('for --port but received 99999');
    // a --det-size the fixed-size detector cannot take: refused before listening (it listened, then failed loading)
    const size = faceopt(['serve', '--port', String(await freePort()), '--detector', DET, '--recognizer', REC, '--det-size', '320']);
    expect(size.code, size.stderr).toBe(64);
    expect(size.stderr.trim()).toBe("faceopt: FACEOPT_ERR_BAD_ARGUMENT: Expected 640x640 (this detector's fixed input size; use a dynamic-input export for other sizes) for --det-size but received 320x320.");
    expect(size.stdout).not.toContain('listening');
    const sizeSwapped = faceopt(['serve', '--port', String(await freePort()), '--detector', REC, '--recognizer', DET, '--det-size', '640']);
    expect(sizeSwapped.code, sizeSwapped.stderr).toBe(64);
    expect(sizeSwapped.stderr).toContain('FACEOPT_ERR_MODEL_ROLE');
    const swapped = faceopt(['serve', '--port', String(await freePort()), '--detector', REC, '--recognizer', DET, '--log-level', 'silent']);
    expect(swapped.code).toBe(64);
    expect(swapped.stdout + swapped.stderr).not.toMatch(/\n\s+at /);
    // a worker that cannot start stops the cluster at once with its code (no restart loop)
    const swapped2 = faceopt(['serve', '--workers', '2', '--port', String(await freePort()), '--detector', REC, '--recognizer', DET, '--log-level', 'silent'], { timeoutMs: 60_000 });
    expect(swapped2.code, swapped2.stderr).toBe(64);
    expect(swapped2.stdout).toContain('a worker could not start');
    // a GPU provider this machine lacks: one coded line before anything listens or forks
    if (!availableProviders().includes('cuda')) { // where CUDA is installed this would start a server
      const gpu = faceopt(['serve', '--provider', 'cuda', '--workers', '2', '--port', String(await freePort()), '--detector', DET, '--recognizer', REC]);
      expect(gpu.code, gpu.stderr).toBe(69);
      expect(gpu.stderr.trim().split('\n')).toHaveLength(1);
      expect(gpu.stderr).toContain('FACEOPT_ERR_PROVIDER_UNAVAILABLE');
      expect(gpu.stdout).not.toContain('listening');
      expect(gpu.stdout).not.toContain('starting workers');
    }
    // a port already taken: the coded line and exit 64, and the process ends (its inference thread,
    // started before the port was tried, kept it up serving nothing until killed)
    const taken = http.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      const busy = faceopt(['serve', '--port', String(port), '--detector', DET, '--recognizer', REC, '--log-level', 'warn'], { timeoutMs: 60_000 });
      expect(busy.code, busy.stderr).toBe(64);
      expect(busy.stderr).toContain(`received 127.0.0.1:${port} (EADDRINUSE)`);
      // --workers 2: the primary tries the port before forking, once
      const busy2 = faceopt(['serve', '--workers', '2', '--port', String(port), '--detector', DET, '--recognizer', REC, '--log-level', 'warn'], { timeoutMs: 60_000 });
      expect(busy2.code, busy2.stderr).toBe(64);
      expect(busy2.stderr.match(/EADDRINUSE/g)).toHaveLength(1);
      // an address that is not this machine's (TEST-NET-1): the coded line, not an internal error
      const away = faceopt(['serve', '--host', '192.0.2.1', '--port', String(port), '--detector', DET, '--recognizer', REC, '--log-level', 'warn'], { timeoutMs: 60_000 });
      expect(away.code, away.stderr).toBe(64);
      expect(away.stderr).toContain(`Expected an address of this machine (127.0.0.1, or 0.0.0.0 for every interface) for --host/--port but received 192.0.2.1:${port} (EADDRNOTAVAIL)`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
