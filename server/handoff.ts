/**
 * `--workers N`: how connections reach the workers. The primary listens on the port itself (paused
 * sockets: it never reads a byte) and hands each new connection to a warm worker over IPC, keeping its
 * own descriptor until the worker says it took the connection. node:cluster's round robin, used before,
 * did the same hand-off without that receipt: a connection arriving between a worker's death and the
 * primary seeing its IPC channel close was handed to the dead worker, and nobody answered it (the client
 * waited until its own timeout, forever without one, and the primary leaked the socket; one connection
 * per SIGKILL here, every time, more under load). Here such a connection goes to another worker. A shared
 * listening socket (SCHED_NONE) would also lose none, but left whole bursts on one worker (32 of 32
 * connections opened at once, then half the throughput).
 *
 * Primary side: Dispatcher. Worker side: takeConnections.
 */
import type http from 'node:http';
import type net from 'node:net';
import { FaceoptError } from '../pipeline/errors.js';
import { refuseConnection } from './errors.js';

export const HANDOFF = 'faceopt:connection';
export const HANDOFF_ANSWER = 'faceopt:connection!';
/** A worker whose models are warm tells the primary it takes connections. */
export const WORKER_READY = 'faceopt:ready';
/** A worker tells the primary that a connection it took has closed. */
export const CONNECTION_CLOSED = 'faceopt:closed';

export interface Handoff { type: typeof HANDOFF; id: number }
export interface HandoffAnswer { type: typeof HANDOFF_ANSWER; id: number; accepted: boolean; stopping?: boolean }

/** What the dispatcher needs of a worker (node:cluster's Worker has it). */
export interface HandoffTarget {
  send(message: Handoff, handle: net.Socket, options: { keepOpen: boolean }, callback: (error: Error | null) => void): boolean;
}

/** How long after a worker's exit its last answers may still arrive before its hand-offs go elsewhere. */
export const EXIT_GRACE_MS = 100;

/** Connections the primary keeps while no worker is ready (all starting or restarting); more get 503. */
export const MAX_WAITING_CONNECTIONS = 1024;

/** Hand-offs of one connection a worker's channel could not deliver (NACK) before the primary closes it. */
export const MAX_NOT_RECEIVED = 3;

/**
 * Longest a hand-off may stay unanswered by a live worker; past it the primary closes its own descriptor
 * (never hands it elsewhere: the worker may hold it), so nothing it lost can leak here or hang a client.
 */
export const HANDOFF_TIMEOUT_MS = 10_000;

/**
 * The primary's side: each connection goes to the ready worker with the fewest connections, open or
 * handed over and not yet answered, in turn among equals (least connections, as nginx's least_conn; 32
 * keep-alive connections opened at once: 16 and 16, where node:cluster's round robin gave 20/12, once 9/23). The primary's descriptor is closed only once the worker answers that it took
 * the connection; a worker that refuses (it is stopping), fails to receive it or goes away first has its
 * connections handed to another. With no worker ready, connections wait (at most
 * MAX_WAITING_CONNECTIONS) for the first that is.
 */
export class Dispatcher<W extends HandoffTarget> {
  private readonly ready: W[] = [];
  private readonly unanswered = new Map<W, number>();
  private readonly open = new Map<W, number>();
  private readonly pending = new Map<number, { socket: net.Socket; worker: W; timer: NodeJS.Timeout }>();
  private readonly notReceivedCount = new WeakMap<net.Socket, number>();
  private readonly waiting: net.Socket[] = [];
  private nextId = 0;
  private turn = 0;
  private stopped = false;

  constructor(private readonly maxWaiting = MAX_WAITING_CONNECTIONS) {}

