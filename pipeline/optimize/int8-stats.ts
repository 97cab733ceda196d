/**
 * `optimize --int8`'s calibration stats: a reused `--stats` file (its ranges re-chosen from its
 * histograms where another method or percentile is asked), or every activation's statistics collected
 * on the calibration inputs and saved (`--stats FILE`, else the report folder's stats.json).
 */
import path from 'node:path';
import type { OnnxModel } from '../onnx/model.js';
import { activationTensors, collectActivationStats, distinctSamples, sampleCount, type InputBatch } from '../calibrate/run.js';
import { createStats, hashImageList, rechooseRanges, saveStats, statsFor, type CalibrationStats } from '../calibrate/stats.js';
import { resolveSettings } from '../calibrate/collectors.js';
import { countProgress } from '../progress.js';
import type { Int8Options } from './int8.js';

/** Seeded N(0,1)-ish input batches for graphs that are not face models. */
export function* syntheticBatches(dims: number[], count: number): Generator<InputBatch> {
  let s = 7;
  for (let b = 0; b < count; b++) {
    const n = dims.reduce((a, c) => a * c, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const u = (s + 1) / 2 ** 32;
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      data[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos((2 * Math.PI * s) / 2 ** 32);
    }
    yield { data, dims };
  }
}

/** Every item of a (possibly async) iterable, in order. */
export async function collect<T>(it: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export interface StatsStep {
  o: Int8Options;
  /** True when the user gave --percentile (a reused file's ranges are then re-chosen at it). */
  percentileGiven: boolean;
  /** The --stats file's contents when it exists (checked against the model already). */
  reused: CalibrationStats | null;
  role: 'recognizer' | 'detector' | 'generic';
  /** The prepared float graph and its sha256 (what the stats describe). */
  prepared: OnnxModel;
  preparedSha: string;
  /** The photos the stats come from (the held-apart slice excluded). */
  statsImages: readonly string[];
  /** The photos folder, unset for a generic model (calibrated on synthetic inputs). */
  photosDir?: string;
  description?: string;
  /** Aligned recognizer crops kept in memory, or null when inputs are streamed by `input`. */
  statsBatches: InputBatch[] | null;
  input: () => AsyncIterable<InputBatch> | Iterable<InputBatch>;
  reportDir: string;
  /** performance.now() when calibration began (for the log line). */
  startedAt: number;
  warnings: string[];
  log: (line: string) => void;
}

/** The calibration stats of this run and the file they are saved in. */
export async function int8Stats(c: StatsStep): Promise<{ stats: CalibrationStats; statsFile: string }> {
  const { o, role, log, warnings } = c;
  if (c.reused && o.statsFile) {
    // a method or percentile asked for on the command line re-chooses the ranges from the file's
    // histograms (they were ignored: the file's own ranges were used whatever was asked)
    const method = o.methodGiven ? o.method : c.reused.method;
    let stats = statsFor(c.reused, o.statsFile, {
      modelSha256: c.preparedSha, method,
      ...(role === 'generic' ? {} : { source: { images: c.statsImages.length, listSha256: hashImageList(c.statsImages) } }),
      tensors: activationTensors(c.prepared),
    });
    const settings = { ...stats.settings, ...(c.percentileGiven ? { percentile: o.collector!.percentile! } : {}) };
    if (method !== stats.method || (method === 'percentile' && settings.percentile !== stats.settings.percentile)) {
      const from = `${stats.method}${stats.method === 'percentile' ? ` ${stats.settings.percentile}` : ''}`;
      stats = rechooseRanges(stats, method, settings);
      // the re-chosen stats are saved beside the report, so its stats path and sha256 name the same bytes
      let rechosen = path.join(c.reportDir, 'stats.json');
      if (path.resolve(rechosen) === path.resolve(o.statsFile)) rechosen = path.join(c.reportDir, `stats.${method}.json`);
      await saveStats(rechosen, stats);
      const note = `calibration ranges re-chosen by ${method}${method === 'percentile' ? ` ${settings.percentile}` : ''} from the histograms of ${o.statsFile} (collected as ${from}), saved as ${rechosen}`;
      warnings.push(note);
      log(`calibration: reusing ${o.statsFile} (${Object.keys(stats.tensors).length} tensors): ${note}`);
      return { stats, statsFile: rechosen };
    }
    log(`calibration: reusing ${o.statsFile} (${Object.keys(stats.tensors).length} tensors, method ${stats.method})`);
    return { stats, statsFile: o.statsFile };
  }
  if (!o.facesDir && role !== 'generic') {
    // it used to log "0 images (undefined)" and go on; the gates then fail for want of faces to compare
    const why = `a ${role} calibrated on synthetic N(0,1) inputs instead of faces: its int8 ranges will not fit real photos; pass --faces DIR (and --calibration-list FILE) to calibrate on ${role === 'recognizer' ? 'aligned faces' : 'photos'}`;
    warnings.push(why);
    log(`warning: ${why}`);
  }
  log(`calibration: ${!c.photosDir ? '16 synthetic batches (N(0,1) inputs)' : `${c.statsImages.length} images (${c.description})`}, method ${o.method}`);
  // pre-aligned recognizer crops get their own bar (detector frames report while they stream)
  const bar = c.statsBatches ? countProgress('calibrating', sampleCount(c.statsBatches), { silent: o.quiet }) : null;
  const tensors = await collectActivationStats(c.prepared, c.input(), {
    method: o.method, settings: o.collector, threads: o.threads,
    onProgress: bar ? (d) => bar.update(d) : undefined,
  });
  bar?.done();
  const stats = createStats({
    modelSha256: c.preparedSha, method: o.method, settings: resolveSettings(o.collector),
    source: { description: c.description ?? 'synthetic N(0,1) inputs', images: c.statsImages.length, listSha256: hashImageList(c.statsImages), ...(c.statsBatches ? { faces: distinctSamples(c.statsBatches) } : {}) },
    tensors,
  });
  const statsOut = o.statsFile ?? path.join(c.reportDir, 'stats.json');
  const ts = performance.now();
  await saveStats(statsOut, stats);
  log(`calibration: ${Object.keys(tensors).length} tensors collected in ${((ts - c.startedAt) / 1000).toFixed(1)} s since the start of calibration; stats saved in ${((performance.now() - ts) / 1000).toFixed(1)} s (${statsOut})`);
  return { stats, statsFile: statsOut };
}
