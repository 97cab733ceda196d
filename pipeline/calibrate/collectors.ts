/**
 * Calibration collectors in one registry. Each graph tensor gets one `TensorCollector` that is fed the
 * tensor's values batch by batch (`Float32Array` straight from onnxruntime) and keeps only bounded
 * state: running min/max/count and, for the histogram methods, a `StreamingHistogram` (2 x 4096
 * doubles). At the end it yields the tensor's stats and the range the method chose.
 *
 * Methods:
 * - `minmax`: the observed [min, max] (ORT MinMaxCalibrater without moving average).
 * - `percentile`: ORT's HistogramCollector percentile (default 99.999, symmetric on |x| by default).
 * - `entropy`: TensorRT's KL-divergence threshold search on the |x| histogram (>= 2048 bins over
 *   [0, amax], 128 levels).
 * - `mse`: the range whose uint8 grid minimises the expected squared error (clipping + rounding) over
 *   the signed histogram.
 * NaN and ±Infinity are not data: they are skipped and counted in `nonFinite`, so one bad image
 * cannot make a range infinite, and the count stays visible in the artifact.
 */
import { FaceoptError } from '../errors.js';
import { DEFAULT_HISTOGRAM_BINS, type HistogramData, StreamingHistogram, checkBins } from './histogram.js';
import {
  DEFAULT_PERCENTILE, DEFAULT_QUANTIZED_BINS, checkPercentile, entropyRange, mseRange, percentileRange,
} from './thresholds.js';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy' | 'mse';

/** Every knob of every collector, typed, with defaults in `DEFAULT_COLLECTOR_SETTINGS`. */
export interface CollectorSettings {
  /** Percentile kept by `percentile` (0, 100]; ORT's default 99.999. */
  percentile: number;
  /** `percentile` on |x| giving [-T, T] clipped to [min, max] (ORT default), else a cut per side. */
  symmetricPercentile: boolean;
  /** Histogram bins per sign (even); 4096, so >= 2048 cover [0, amax] as in TensorRT and ORT. */
  bins: number;
  /** Quantized levels of the entropy search; 128 = int8 magnitudes. */
  quantizedBins: number;
  /** Step between candidate thresholds of the entropy search, in bins (1 = every bin). */
  entropyStride: number;
  /**
   * Keep a histogram under `minmax` too (percentile/entropy always keep one). Off by default: it
   * costs a second pass per batch, and only matters if the stats will be re-thresholded later.
   */
  minmaxHistogram: boolean;
  /**
   * Histograms of activations with more than `SAMPLE_ABOVE` values per batch item are built from every
   * `sampleStride`-th value (a prime, so the sample does not alias with channel or row sizes); min, max
   * and count stay exact (computed in the graph). 1 = every value. Filling histograms with all 20 M
   * activation values of a mobileface face dominated calibration (stats for 268 faces: ~62 s -> ~25 s).
   */
  sampleStride: number;
}

/** Activations with at most this many values per batch item are never sampled. */
export const SAMPLE_ABOVE = 16384;

export const DEFAULT_COLLECTOR_SETTINGS: Readonly<CollectorSettings> = Object.freeze({
  percentile: DEFAULT_PERCENTILE,
  symmetricPercentile: true,
  bins: DEFAULT_HISTOGRAM_BINS,
  quantizedBins: DEFAULT_QUANTIZED_BINS,
  entropyStride: 1,
  minmaxHistogram: false,
  sampleStride: 17,
});

/** What calibration records per tensor; the only contract with the quantizer (via the stats file). */
export interface TensorStats {
  method: CalibrationMethod;
  /** Smallest / largest finite value seen (0 / 0 when none was seen). */
  min: number;
  max: number;
  /** Number of finite values seen. */
  count: number;
  /** Number of NaN / ±Infinity values skipped. */
  nonFinite: number;
  histogram?: HistogramData;
  /** The range the method chose: lo <= hi, inside [min, max]. Zero is NOT forced in (qparams does). */
  range: [number, number];
}

/** One tensor's streaming state. */
export interface TensorCollector {
  /** Feed one batch of the tensor's values (any layout: only the values matter). */
  update(data: ArrayLike<number>): void;
  /**
   * Feed a sample of a batch with the exact min, max and count of the whole batch (computed elsewhere,
   * e.g. in the graph). The histogram sees the sample; min/max/count are exact.
   */
  updateSample(sample: ArrayLike<number>, min: number, max: number, count: number): void;
  /** Stats and chosen range for everything fed so far; may be called more than once. */
  result(): TensorStats;
}

