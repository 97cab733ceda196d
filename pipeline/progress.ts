/**
 * Progress for long counted work (calibration images, evaluation photos) on stderr: a bar redrawn in
 * place on a terminal, a line every 10% otherwise, nothing when silenced.
 */
export interface CountProgress {
  update(done: number, extra?: string): void;
  done(extra?: string): void;
}

/** A progress reporter for `total` items labelled `label`. */
export function countProgress(label: string, total: number, opts: { silent?: boolean; stream?: NodeJS.WriteStream } = {}): CountProgress {
  const out = opts.stream ?? process.stderr;
  if (opts.silent) return { update() {}, done() {} };
  const start = Date.now();
  let lastStep = -1;
  let lastDraw = 0;
  const line = (done: number, extra?: string) => {
    const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    const secs = ((Date.now() - start) / 1000).toFixed(1);
    return `${label} ${done}/${total} (${pct}%) ${secs}s${extra ? ` ${extra}` : ''}`;
  };
  return {
    update(done, extra) {
      if (out.isTTY) {
        if (Date.now() - lastDraw < 100 && done < total) return;
        lastDraw = Date.now();
        const width = 24;
        const filled = total > 0 ? Math.round((done / total) * width) : width;
        out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line(done, extra)}\x1b[K`);
      } else {
        const step = total > 0 ? Math.floor((done / total) * 10) : 10;
        if (step !== lastStep) { lastStep = step; out.write(`${line(done, extra)}\n`); }
      }
    },
    done(extra) {
      if (out.isTTY) out.write(`\r${line(total, extra)}\x1b[K\n`);
      else if (lastStep !== 10) out.write(`${line(total, extra)}\n`);
    },
  };
}
