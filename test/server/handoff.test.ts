/**
 * The primary's hand-off of connections to `--workers N` workers (server/handoff.ts), with stand-in
 * workers and sockets: balance, receipts, refusals, failed sends, workers that die with hand-offs
 * unanswered, and connections that wait for a first ready worker. The real processes are in socket.test.ts.
 */
import type net from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { Dispatcher, HANDOFF, HANDOFF_TIMEOUT_MS, type Handoff, type HandoffTarget } from '../../server/handoff.js';

class FakeSocket {
  destroyed = false;
  writable = true;
  /** What the primary wrote before ending the socket (a refusal). */
  written = '';
  readonly name: string;
  constructor(name: string) { this.name = name; }
  destroy(): void { this.destroyed = true; }
  end(data: string): void { this.written += data; this.writable = false; }
  resume(): this { return this; }
  listenerCount(): number { return 1; }
  on(): this { return this; }
  once(): this { return this; }
  /** 'open', 'closed' (destroyed, nothing written) or the status line and error code it was answered with. */
  get fate(): string {
    if (this.written) return `${this.written.split('\r\n')[0]} ${(JSON.parse(this.written.split('\r\n\r\n')[1]!) as { error: { code: string } }).error.code}`;
    return this.destroyed ? 'closed' : 'open';
  }
}

class FakeWorker implements HandoffTarget {
  readonly got: { id: number; socket: FakeSocket }[] = [];
  /** When set, each send fails like a closing channel (asynchronously, as child_process does). */
  failing = false;
  constructor(readonly name: string) {}
  send(message: Handoff, handle: net.Socket, options: { keepOpen: boolean }, callback: (e: Error | null) => void): boolean {
    expect(message.type).toBe(HANDOFF);
    expect(options.keepOpen).toBe(true); // the primary keeps its descriptor until the receipt
    if (this.failing) { process.nextTick(callback, new Error('Channel closed')); return false; }
    this.got.push({ id: message.id, socket: handle as unknown as FakeSocket });
    process.nextTick(callback, null);
    return true;
  }
}

const sock = (name: string) => new FakeSocket(name) as unknown as net.Socket & FakeSocket;
const tick = () => new Promise((r) => setImmediate(r));

/** A dispatcher with workers a and b ready, in that order. */
function twoReadyWorkers(): { d: Dispatcher<FakeWorker>; a: FakeWorker; b: FakeWorker } {
  const d = new Dispatcher<FakeWorker>();
  const a = new FakeWorker('a');
  const b = new FakeWorker('b');
  d.workerReady(a);
  d.workerReady(b);
  return { d, a, b };
}

