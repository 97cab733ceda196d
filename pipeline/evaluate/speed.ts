/**
 * Speed of a reference and a variant model measured side by side in one process: the two take turns in
 * blocks of runs so background load hits both alike. The speed-up a reviewer reads is the median of the
 * per-block ratios (each pair of blocks timed back to back, in the same phase of the host), not the ratio
 * of the medians over all runs: when the host's pace moves between blocks, pooled medians can pair a
 * reference timing from one phase with a variant timing from another (README command, 2026-12-06 07:10:
 * pooled 3.78x where its two blocks read 4.03x and 4.26x).
 *
 * Blocks, with a pause before each: after a run, onnxruntime's intra-op threads keep spinning for about
 * 40 ms (measured: ~1 core busy for 35-40 ms after the last mobileface run, then idle), and the model's
 * weights fill the caches. Alternating run by run timed every run against the other session's spinning
 * threads (mobileface, 2 cores, 2026-12-05: FP32 batch 1 12-19 ms against 7.0 ms alone, batch 8 76 ms
 * against 46 ms); blocks without the pause still timed the INT8 model at 4.4-4.7 ms against 3.1 ms
 * alone. So each block starts after a pause longer than the spinning, and its first runs are untimed.
 */
import { createSession, floatTensor, runSession, type Session, type SessionOptions } from '../runtime.js';
import { latencySummary, speedup, type LatencySummary } from './metrics.js';
import { percentile } from './stats.js';
import { firstBatchLabel } from '../report/summary.js';
import type { ModelSpeed, SpeedResults } from '../report/types.js';

/** Deterministic input in [-1, 1) so both models see the same data. */
function input(n: number): Float32Array {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; a[i] = (s / 2 ** 32) * 2 - 1; }
  return a;
}

async function timed(session: Session, dims: number[]): Promise<() => Promise<number>> {
  const feeds = { [session.inputNames[0]!]: floatTensor(input(dims.reduce((a, b) => a * b, 1)), dims) };
  for (let i = 0; i < 2; i++) await runSession(session, feeds);
  return async () => { const t0 = performance.now(); await runSession(session, feeds); return performance.now() - t0; };
}

/** Timed runs per block, untimed runs at its start, and the pause before it (see above). */
export const SPEED_BLOCK = { runs: 10, settle: 2, pauseMs: 60 } as const;

/** Timed runs per model and batch size in reports: three blocks, so the speed-up is a median of three. */
export const SPEED_RUNS = 3 * SPEED_BLOCK.runs;

/**
 * Time two runners in turns: blocks of `SPEED_BLOCK.runs` timed runs each, every block after a pause of
 * `SPEED_BLOCK.pauseMs` and `SPEED_BLOCK.settle` untimed runs, until each has `runs` timings.
 */
export async function timeInBlocks(a: () => Promise<number>, b: () => Promise<number>, runs: number): Promise<[number[], number[]]> {
  const [ta, tb] = await timeInTurns([a, b], runs);
  return [ta!, tb!];
}

/** timeInBlocks for any number of runners, taking turns in the order given. */
export async function timeInTurns(runners: readonly (() => Promise<number>)[], runs: number): Promise<number[][]> {
  const times = runners.map((): number[] => []);
  while (times[0]!.length < runs) {
    const n = Math.min(SPEED_BLOCK.runs, runs - times[0]!.length);
    for (let k = 0; k < runners.length; k++) {
      await new Promise((resolve) => setTimeout(resolve, SPEED_BLOCK.pauseMs));
      for (let i = 0; i < SPEED_BLOCK.settle; i++) await runners[k]!();
      for (let i = 0; i < n; i++) times[k]!.push(await runners[k]!());
    }
  }
  return times;
}

/** A runner for timeInTurns: one run of `session` on deterministic input of `dims`, after two untimed ones. */
export const timedRunner = timed;

/** Reference median / variant median for each pair of blocks timeInBlocks made, in order. */
export function blockSpeedups(ta: readonly number[], tb: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ta.length; i += SPEED_BLOCK.runs) {
    out.push(speedup(latencySummary(ta.slice(i, i + SPEED_BLOCK.runs)), latencySummary(tb.slice(i, i + SPEED_BLOCK.runs))));
  }
  return out;
}

/**
 * The speed-up of a side-by-side measurement: the median of the per-block ratios (the mean of the middle
 * two for an even count); with no blocks, reference p50 / variant p50 over all runs.
 */
export function pairedSpeedup(blocks: readonly number[], reference: LatencySummary, variant: LatencySummary): number {
  return blocks.length > 0 ? percentile(blocks, 50) : speedup(reference, variant);
}

/**
 * Times of several runners timed in turns (timeInTurns), made comparable the way pairedSpeedup makes a
 * speed-up: each runner's time is the first runner's p50 over all its runs divided by the runner's
 * paired speed-up over it (the median of the per-block ratios). The first runner keeps its own p50. When
 * the host's pace moves between rounds, every runner's timings fall in two clusters and a median over all
 * runs lands in the gap between them, where a few outliers decide it; each round's blocks run back to
 * back, so their ratios do not see the move.
 */