  /** A new connection from the primary's listening socket (paused: nothing of it has been read). */
  connection(socket: net.Socket): void {
    if (!socket.listenerCount('error')) socket.on('error', () => undefined); // a reset before the hand-off
    if (this.stopped) { refuseConnection(socket, new FaceoptError('FACEOPT_ERR_SHUTTING_DOWN')); return; }
    const worker = this.pick();
    if (!worker) {
      if (this.waiting.length < this.maxWaiting) this.waiting.push(socket);
      else refuseConnection(socket, new FaceoptError('FACEOPT_ERR_OVERLOADED', { depth: this.maxWaiting, retryAfter: 1 }));
      return;
    }
    const id = this.nextId++;
    const timer = setTimeout(() => { if (this.settle(id)) socket.destroy(); }, HANDOFF_TIMEOUT_MS).unref();
    this.pending.set(id, { socket, worker, timer });
    this.unanswered.set(worker, (this.unanswered.get(worker) ?? 0) + 1);
    // a failed send means the worker's channel is closing: it takes nothing more (picking it again would
    // fail again, each failure a tick later, and starve the primary's event loop of the 'disconnect')
    const failed = (e: Error | null) => {
      if (!e) return;
      this.unready(worker);
      this.handAgain(id);
    };
    try {
      worker.send({ type: HANDOFF, id }, socket, { keepOpen: true }, failed);
    } catch (e) {
      failed(e as Error);
    }
  }

  /** The worker's answer to hand-off `id`. */
  answered(id: number, accepted: boolean, stopping = false): void {
    if (!accepted) {
      // a stopping worker refuses every hand-off: picked again (it has the fewest connections while it
      // drains) it refused again, a round trip each, until it exited
      const p = this.pending.get(id);
      if (p && stopping) this.unready(p.worker);
      this.handAgain(id);
      return;
    }
    const p = this.settle(id);
    if (!p) return;
    this.open.set(p.worker, (this.open.get(p.worker) ?? 0) + 1);
    // the worker holds its own descriptor of the connection now: closing ours leaves the connection open
    p.socket.destroy();
  }

  /**
   * The worker's channel could not deliver the oldest hand-off in flight to it (child_process answers
   * NODE_HANDLE_NACK, e.g. its descriptor table was full, and drops the message: no answer ever comes).
   * Handles go one at a time per channel and every earlier one was answered, so it is that worker's
   * oldest pending hand-off: it goes to another worker, or is closed after MAX_NOT_RECEIVED tries.
   */
  notReceived(worker: W): void {
    for (const [id, p] of this.pending) {
      if (p.worker !== worker) continue;
      const n = (this.notReceivedCount.get(p.socket) ?? 0) + 1;
      this.notReceivedCount.set(p.socket, n);
      if (n >= MAX_NOT_RECEIVED) { this.settle(id); p.socket.destroy(); } else this.handAgain(id);
      return;
    }
  }

  /** A connection the worker took has closed. */
  closed(worker: W): void {
    const n = this.open.get(worker);
    if (n) this.open.set(worker, n - 1);
  }

  /** A worker that takes connections (its models are warm). */
  workerReady(worker: W): void {
    if (this.stopped || this.ready.includes(worker)) return;
    this.ready.push(worker);
    for (const socket of this.waiting.splice(0)) this.connection(socket);
  }

  /**
   * A worker whose process ended: it takes nothing more at once, and what it has not answered after
   * `graceMs` (answers it sent before dying may still be in the channel) goes to another worker.
   */
  workerExited(worker: W, graceMs = EXIT_GRACE_MS): void {
    this.unready(worker);
    setTimeout(() => this.workerGone(worker), graceMs).unref();
  }

  /**
   * A worker that no longer takes connections (its IPC channel closed: every answer it sent has been read
   * by then); the connections it did not answer go to another worker.
   */
  workerGone(worker: W): void {
    this.unready(worker);
    for (const [id, p] of [...this.pending]) if (p.worker === worker) this.handAgain(id);
    this.unanswered.delete(worker);
    this.open.delete(worker);
  }

  /**
   * Stop: the connections waiting here, and those handed back from now on, are answered 503
   * FACEOPT_ERR_SHUTTING_DOWN and closed (a client that connected while every worker was loading or
   * restarting got a reset before).
   */
  stop(): void {
    this.stopped = true;
    this.ready.length = 0;
    for (const socket of this.waiting.splice(0)) refuseConnection(socket, new FaceoptError('FACEOPT_ERR_SHUTTING_DOWN'));
  }

