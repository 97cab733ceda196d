/**
 * Download progress on stderr. On a terminal it is one bar redrawn in place (at most ten times a
 * second); in a log or CI (not a TTY) it prints a plain line at every 10 %, so logs stay short and
 * readable. stdout is left alone: it carries the command's result.
 */

/** The bits of a stream the reporter uses; process.stderr fits, and so does a test double. */
export interface ProgressSink {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface Progress {
  /** Report `received` bytes of `total` (null when the server sent no length). */
  update(received: number, total: number | null): void;
  /** Finish the display (final line / newline). */
  done(): void;
  /** The download failed: end a half-drawn bar so the error starts on its own line. */
  interrupt(): void;
}

const MB = 1024 * 1024;

function mb(bytes: number): string {
  return (bytes / MB).toFixed(1);
}

/** A reporter that prints nothing (for --no-progress and library callers). */
export const silentProgress: Progress = { update() {}, done() {}, interrupt() {} };

/**
 * Make a progress reporter for one download labelled `label`, writing to `sink` (default stderr). The
 * clock is injectable so tests can check the output without waiting.
 */
export function createProgress(label: string, sink: ProgressSink = process.stderr, now: () => number = Date.now): Progress {
  const start = now();
  let lastDraw = -Infinity;
  let lastStep = -1;
  let lastMb = 0;
  let received = 0;
  let total: number | null = null;

  const rate = (): string => {
    const secs = Math.max((now() - start) / 1000, 1e-3);
    return `${mb(received / secs)} MB/s`;
  };

  const drawTty = (): void => {
    const width = Math.max(10, Math.min(30, (sink.columns ?? 80) - label.length - 40));
    let line: string;
    if (total && total > 0) {
      const frac = Math.min(received / total, 1);
      const filled = Math.round(frac * width);
      line = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(frac * 100).toFixed(1).padStart(5)}%  ${mb(received)}/${mb(total)} MB  ${rate()}`;
    } else {
      line = `${label} ${mb(received)} MB  ${rate()}`;
    }
    sink.write(`\r${line}\x1b[K`);
  };

  return {
    update(r, t) {
      received = r;
      total = t;
      if (sink.isTTY) {
        const at = now();
        if (at - lastDraw >= 100) { lastDraw = at; drawTty(); }
        return;
      }
      if (total && total > 0) {
        const step = Math.floor((received / total) * 10);
        if (step > lastStep && step < 10) {
          lastStep = step;
          sink.write(`${label}: ${step * 10}% (${mb(received)} of ${mb(total)} MB)\n`);
        }
      } else if (received - lastMb >= 10 * MB) {
        lastMb = received;
        sink.write(`${label}: ${mb(received)} MB\n`);
      }
    },
    done() {
      const secs = ((now() - start) / 1000).toFixed(1);
      if (sink.isTTY) {
        drawTty();
        sink.write('\n');
      } else {
        sink.write(`${label}: 100% (${mb(received)} MB in ${secs} s)\n`);
      }
    },
    interrupt() {
      if (sink.isTTY && lastDraw > -Infinity) sink.write('\n');
    },
  };
}
