/**
 * Give the memory of large decoded photos back promptly. sharp hands each decoded photo to JavaScript as
 * an external buffer (a 3000x3000 photo: 27 MB outside V8's heap); V8 frees it only at its next full
 * garbage collection, and with a small heap that can be long after the request ended. Measured with
 * `npm run bench:hostile` (2,000 hostile requests, 28 of them such photos): the event-loop thread's
 * external memory stayed at 110-135 MiB after the traffic and RSS at 1.26-1.57x its level before,
 * while one full collection brought external memory to 9 MiB and RSS back to 0.98x.
 *
 * So the service reports each large decode here; a full collection runs once no large decode has come
 * for `quietMs`, or sooner when `forceBytes` have piled up, and never more often than every
 * `minIntervalMs` (a full collection of this server's heap takes milliseconds). Photos below
 * `largeBytes` are left to V8's own schedule: they are what it handles well.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

export interface ReclaimOptions {
  /** A decode at least this large (decoded bytes) counts (default 4 MiB, ~1.4 megapixels). */
  largeBytes: number;
  /** Collect once this long has passed without another large decode (default 1000 ms). */
  quietMs: number;
  /** Collect without waiting for quiet once this many large bytes wait (default 256 MiB). */
  forceBytes: number;
  /** Never collect more often than this (default 1000 ms). */
  minIntervalMs: number;
}

const DEFAULTS: ReclaimOptions = { largeBytes: 4 << 20, quietMs: 1000, forceBytes: 256 << 20, minIntervalMs: 1000 };

/** V8's full collection as a function (`--expose-gc` switched on at run time), or null where that fails. */
export function fullGc(): (() => void) | null {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

export class MemoryReclaimer {
  private pending = 0;
  private lastRun = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private readonly opts: ReclaimOptions;
  /** Collections run so far. */
  runs = 0;

  constructor(private readonly gc: (() => void) | null, opts: Partial<ReclaimOptions> = {}, private readonly onRun?: (freedHint: number) => void) {
    this.opts = { ...DEFAULTS, ...opts };
  }

  /** A photo of `bytes` decoded bytes was decoded (its buffer becomes garbage when the request ends). */
  noteDecoded(bytes: number): void {
    if (!this.gc || bytes < this.opts.largeBytes) return;
    this.pending += bytes;
    this.schedule(this.pending >= this.opts.forceBytes ? 0 : this.opts.quietMs);
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(delayMs, this.lastRun + this.opts.minIntervalMs - performance.now());
    this.timer = setTimeout(() => this.run(), wait);
    this.timer.unref();
  }

  private run(): void {
    this.timer = null;
    if (!this.gc || this.pending === 0) return;
    const bytes = this.pending;
    this.pending = 0;
    this.lastRun = performance.now();
    this.runs++;
    this.gc();
    this.onRun?.(bytes);
  }

  /** Stop the pending timer (shutdown). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