/** A registry entry: how to collect for a method and how to choose a range from collected stats. */
export interface CollectorSpec {
  method: CalibrationMethod;
  /** One line for `--help` and reports. */
  description: string;
  needsHistogram: boolean;
  create(settings: CollectorSettings): TensorCollector;
  /** The range from stats already collected (used for re-thresholding a saved artifact). */
  chooseRange(stats: Pick<TensorStats, 'min' | 'max' | 'histogram'>, settings: CollectorSettings): [number, number];
}

/**
 * Validate and complete partial settings (CLI flags, a stats file) against the defaults; errors name
 * the offending setting.
 */
export function resolveSettings(partial: Partial<CollectorSettings> = {}): CollectorSettings {
  const s: CollectorSettings = { ...DEFAULT_COLLECTOR_SETTINGS, ...partial };
  checkPercentile(s.percentile);
  checkBins(s.bins);
  if (!Number.isInteger(s.quantizedBins) || s.quantizedBins < 2 || s.quantizedBins > s.bins / 2) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `an integer between 2 and ${s.bins / 2}`, name: 'quantizedBins', received: String(s.quantizedBins) });
  }
  if (!Number.isInteger(s.entropyStride) || s.entropyStride < 1) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'an integer >= 1', name: 'entropyStride', received: String(s.entropyStride) });
  }
  if (!Number.isInteger(s.sampleStride) || s.sampleStride < 1) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'an integer >= 1', name: 'sampleStride', received: String(s.sampleStride) });
  }
  if (typeof s.symmetricPercentile !== 'boolean' || typeof s.minmaxHistogram !== 'boolean') {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'booleans', name: 'symmetricPercentile/minmaxHistogram', received: `${s.symmetricPercentile}/${s.minmaxHistogram}` });
  }
  return s;
}

/** Running min/max/count plus an optional histogram: the state shared by all methods. */
class RunningCollector implements TensorCollector {
  private min = Infinity;
  private max = -Infinity;
  private count = 0;
  private nonFinite = 0;
  private readonly hist: StreamingHistogram | null;

  constructor(private readonly spec: CollectorSpec, private readonly settings: CollectorSettings, withHistogram: boolean) {
    this.hist = withHistogram ? new StreamingHistogram(settings.bins) : null;
  }

  update(data: ArrayLike<number>): void {
    let min = this.min;
    let max = this.max;
    let bad = 0;
    const n = data.length;
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (v < min) min = v;
      if (v > max) max = v;
      if (v - v !== 0) bad++; // NaN or ±Infinity
    }
    if (bad > 0) { // recompute over finite values only (rare path)
      min = this.min; max = this.max;
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v - v !== 0) continue;
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    this.min = min;
    this.max = max;
    this.count += n - bad;
    this.nonFinite += bad;
    if (this.hist) {
      const amax = this.count > 0 ? Math.max(Math.abs(min), Math.abs(max)) : 0;
      this.hist.addWithAmax(data, amax, bad > 0);
    }
  }

  updateSample(sample: ArrayLike<number>, min: number, max: number, count: number): void {
    // a non-finite batch min/max means NaN or Infinity somewhere: count and skip them on the sample
    if (!Number.isFinite(min) || !Number.isFinite(max)) { this.update(sample); return; }
    if (count > 0) {
      if (min < this.min) this.min = min;
      if (max > this.max) this.max = max;
      this.count += count;
    }
    if (this.hist) {
      const amax = this.count > 0 ? Math.max(Math.abs(this.min), Math.abs(this.max)) : 0;
      this.hist.addWithAmax(sample, amax, true);
    }
  }

  result(): TensorStats {
    const min = this.count > 0 ? this.min : 0;
    const max = this.count > 0 ? this.max : 0;
    const histogram = this.hist ? this.hist.toData() : undefined;
    const range = this.spec.chooseRange({ min, max, histogram }, this.settings);
    return {
      method: this.spec.method, min, max, count: this.count, nonFinite: this.nonFinite,
      ...(histogram ? { histogram } : {}), range,
    };
  }
}

function needHistogram(method: CalibrationMethod, h: HistogramData | undefined): HistogramData {
  if (!h) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `${method} needs a histogram, and none was collected` });
  return h;
}

