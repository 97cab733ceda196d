/**
 * The process layer of `--workers N` (server/cluster.ts's runPrimary, the worker side of
 * server/handoff.ts) with real processes and sockets but no models (test/fixtures/cluster-stub.ts):
 * metrics summed through the primary, least connections fed by the workers' close reports, draining and
 * refusing on SIGTERM, a stopping worker handed nothing more, exit codes of failed starts and restarts,
 * and Node's header timeout on handed-over connections. A mutation audit found all of these unchecked
 * short of the model-loading suites (socket.test.ts, handoff-review.test.ts), which take minutes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StubPlan } from '../fixtures/cluster-stub.js';

const STUB = path.resolve('dist/test/fixtures/cluster-stub.js');
/** A safety cap on every wait here (none is a timing assertion). */
const CAP_MS = 15_000;

interface Stub {
  proc: ChildProcess;
  port: number;
  /** Every stdout line so far, parsed. */
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  /** Resolves once `pred` holds for the lines (checked on every new line). */
  until(pred: (lines: Record<string, unknown>[]) => boolean, what: string): Promise<void>;
  events(event: string): { id: number; pid: number; kept?: boolean }[];
}

/** `p`, or a rejection naming `what` past CAP_MS. */
function capped<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`not within ${CAP_MS} ms: ${what}`)), CAP_MS); });
  return Promise.race([p, cap]).finally(() => clearTimeout(timer));
}

const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

async function startStub(plan: StubPlan, waitReady = plan.workers ?? 2): Promise<Stub> {
  const proc = spawn(process.execPath, [STUB], { env: { ...process.env, STUB_PLAN: JSON.stringify(plan) }, stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(proc);
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => { for (const w of [...waiters]) w(); resolve(code); }));
  const until = (pred: (l: Record<string, unknown>[]) => boolean, what: string) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`not within ${CAP_MS} ms: ${what}\n${lines.map((l) => JSON.stringify(l)).join('\n')}`)); }, CAP_MS);
    const check = () => { if (pred(lines)) { clearTimeout(timer); waiters.delete(check); resolve(); } };
    waiters.add(check);
    check();
  });
  const events = (event: string) => lines.filter((l) => l.event === event) as unknown as { id: number; pid: number; kept?: boolean }[];
  await until((l) => typeof l[0]?.port === 'number', 'the port');
  const stub: Stub = { proc, port: lines[0]!.port as number, lines, exited, until, events };
  await until(() => events('ready').length >= waitReady, `${waitReady} workers ready`);
  return stub;
}

/** A keep-alive client connection speaking raw HTTP/1.1. */
interface Conn { sock: net.Socket; get(pathname: string): Promise<{ status: number; body: string }>; ended: Promise<string> }

function connect(port: number): Conn {
  const sock = net.connect(port, '127.0.0.1');
  let data = '';
  let onData: (() => void) | null = null;
  sock.on('data', (d) => { data += d.toString('utf8'); onData?.(); });
  const ended = new Promise<string>((resolve) => {
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    sock.on('close', () => resolve(`closed: ${data}`));
  });
  const get = (pathname: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${pathname} within ${CAP_MS} ms`)), CAP_MS);
    onData = () => {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(data.slice(0, end))?.[1] ?? 0);
      if (data.length < end + 4 + length) return;
      const status = Number(data.slice(9, 12));
      const body = data.slice(end + 4, end + 4 + length);
      data = data.slice(end + 4 + length);
      onData = null;
      clearTimeout(timer);
      resolve({ status, body });
    };
    void ended.then((how) => { clearTimeout(timer); reject(new Error(`connection ended before the answer to ${pathname}: ${how}`)); });
    sock.write(`GET ${pathname} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
  return { sock, get, ended };
}

const pidOf = async (c: Conn): Promise<number> => (JSON.parse((await c.get('/pid')).body) as { pid: number }).pid;
const metric = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"=]/g, (ch) => `\\${ch}`)} (\\S+)$`, 'm').exec(text)?.[1]);
const logged = (s: Stub, msg: string) => s.lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith(msg)).length;