export function pairedTimes(times: readonly (readonly number[])[]): number[] {
  const first = latencySummary([...times[0]!]);
  return times.map((t, k) => (k === 0 ? first.p50Ms : first.p50Ms / pairedSpeedup(blockSpeedups(times[0]!, t), first, latencySummary([...t]))));
}

/** Below this speed-up at every measured batch size the report warns that the variant is not faster. */
export const NOT_FASTER_BELOW = 1.05;

/**
 * The batch the speed results' `batch1` row is timed at: 1, or the batch both models fix when their batch
 * is not dynamic (a model exported as [4, 3, 112, 112] refuses any other batch).
 */
export function firstTimedBatch(dims: readonly number[], batch8: boolean): number {
  return !batch8 && (dims[0] ?? 1) > 1 ? dims[0]! : 1;
}

/**
 * A warning for the report when the variant is not faster than the reference at any measured batch
 * size (SCRFD-500M INT8 on a 2-core EPYC: 0.98x), so a reviewer does not promote it for speed; null
 * otherwise. The `batch1` row is named by the batch it was timed at (`batch1TimedAt`), so a fixed-batch-4
 * model's warning says "at batch 4", not a batch 1 that never ran.
 */
export function notFasterWarning(s: Pick<SpeedResults, 'speedup' | 'batch1TimedAt'>, sizeRatio: number | null = null): string | null {
  const measured: [string, number][] = [[firstBatchLabel(s), s.speedup.batch1]];
  if (s.speedup.batch8 !== null) measured.push(['batch 8', s.speedup.batch8]);
  if (measured.some(([, x]) => x >= NOT_FASTER_BELOW)) return null;
  // a variant whose file is no smaller (a TensorRT fp16/fp32 bundle's ONNX graph, evaluated on a CPU)
  // saves nothing here: say so instead of claiming a file-size saving
  const saves = sizeRatio !== null && sizeRatio > 0.9 ? `neither time nor file size (${sizeRatio.toFixed(2)}x the file)` : 'file size only';
  return `the variant is not faster than the reference on this machine (${measured.map(([b, x]) => `${x.toFixed(2)}x at ${b}`).join(', ')}): here it saves ${saves}; time it on the serving hardware before choosing it for speed`;
}

export interface SpeedInput {
  reference: string;
  variant: string;
  /** Input dims at batch 1, e.g. [1, 3, 112, 112]. */
  dims: number[];
  /** Whether the graphs accept batch 8 (dynamic batch). */
  batch8: boolean;
  runs?: number;
  session?: SessionOptions;
  note?: string | null;
}

/** Latency at batch 1 (and 8), session start time and the resident memory after each model ran. */
export async function measureSpeed(o: SpeedInput): Promise<SpeedResults> {
  const runs = o.runs ?? 30;
  const open = async (file: string) => {
    const t0 = performance.now();
    const s = await createSession(file, o.session);
    return { s, startMs: performance.now() - t0 };
  };
  const ref = await open(o.reference);
  const vari = await open(o.variant);
  try {
    const measure = async (batch: number) => {
      const dims = [batch, ...o.dims.slice(1)];
      const a = await timed(ref.s, dims);
      const b = await timed(vari.s, dims);
      const [ta, tb] = await timeInBlocks(a, b, runs);
      return [latencySummary(ta), latencySummary(tb), blockSpeedups(ta, tb)] as const;
    };
    // a model exported with a fixed batch refuses batch 1: its "batch 1" row is timed at that batch
    const first = firstTimedBatch(o.dims, o.batch8);
    const fixedBatch = first > 1 ? first : null;
    const [r1, v1, blocks1] = await measure(first);
    const b8 = o.batch8 ? await measure(8) : null;
    const rss = process.memoryUsage().rss;
    const speed = (l1: typeof r1, l8: typeof r1 | null, startMs: number): ModelSpeed => ({ batch1: l1, batch8: l8, sessionStartMs: startMs, peakMemoryBytes: rss });
    return {
      executionProvider: o.session?.provider ?? 'cpu',
      threads: o.session?.intraOpThreads ?? null,
      reference: speed(r1, b8?.[0] ?? null, ref.startMs),
      variant: speed(v1, b8?.[1] ?? null, vari.startMs),
      speedup: { batch1: pairedSpeedup(blocks1, r1, v1), batch8: b8 ? pairedSpeedup(b8[2], b8[0], b8[1]) : null },
      blockSpeedups: { batch1: blocks1, batch8: b8?.[2] ?? null },
      ...(fixedBatch ? { batch1TimedAt: fixedBatch } : {}),
      note: (fixedBatch ? `both models fix a batch of ${fixedBatch}, so the batch-1 row is timed at batch ${fixedBatch}; ` : '') + (o.note ?? `the two models take turns in ${runs > SPEED_BLOCK.runs ? `blocks of ${SPEED_BLOCK.runs} timed runs` : `one block of ${runs} timed run${runs === 1 ? '' : 's'}`} (each after a ${SPEED_BLOCK.pauseMs} ms pause and ${SPEED_BLOCK.settle} untimed runs); the speed-up is the median of the per-block ratios, the latencies are over all runs; peak memory is the process RSS with both sessions loaded`),
    };
  } finally {
    await ref.s.release();
    await vari.s.release();
  }
}