  /** Counts for tests and logs. */
  get state(): { ready: number; pending: number; waiting: number } {
    return { ready: this.ready.length, pending: this.pending.size, waiting: this.waiting.length };
  }

  private unready(worker: W): void {
    const i = this.ready.indexOf(worker);
    if (i >= 0) this.ready.splice(i, 1);
  }

  private pick(): W | null {
    const n = this.ready.length;
    if (!n) return null;
    let best = -1;
    let fewest = Infinity;
    for (let k = 0; k < n; k++) {
      const i = (this.turn + k) % n;
      const w = this.ready[i]!;
      const u = (this.unanswered.get(w) ?? 0) + (this.open.get(w) ?? 0);
      if (u < fewest) { fewest = u; best = i; }
    }
    this.turn = (best + 1) % n;
    return this.ready[best]!;
  }

  private settle(id: number): { socket: net.Socket; worker: W } | null {
    const p = this.pending.get(id);
    if (!p) return null;
    clearTimeout(p.timer);
    this.pending.delete(id);
    const u = this.unanswered.get(p.worker);
    if (u !== undefined) this.unanswered.set(p.worker, Math.max(0, u - 1));
    return p;
  }

  private handAgain(id: number): void {
    const p = this.settle(id);
    if (p) this.connection(p.socket);
  }
}

/**
 * The worker's side: serve the connections the primary hands over on `server` (an http.Server that
 * does not listen itself), answering each hand-off first. While `accepting()` is false (the worker is
 * stopping) a connection is refused and the primary gives it to another worker.
 */
export function takeConnections(server: http.Server, accepting: () => boolean): () => void {
  // an http.Server tracks its connections (idle ones closed on close(), header and request timeouts)
  // from its 'listening' event: this server never listens itself, so it is told once
  server.emit('listening');
  // net.Server emits 'close' whenever it has no handle and no connection left: without a listening handle
  // that was every time the worker's last connection ended. One count stands for the handle until close()
  const s = server as unknown as { _connections: number };
  s._connections++;
  let held = true;
  const close = server.close;
  server.close = function (this: http.Server, ...args: Parameters<http.Server['close']>) {
    if (held) { held = false; s._connections--; }
    return close.apply(this, args);
  };
  const onMessage = (m: Handoff | undefined, socket: net.Socket | undefined) => {
    if (m?.type !== HANDOFF) return;
    const stopping = !accepting();
    const accepted = socket !== undefined && !stopping;
    // answered before the connection is read, so a worker that dies unanswered never read any of it
    process.send?.({ type: HANDOFF_ANSWER, id: m.id, accepted, stopping } satisfies HandoffAnswer, undefined, {}, () => undefined);
    if (!socket) return;
    if (!accepted) { socket.destroy(); return; } // our descriptor only: the primary keeps the connection
    adopt(server, socket);
  };
  process.on('message', onMessage);
  return () => { process.off('message', onMessage); };
}

/**
 * What net.Server does with a connection it accepted (net.js onconnection; node:cluster's workers get
 * theirs the same way): count it, so close() waits for it to end, then hand it to the HTTP server. The
 * primary hears when it closes (its least-connections count).
 */
function adopt(server: http.Server, socket: net.Socket): void {
  socket.once('close', () => process.send?.({ type: CONNECTION_CLOSED }, undefined, {}, () => undefined));
  const s = server as unknown as { _connections: number; noDelay?: boolean; keepAlive?: boolean; keepAliveInitialDelay?: number };
  const c = socket as unknown as { server: net.Server; _server: net.Server };
  // as net.js onconnection: http.Server asks for TCP_NODELAY (noDelay defaults to true); without it a
  // second write waited for the client's delayed ACK (two pipelined requests: 44 ms instead of 1.5)
  if (s.noDelay) socket.setNoDelay(true);
  if (s.keepAlive) socket.setKeepAlive(true, s.keepAliveInitialDelay);
  s._connections++;
  c.server = server;
  c._server = server; // its 'close' counts it out of server._connections
  server.emit('connection', socket);
}