describe('--workers: the primary and its workers (no models)', () => {
  it('two connections go to two workers; /metrics sums both through the primary; SIGTERM after they closed exits 0', async () => {
    const s = await startStub({});
    const [a, b] = [connect(s.port), connect(s.port)];
    const pids = [await pidOf(a), await pidOf(b)];
    expect(new Set(pids).size).toBe(2);
    await pidOf(a);
    const text = (await b.get('/metrics')).body;
    expect(metric(text, 'stub_requests_total')).toBe(3);
    expect(metric(text, 'faceopt_cluster_workers{state="answered"}')).toBe(2);
    expect(metric(text, 'faceopt_cluster_workers{state="missing"}')).toBe(0);
    a.sock.destroy();
    b.sock.destroy();
    await s.until(() => s.events('closed').length === 2, 'both connections closed in the workers');
    const c = connect(s.port);
    await pidOf(c);
    c.sock.destroy();
    // a worker's server that never listened itself emitted 'close' each time its last connection ended
    expect(s.events('server-closed')).toEqual([]);
    s.proc.kill('SIGTERM');
    expect(await capped(s.exited, 'the cluster to exit')).toBe(0);
    expect(s.events('server-closed')).toHaveLength(2); // on close(), once drained
  });

  it('SIGTERM: a request in flight on a worker is answered in full, and the port takes no new connection', async () => {
    const s = await startStub({ shutdownTimeoutMs: 10_000 });
    const c = connect(s.port);
    const slow = c.get('/slow?ms=600');
    await s.until(() => s.events('slow').length === 1, 'the slow request to reach its worker');
    s.proc.kill('SIGTERM');
    await s.until(() => logged(s, 'stopping workers') === 1, 'the primary to stop');
    const late = connect(s.port);
    expect(await capped(late.ended, 'the refused connection')).toBe('ECONNREFUSED'); // not a 503 written by the primary: the port is closed
    expect((await capped(slow, 'the slow answer')).status).toBe(200);
    expect(await capped(s.exited, 'the cluster to exit')).toBe(0);
  });

  it('once a worker\'s connections close it gets the next ones (least connections counts what it reports closed)', async () => {
    const s = await startStub({});
    const conns = Array.from({ length: 4 }, () => connect(s.port));
    const pids: number[] = [];
    for (const c of conns) pids.push(await pidOf(c));
    const a = pids[0]!;
    expect(pids.filter((p) => p === a)).toHaveLength(2); // 2 and 2
    for (const [i, c] of conns.entries()) if (pids[i] === a) c.sock.destroy();
    await s.until(() => s.events('closed').filter((e) => e.pid === a).length === 2, 'worker a to see both close');
    // a holds none, b two: both new connections go to a (had a's closes not counted: one to a, one to b)
    const next = [connect(s.port), connect(s.port)];
    expect([await pidOf(next[0]!), await pidOf(next[1]!)]).toEqual([a, a]);
    s.proc.kill('SIGTERM');
    expect(await capped(s.exited, 'the cluster to exit')).toBe(0);
  });

  it('a worker told to stop refuses the one connection it is offered and is offered no other; that connection is served by the other worker', async () => {
    const s = await startStub({ shutdownTimeoutMs: 10_000 });
    const conns = Array.from({ length: 4 }, () => connect(s.port));
    const pids: number[] = [];
    for (const c of conns) pids.push(await pidOf(c));
    const a = pids[0]!;
    const b = pids.find((p) => p !== a)!;
    // a: one connection with a slow request (a drains it), b: two; then a stops on its own
    const slow = conns[0]!.get('/slow?ms=1500');
    await s.until(() => s.events('slow').length === 1, 'the slow request');
    conns[2]!.sock.destroy();
    await s.until(() => s.events('closed').length === 1, 'a to see its other connection close');
    process.kill(a, 'SIGTERM');
    await s.until(() => s.events('stopping').length === 1, 'a to stop');
    // a has the fewest connections: offered first, it refuses as stopping, b takes the connection
    const fresh = connect(s.port);
    expect(await pidOf(fresh)).toBe(b);
    expect(await pidOf(connect(s.port))).toBe(b);
    // offered once, and its copy of the socket closed (a copy kept open reads, and may swallow, what the client sends)
    expect(s.events('handoff-while-stopping').map((e) => [e.pid, e.kept])).toEqual([[a, false]]);
    expect((await capped(slow, 'the slow answer')).status).toBe(200);
    s.proc.kill('SIGTERM');
    expect(await capped(s.exited, 'the cluster to exit')).toBe(0);
  });

  it('a connection handed over gets the worker\'s header timeout (its http.Server checks it from takeConnections on)', async () => {
    const s = await startStub({ headersTimeoutMs: 300 });
    const c = connect(s.port);
    c.sock.write('GET /pid HTTP/1.1\r\nHost: x\r\n'); // never finished
    expect(await capped(c.ended, 'the connection to end')).toMatch(/^closed: HTTP\/1\.1 408 /);
    s.proc.kill('SIGTERM');
    expect(await capped(s.exited, 'the cluster to exit')).toBe(0);
  });

  it('SIGTERM to workers that end by the signal itself (still loading, no handler yet) is a clean stop: exit 0', async () => {
    const s = await startStub({ noSigterm: true });
    s.proc.kill('SIGTERM');
    expect(await capped(s.exited, 'the cluster to exit')).toBe(0);
  });
});

