/**
 * Back-pressure: a bounded number of requests is admitted at once (the rest get 503 with a Retry-After
 * estimated from recent service times, instead of a queue that grows until memory runs out), each
 * admitted request runs against a deadline, and a small semaphore bounds how many photos are decoded
 * ahead of the detector (decoded pixels are the big allocation).
 */
import { FaceoptError } from '../pipeline/errors.js';
import type { Deadline } from './batcher.js';

/** Counting semaphore; acquire resolves with a release function (idempotent). */
export class Semaphore {
  private used = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(readonly size: number) {}

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  async acquire(): Promise<() => void> {
    if (this.used < this.size) this.used++;
    else await new Promise<void>((resolve) => this.waiters.push(resolve)); // the releaser hands its slot over
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.used--;
    };
  }
}

/** A FACEOPT_ERR_TIMEOUT when the deadline has passed. */
export function checkDeadline(deadline: Deadline | null): void {
  if (deadline && performance.now() > deadline.at) throw new FaceoptError('FACEOPT_ERR_TIMEOUT', { ms: deadline.ms });
}

export interface AdmissionHooks {
  onAdmitted?: (n: number) => void;
  onRejected?: (reason: 'overloaded') => void;
}

/** Bounded admission with deadlines. */
export class Admission {
  private admitted = 0;
  /** Exponentially weighted mean request time in ms, for Retry-After. */
  private meanMs = 50;

  constructor(readonly maxQueue: number, readonly timeoutMs: number, private readonly hooks: AdmissionHooks = {}) {}

  get inflight(): number {
    return this.admitted;
  }

  /** Seconds a refused client should wait: the time to work off the queue at the recent pace, 1..60. */
  retryAfterS(): number {
    return Math.min(60, Math.max(1, Math.ceil((this.admitted * this.meanMs) / 1000)));
  }

  /**
   * Run `work` as one admitted request: FACEOPT_ERR_OVERLOADED (with retryAfter) when maxQueue requests
   * are in already, FACEOPT_ERR_TIMEOUT when it is not done by the deadline. The slot is held until the
   * work really settles (a timed-out request's stages stop at their next deadline check), so the bound
   * holds even for abandoned work.
   */
  async run<T>(work: (deadline: Deadline) => Promise<T>): Promise<T> {
    if (this.admitted >= this.maxQueue) {
      this.hooks.onRejected?.('overloaded');
      throw new FaceoptError('FACEOPT_ERR_OVERLOADED', { depth: this.maxQueue, retryAfter: this.retryAfterS() });
    }
    this.admitted++;
    this.hooks.onAdmitted?.(this.admitted);
    const t0 = performance.now();
    const deadline: Deadline = { at: t0 + this.timeoutMs, ms: this.timeoutMs };
    let p: Promise<T>;
    try {
      p = work(deadline);
    } catch (e) {
      p = Promise.reject(e);
    }
    const settled = p.then(() => undefined, () => undefined).then(() => {
      this.admitted--;
      this.meanMs = 0.8 * this.meanMs + 0.2 * (performance.now() - t0);
      this.hooks.onAdmitted?.(this.admitted);
    });
    void settled;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      // counted where the 503 is answered (app.ts), with the timeouts found inside the work
      timer = setTimeout(() => {
        reject(new FaceoptError('FACEOPT_ERR_TIMEOUT', { ms: this.timeoutMs }));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when no request is admitted (graceful shutdown). */
  async drained(pollMs = 20): Promise<void> {
    while (this.admitted > 0) await new Promise((r) => setTimeout(r, pollMs));
  }
}