/** The registry. Add a method by adding an entry here (and to `CalibrationMethod`). */
export const COLLECTORS: Record<CalibrationMethod, CollectorSpec> = {
  minmax: {
    method: 'minmax',
    description: 'observed minimum and maximum',
    needsHistogram: false,
    create: (settings) => new RunningCollector(COLLECTORS.minmax, settings, settings.minmaxHistogram),
    chooseRange: ({ min, max }) => [min, max],
  },
  percentile: {
    method: 'percentile',
    description: 'clip to a percentile of |x| (default 99.999, as ONNX Runtime)',
    needsHistogram: true,
    create: (settings) => new RunningCollector(COLLECTORS.percentile, settings, true),
    chooseRange: ({ min, max, histogram }, s) =>
      percentileRange(needHistogram('percentile', histogram), min, max, s.percentile, s.symmetricPercentile),
  },
  entropy: {
    method: 'entropy',
    description: 'KL-divergence threshold search over the |x| histogram (TensorRT entropy calibration)',
    needsHistogram: true,
    create: (settings) => new RunningCollector(COLLECTORS.entropy, settings, true),
    chooseRange: ({ min, max, histogram }, s) =>
      entropyRange(needHistogram('entropy', histogram), min, max, s.quantizedBins, s.entropyStride),
  },
  mse: {
    method: 'mse',
    description: 'range minimising the expected squared quantization error (clipping + rounding) on the uint8 grid',
    needsHistogram: true,
    create: (settings) => new RunningCollector(COLLECTORS.mse, settings, true),
    chooseRange: ({ min, max, histogram }) => mseRange(needHistogram('mse', histogram), min, max).range,
  },
};

/** Throw FACEOPT_ERR_BAD_ARGUMENT unless `name` is a registered method. */
export function checkMethod(name: string): CalibrationMethod {
  if (!Object.hasOwn(COLLECTORS, name)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `one of ${Object.keys(COLLECTORS).join(', ')}`, name: 'calibration method', received: name });
  }
  return name as CalibrationMethod;
}

/**
 * Collectors for many tensors at once: the calibration loop calls `update(name, values)` for each
 * exposed tensor of each batch and `results()` at the end. Tensors are reported in first-seen order,
 * which is deterministic for a deterministic image order.
 */
export class CalibrationCollector {
  readonly settings: CollectorSettings;
  private readonly tensors = new Map<string, TensorCollector>();

  constructor(readonly method: CalibrationMethod, settings: Partial<CollectorSettings> = {}) {
    checkMethod(method);
    this.settings = resolveSettings(settings);
  }

  /** Feed one batch of values of tensor `name`. */
  update(name: string, data: ArrayLike<number>): void {
    this.collectorFor(name).update(data);
  }

  /** Feed a sample of one batch of tensor `name` with the batch's exact min, max and count. */
  updateSample(name: string, sample: ArrayLike<number>, min: number, max: number, count: number): void {
    this.collectorFor(name).updateSample(sample, min, max, count);
  }

  private collectorFor(name: string): TensorCollector {
    let c = this.tensors.get(name);
    if (!c) {
      c = COLLECTORS[this.method].create(this.settings);
      this.tensors.set(name, c);
    }
    return c;
  }

  /** Whether the method keeps a histogram (otherwise min/max/count are all it needs). */
  get needsHistogram(): boolean {
    return COLLECTORS[this.method].needsHistogram || (this.method === 'minmax' && this.settings.minmaxHistogram);
  }

  /** Names of the tensors seen so far. */
  tensorNames(): string[] {
    return [...this.tensors.keys()];
  }

  /** Stats and chosen range per tensor. */
  results(): Record<string, TensorStats> {
    const out: Record<string, TensorStats> = {};
    // defineProperty, not assignment: a tensor named "__proto__" must stay a plain entry
    for (const [name, c] of this.tensors) {
      Object.defineProperty(out, name, { value: c.result(), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}

/**
 * Choose a range again for saved stats, with another method or settings, without re-running the
 * model. Needs a stored histogram for `percentile`/`entropy` (FACEOPT_ERR_STATS-worthy otherwise:
 * the caller names the file).
 */
export function rethreshold(stats: TensorStats, method: CalibrationMethod, settings: Partial<CollectorSettings> = {}): TensorStats {
  const spec = COLLECTORS[checkMethod(method)];
  if (spec.needsHistogram && !stats.histogram) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'stats collected with a histogram', name: `stats for ${method}`, received: `${stats.method} stats without one` });
  }
  return { ...stats, method, range: spec.chooseRange(stats, resolveSettings(settings)) };
}