describe('--workers: failed starts and restarts (no models)', () => {
  it('a configuration error at start ends the cluster with its code at once, no worker restarted', async () => {
    const s = await startStub({ exitAtStart: { '*': 66 } }, 0);
    expect(await capped(s.exited, 'the cluster to exit')).toBe(66);
    expect(logged(s, 'a worker could not start (its error is above); stopping')).toBeGreaterThanOrEqual(1);
    expect(logged(s, 'worker exited; starting a new one')).toBe(0);
  });

  it('a configuration error while no worker serves stops the sibling still loading, whose own failure to stop does not replace the code', async () => {
    const s = await startStub({ loading: [1], sigtermExitCode: 1 }, 1);
    await s.until(() => s.events('loading').length === 1, 'worker 1 loading (its SIGTERM handler set)');
    connect(s.port).sock.write('GET /exit?code=66 HTTP/1.1\r\nHost: x\r\n\r\n'); // to worker 2, the only ready one
    expect(await capped(s.exited, 'the cluster to exit')).toBe(66);
    expect(logged(s, 'a worker could not start (its error is above); stopping')).toBe(1);
    expect(s.events('stopping').map((e) => e.id)).toEqual([1]);
  });

  it('a worker that crashes is replaced and its counts stay in the sums; a replacement that cannot start while another serves leaves the cluster serving', async () => {
    const s = await startStub({ exitAtStart: { 4: 66 } });
    const [c1, c2] = [connect(s.port), connect(s.port)];
    const first = await pidOf(c1);
    expect(await pidOf(c2)).not.toBe(first);
    await pidOf(c1);
    expect(metric((await c2.get('/metrics')).body, 'stub_requests_total')).toBe(3);
    c1.sock.write('GET /exit?code=1 HTTP/1.1\r\nHost: x\r\n\r\n'); // a crash (not a configuration error)
    await s.until(() => s.events('ready').some((e) => e.id === 3), 'the replacement');
    const text = (await c2.get('/metrics')).body;
    expect(metric(text, 'stub_requests_total')).toBe(3); // the dead worker's two as it last reported them
    expect(metric(text, 'faceopt_cluster_workers{state="answered"}')).toBe(2);
    c2.sock.write('GET /exit?code=1 HTTP/1.1\r\nHost: x\r\n\r\n'); // its replacement (worker 4) fails with 66
    await s.until(() => logged(s, 'a new worker could not start') === 1, 'the failed replacement');
    expect(s.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('a new worker could not start'))?.msg).toMatch(/1 worker\(s\) keep serving; trying again in 30 s/);
    const replacement = s.events('ready').find((e) => e.id === 3)!.pid;
    expect(await pidOf(connect(s.port))).toBe(replacement);
    s.proc.kill('SIGTERM');
    expect(await capped(s.exited, 'the cluster to exit')).toBe(0);
  });

  it('workers that keep exiting (not a configuration error) are restarted workers x 3 times, then the cluster exits 1', async () => {
    const s = await startStub({ exitAtStart: { '*': 1 } }, 0);
    expect(await capped(s.exited, 'the cluster to exit')).toBe(1);
    expect(logged(s, 'worker exited; starting a new one')).toBe(6);
    expect(logged(s, 'workers keep exiting; stopping')).toBe(1);
  });
});