describe('Dispatcher: the primary hands connections to workers', () => {
  it('spreads connections over ready workers by least connections and closes its descriptor only on the receipt', () => {
    const { d, a, b } = twoReadyWorkers();
    const sockets = Array.from({ length: 32 }, (_, i) => sock(`c${i}`));
    for (const s of sockets) d.connection(s);
    // nothing answered yet: the fewest unanswered, in turn
    expect([a.got.length, b.got.length]).toEqual([16, 16]);
    expect(sockets.some((s) => s.destroyed)).toBe(false);
    for (const { id } of a.got) d.answered(id, true);
    expect(a.got.every(({ socket }) => socket.destroyed)).toBe(true);
    expect(b.got.some(({ socket }) => socket.destroyed)).toBe(false);
    // answered or not, each worker holds 16: the next ones alternate
    for (let i = 0; i < 4; i++) d.connection(sock(`n${i}`));
    expect([a.got.length, b.got.length]).toEqual([18, 18]);
    // 10 of a's connections close: the next 10 go to a (least connections)
    for (let i = 0; i < 10; i++) d.closed(a);
    for (let i = 0; i < 10; i++) d.connection(sock(`m${i}`));
    expect([a.got.length, b.got.length]).toEqual([28, 18]);
    expect(d.state).toEqual({ ready: 2, pending: 30, waiting: 0 });
  });

  it('a refused hand-off (a stopping worker) goes to another worker', () => {
    const { d, a, b } = twoReadyWorkers();
    const s = sock('s');
    d.connection(s);
    const first = a.got[0] ?? b.got[0]!;
    const other = a.got.length ? b : a;
    d.answered(first.id, false);
    expect(s.destroyed).toBe(false);
    expect(other.got.map((g) => g.socket)).toEqual([s]);
  });

  it('a worker that refuses because it is stopping is picked no more; one whose channel drops a hand-off (NACK) gets it no more after three tries', () => {
    const { d, a, b } = twoReadyWorkers();
    d.connection(sock('s'));
    const [first, other] = a.got.length ? [a, b] : [b, a];
    d.answered(first.got[0]!.id, false, true);
    expect(other.got.map((g) => g.socket.name)).toEqual(['s']);
    // the live worker's channel could not deliver its oldest pending hand-off ('s'): tried again (on the
    // only ready worker), and closed after MAX_NOT_RECEIVED tries rather than left hanging
    d.notReceived(other);
    d.notReceived(other);
    const s = other.got[0]!.socket;
    expect(other.got.map((g) => g.socket.name)).toEqual(['s', 's', 's']);
    expect(s.destroyed).toBe(false);
    d.notReceived(other);
    expect(s.destroyed).toBe(true);
    expect(d.state.pending).toBe(0);
    for (let i = 0; i < 3; i++) d.connection(sock(`t${i}`));
    expect(first.got).toHaveLength(1); // the stopping worker got nothing more
    expect(d.state.ready).toBe(1);
  });

  it('a failed send takes the worker out at once and hands the connection to another, without spinning on the dead one', async () => {
    const d = new Dispatcher<FakeWorker>();
    const dead = new FakeWorker('dead');
    const live = new FakeWorker('live');
    d.workerReady(dead);
    d.workerReady(live);
    dead.failing = true;
    const sockets = Array.from({ length: 10 }, (_, i) => sock(`c${i}`));
    for (const s of sockets) d.connection(s);
    await tick();
    await tick();
    expect(live.got.map((g) => g.socket.name).sort()).toEqual(sockets.map((s) => s.name).sort());
    expect(d.state.ready).toBe(1);
  });

  it('a worker that exits with hand-offs unanswered: they go to another worker after the grace, answers in the grace count', async () => {
    vi.useFakeTimers();
    try {
      const { d, a, b } = twoReadyWorkers();
      for (let i = 0; i < 6; i++) d.connection(sock(`c${i}`));
      expect(a.got).toHaveLength(3);
      d.workerExited(a, 100);
      // an answer the dead worker sent before dying, read during the grace: that one stays served
      d.answered(a.got[0]!.id, true);
      d.connection(sock('after-exit')); // never to the dead worker
      expect(a.got).toHaveLength(3);
      expect(b.got).toHaveLength(4);
      vi.advanceTimersByTime(100);
      // a had c0, c2, c4 (in turn with b); c0 was answered, c2 and c4 move to b
      expect(a.got.map((g) => g.socket.name)).toEqual(['c0', 'c2', 'c4']);
      expect(b.got.map((g) => g.socket.name).sort()).toEqual(['after-exit', 'c1', 'c2', 'c3', 'c4', 'c5']);
      expect(a.got[0]!.socket.destroyed).toBe(true);
      expect(b.got.some((g) => g.socket.name === a.got[0]!.socket.name)).toBe(false);
      // the later 'disconnect' changes nothing
      d.workerGone(a);
      expect(b.got).toHaveLength(6);
    } finally {
      vi.useRealTimers();
    }
  });

  it('closes its copy of a hand-off unanswered for HANDOFF_TIMEOUT_MS (never handing it elsewhere), and only that one', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const { d, a, b } = twoReadyWorkers();
      d.connection(sock('early'));
      vi.advanceTimersByTime(HANDOFF_TIMEOUT_MS / 2);
      d.connection(sock('late'));
      d.connection(sock('answered'));
      d.answered(a.got.find((g) => g.socket.name === 'answered')?.id ?? b.got.find((g) => g.socket.name === 'answered')!.id, true);
      vi.advanceTimersByTime(HANDOFF_TIMEOUT_MS / 2 + HANDOFF_TIMEOUT_MS / 10);
      const all = [...a.got, ...b.got];
      const fate = (name: string) => all.find((g) => g.socket.name === name)!.socket.destroyed;
      // early: unanswered past the limit, closed here; late: not yet; answered: closed on its receipt
      expect([fate('early'), fate('late'), fate('answered')]).toEqual([true, false, true]);
      expect(all).toHaveLength(3); // nothing was handed again
      expect(d.state.pending).toBe(1);
      vi.advanceTimersByTime(HANDOFF_TIMEOUT_MS / 2);
      expect(fate('late')).toBe(true);
      expect(d.state.pending).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('with no worker ready, connections wait (bounded: past it 503) for the first one; stop answers what waits 503', () => {
    const d = new Dispatcher<FakeWorker>(3);
    const waiting = Array.from({ length: 5 }, (_, i) => sock(`w${i}`));
    for (const s of waiting) d.connection(s);
    const busy = 'HTTP/1.1 503 Service Unavailable FACEOPT_ERR_OVERLOADED';
    expect(waiting.map((s) => s.fate)).toEqual(['open', 'open', 'open', busy, busy]);
    expect(waiting[3]!.written).toMatch(/\r\nRetry-After: 1\r\nConnection: close\r\n/);
    expect(d.state.waiting).toBe(3);
    const a = new FakeWorker('a');
    d.workerReady(a);
    expect(a.got.map((g) => g.socket.name)).toEqual(['w0', 'w1', 'w2']);
    for (const { id } of a.got) d.answered(id, true);
    d.workerGone(a);
    const late = sock('late');
    d.connection(late);
    expect(d.state.waiting).toBe(1);
    d.stop();
    // a client that connected while every worker was loading or restarting is told why, not reset
    const stopping = 'HTTP/1.1 503 Service Unavailable FACEOPT_ERR_SHUTTING_DOWN';
    expect(late.fate).toBe(stopping);
    const afterStop = sock('after-stop');
    d.connection(afterStop);
    expect(afterStop.fate).toBe(stopping);
    d.workerReady(new FakeWorker('b')); // no worker takes connections once stopped
    expect(d.state.ready).toBe(0);
  });
});

describe('Dispatcher bookkeeping', () => {
  it('a hand-off that timed out here, then was taken late and closed, does not make its worker look emptier than it is', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const { d, a, b } = twoReadyWorkers();
      d.connection(sock('slow')); // to a (first in turn)
      expect(a.got.map((g) => g.socket.name)).toEqual(['slow']);
      vi.advanceTimersByTime(HANDOFF_TIMEOUT_MS + 1); // closed here unanswered
      d.connection(sock('kept')); // to b, which takes it: b holds one connection
      d.answered(b.got[0]!.id, true);
      // a's late receipt for 'slow' (no longer pending here), then the close of that connection in a
      d.answered(a.got[0]!.id, true);
      d.closed(a);
      // a holds nothing, b one: the next goes to a; then they are even and b is next in turn
      d.connection(sock('n1'));
      d.connection(sock('n2'));
      expect(a.got.map((g) => g.socket.name)).toEqual(['slow', 'n1']);
      expect(b.got.map((g) => g.socket.name)).toEqual(['kept', 'n2']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a settled hand-off leaves no timer behind (one per connection would pile up for HANDOFF_TIMEOUT_MS)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const { d, a, b } = twoReadyWorkers();
      for (let i = 0; i < 4; i++) d.connection(sock(`c${i}`));
      expect(vi.getTimerCount()).toBe(4);
      for (const { id } of [...a.got, ...b.got]) d.answered(id, true);
      expect(d.state.pending).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a worker that says it is ready twice is listed once: once it refuses as stopping it gets nothing more', () => {
    const d = new Dispatcher<FakeWorker>();
    const a = new FakeWorker('a');
    const b = new FakeWorker('b');
    d.workerReady(a);
    d.workerReady(a);
    d.workerReady(b);
    expect(d.state.ready).toBe(2);
    d.connection(sock('s'));
    expect(a.got.map((g) => g.socket.name)).toEqual(['s']);
    d.answered(a.got[0]!.id, false, true);
    for (let i = 0; i < 4; i++) d.connection(sock(`t${i}`));
    expect(a.got).toHaveLength(1);
    expect(b.got.map((g) => g.socket.name)).toEqual(['s', 't0', 't1', 't2', 't3']);
    expect(d.state.ready).toBe(1);
  });
});

describe('Dispatcher: refusals, undelivered hand-offs and throwing sends (mutation audit)', () => {
  it('a worker that refuses without stopping (a failed receive) stays ready for later connections', () => {
    const { d, a, b } = twoReadyWorkers();
    d.connection(sock('s'));
    d.answered(a.got[0]!.id, false); // to a (first in turn), refused: handed to b
    expect(b.got.map((g) => g.socket.name)).toEqual(['s']);
    expect(d.state.ready).toBe(2);
    d.connection(sock('t'));
    expect(a.got.map((g) => g.socket.name)).toEqual(['s', 't']);
  });

  it('a channel that drops a hand-off (NACK) costs only that worker\'s oldest pending one a try', () => {
    const { d, a, b } = twoReadyWorkers();
    const sockets = ['a1', 'b1', 'a2', 'b2'].map(sock);
    for (const s of sockets) d.connection(s);
    expect(a.got.map((g) => g.socket.name)).toEqual(['a1', 'a2']);
    const tries = () => sockets.map((s) => [...a.got, ...b.got].filter((g) => g.socket === s).length);
    d.notReceived(b); // b's oldest is b1, though a1 is older
    expect(tries()).toEqual([1, 2, 1, 1]);
    d.notReceived(a); // a's oldest, a1, and nothing else of a's
    expect(tries()).toEqual([2, 2, 1, 1]);
    expect(sockets.some((s) => s.destroyed)).toBe(false);
    expect(d.state.pending).toBe(4);
  });

  it('a send that throws (instead of calling back) takes the worker out and hands the connection to another', () => {
    const d = new Dispatcher<HandoffTarget & FakeWorker>();
    const thrower = Object.assign(new FakeWorker('thrower'), {
      send(): boolean { throw new Error('ERR_IPC_CHANNEL_CLOSED'); },
    });
    const live = new FakeWorker('live');
    d.workerReady(thrower);
    d.workerReady(live);
    const s = sock('s');
    d.connection(s);
    expect(live.got.map((g) => g.socket.name)).toEqual(['s']);
    expect(d.state).toEqual({ ready: 1, pending: 1, waiting: 0 });
  });
});
