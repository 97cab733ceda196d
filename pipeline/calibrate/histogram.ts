/**
 * Bounded-memory streaming histograms of activation values, the raw material of the percentile and
 * entropy collectors.
 *
 * The problem: calibration streams batches, and a later batch can exceed the range seen so far.
 * ONNX Runtime's HistogramCollector re-bins with `np.histogram` over a widened range (approximate for
 * the old counts, and its |x| variant grows the bin count without bound); NVIDIA's pytorch-quantization
 * appends bins of the old width (unbounded memory). A two-pass scheme (min/max first, histogram
 * second) is exact but runs the float model twice.
 *
 * Our choice: a fixed number of bins `bins` whose common width is always a power of two, chosen as the
 * smallest power of two with `amax < bins * width`. When a batch exceeds the covered range, the width
 * doubles and neighbouring bins are merged pairwise, which is exact (bin edges stay aligned) and costs
 * O(bins). Because `x / width` is exact for a power-of-two width, the final histogram depends only on
 * the multiset of values, never on how they were split into batches: streaming equals one-shot bit
 * for bit. The price is resolution: the values' own amax lands between `bins/2` and `bins` bins, so
 * the default is 4096 bins: at least 2048 bins then cover [0, amax], never coarser than TensorRT's
 * and ORT's 2048 bins over the same span (memory: 2 x 4096 doubles = 64 KiB per tensor).
 *
 * Signs are kept apart (`positive`/`negative` magnitude histograms sharing one width), so both the
 * |x| histogram (symmetric methods, TensorRT's entropy search) and a signed histogram (ORT's
 * asymmetric percentile) can be derived from one collection.
 */
import { FaceoptError } from '../errors.js';

/**
 * Default number of bins per sign: 4096, so that at least 2048 cover [0, amax] (TensorRT and ORT use
 * 2048 bins over exactly [0, amax]; our power-of-two widths cover up to 2 x amax).
 */
export const DEFAULT_HISTOGRAM_BINS = 4096;

/**
 * Serialisable histogram. Bin `i` of `positive` counts values `x` with `i*w <= x < (i+1)*w` (exact
 * zeros land in `positive[0]`); bin `i` of `negative` counts `x < 0` with `i*w <= -x < (i+1)*w`.
 * Arrays are trimmed after their last non-empty bin, so `positive.length <= bins`.
 * `binWidth` is 0 only when every value seen was 0 (then `positive = [count]`, `negative = []`).
 */
export interface HistogramData {
  /** Capacity in bins per sign (the collector's `bins` setting). */
  bins: number;
  /** Common width of every bin: a power of two, or 0 while only zeros were seen. */
  binWidth: number;
  positive: number[];
  negative: number[];
}

/** Throw unless `bins` is an even integer in [16, 1<<20]: pairwise merging needs an even count. */
export function checkBins(bins: number): number {
  if (!Number.isInteger(bins) || bins < 16 || bins > 1 << 20 || bins % 2 !== 0) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: 'an even integer between 16 and 1048576', name: 'histogram bins', received: String(bins),
    });
  }
  return bins;
}

/**
 * Smallest power of two `w` with `amax < bins * w`, i.e. the narrowest aligned width under which
 * `amax` still falls inside the last bin. Exact for any finite positive float32 `amax`.
 */
export function powerOfTwoWidth(amax: number, bins: number): number {
  const r = amax / bins;
  let w = 2 ** (Math.floor(Math.log2(r)) + 1);
  while (w <= r) w *= 2; // guard against log2 rounding at exact powers of two
  while (w / 2 > r) w /= 2;
  return w;
}

/**
 * A streaming |x| histogram split by sign, with power-of-two bin widths that double (merging bins
 * pairwise) when the range grows. Memory is `2 * bins` doubles regardless of how much data is seen.
 */
export class StreamingHistogram {
  readonly bins: number;
  private width = 0;
  private inv = 0;
  private pos: Float64Array;
  private neg: Float64Array;
  /** Zeros seen while no non-zero value fixed a width yet. */
  private pendingZeros = 0;

  constructor(bins: number = DEFAULT_HISTOGRAM_BINS) {
    this.bins = checkBins(bins);
    this.pos = new Float64Array(bins);
    this.neg = new Float64Array(bins);
  }

  /** Current bin width (0 until a non-zero value was seen). */
  get binWidth(): number {
    return this.width;
  }

  /**
   * Add a batch, computing its amax first (one extra pass). NaN and ±Infinity are skipped. Use this
   * when you do not already know the batch's amax; collectors use `addWithAmax`.
   */
  add(data: ArrayLike<number>): void {
    let amax = 0;
    let nonFinite = false;
    for (let i = 0; i < data.length; i++) {
      const a = Math.abs(data[i]);
      if (a === Infinity || a !== a) nonFinite = true;
      else if (a > amax) amax = a;
    }
    this.addWithAmax(data, amax, nonFinite);
  }

  /**
   * Add a batch whose largest finite |x| is `amax` (the collector computes it together with min/max
   * in one pass). `hasNonFinite` must be true when the batch holds NaN or ±Infinity, which are then
   * skipped (slower loop). Passing a too-small `amax` is a caller bug and throws.
   */
  addWithAmax(data: ArrayLike<number>, amax: number, hasNonFinite = false): void {
    if (amax > 0) this.cover(amax);
    const n = data.length;
    if (this.width === 0) { // only zeros so far (and in this batch)
      for (let i = 0; i < n; i++) if (data[i] === 0) this.pendingZeros++;
      return;
    }
    const { pos, neg, inv, bins } = this;
    if (Math.floor(amax * inv) >= bins) {
      throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `histogram amax ${amax} not covered` });
    }
    if (!hasNonFinite) {
      for (let i = 0; i < n; i++) {
        const v = data[i];
        // `| 0` truncates like floor here: the index is >= 0 and < bins (amax is covered)
        if (v >= 0) pos[(v * inv) | 0]++;
        else neg[(-v * inv) | 0]++;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v >= 0) { if (v !== Infinity) pos[(v * inv) | 0]++; }
        else if (v < 0 && v !== -Infinity) neg[(-v * inv) | 0]++;
      }
    }
  }

  /** Grow (or first set) the width so that `amax` falls inside the last bin. */
  private cover(amax: number): void {
    if (this.width === 0) {
      this.setWidth(powerOfTwoWidth(amax, this.bins));
      this.pos[0] += this.pendingZeros;
      this.pendingZeros = 0;
      return;
    }
    while (Math.floor(amax * this.inv) >= this.bins) this.doubleWidth();
  }

  private setWidth(w: number): void {
    this.width = w;
    this.inv = 1 / w; // exact: w is a power of two
  }

  /** Merge bins pairwise: bin j at width 2w is exactly bins 2j and 2j+1 at width w. */
  private doubleWidth(): void {
    for (const h of [this.pos, this.neg]) {
      const half = this.bins / 2;
      for (let j = 0; j < half; j++) h[j] = h[2 * j] + h[2 * j + 1];
      h.fill(0, half);
    }
    this.setWidth(this.width * 2);
  }

  /** Add another histogram's counts (e.g. from a parallel worker); widths are aligned first. */
  merge(other: HistogramData): void {
    const o = StreamingHistogram.fromData(other);
    if (o.bins !== this.bins) {
      throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `cannot merge histograms of ${o.bins} and ${this.bins} bins` });
    }
    if (o.width === 0) { this.addZeros(o.pendingZeros); return; }
    if (this.width === 0) {
      const zeros = this.pendingZeros;
      this.width = o.width; this.inv = o.inv; this.pos = o.pos; this.neg = o.neg; this.pendingZeros = 0;
      this.addZeros(zeros);
      return;
    }
    while (o.width < this.width) o.doubleWidth();
    while (this.width < o.width) this.doubleWidth();
    for (let i = 0; i < this.bins; i++) { this.pos[i] += o.pos[i]; this.neg[i] += o.neg[i]; }
  }

  private addZeros(n: number): void {
    if (this.width === 0) this.pendingZeros += n; else this.pos[0] += n;
  }

  /** Total number of finite values counted. */
  total(): number {
    let t = this.pendingZeros;
    for (let i = 0; i < this.bins; i++) t += this.pos[i] + this.neg[i];
    return t;
  }

  /** Serialisable copy, trimmed after the last non-empty bin of each sign. */
  toData(): HistogramData {
    if (this.width === 0) {
      return { bins: this.bins, binWidth: 0, positive: this.pendingZeros > 0 ? [this.pendingZeros] : [], negative: [] };
    }
    return { bins: this.bins, binWidth: this.width, positive: trimmed(this.pos), negative: trimmed(this.neg) };
  }

  /** Rebuild a histogram from its serialised form (validated: see `checkHistogramData`). */
  static fromData(d: HistogramData): StreamingHistogram {
    const problem = checkHistogramData(d);
    if (problem) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `bad histogram: ${problem}` });
    const h = new StreamingHistogram(d.bins);
    if (d.binWidth === 0) {
      h.pendingZeros = d.positive[0] ?? 0;
      return h;
    }
    h.setWidth(d.binWidth);
    h.pos.set(d.positive);
    h.neg.set(d.negative);
    return h;
  }
}

function trimmed(h: Float64Array): number[] {
  let end = h.length;
  while (end > 0 && h[end - 1] === 0) end--;
  return Array.from(h.subarray(0, end));
}

/**
 * Why `d` is not a valid HistogramData, or null when it is. Used by the stats loader so a hand-edited
 * or truncated artifact is refused with a reason instead of producing nonsense ranges.
 */
export function checkHistogramData(d: unknown): string | null {
  if (typeof d !== 'object' || d === null) return 'not an object';
  const h = d as Partial<HistogramData>;
  if (typeof h.bins !== 'number' || !Number.isInteger(h.bins) || h.bins < 16 || h.bins % 2 !== 0) return 'bins must be an even integer >= 16';
  if (typeof h.binWidth !== 'number' || !(h.binWidth >= 0) || !Number.isFinite(h.binWidth)) return 'binWidth must be a finite number >= 0';
  if (h.binWidth > 0 && 2 ** Math.round(Math.log2(h.binWidth)) !== h.binWidth) return 'binWidth must be a power of two';
  for (const key of ['positive', 'negative'] as const) {
    const a = h[key];
    if (!Array.isArray(a)) return `${key} must be an array`;
    if (a.length > h.bins) return `${key} has ${a.length} bins, more than ${h.bins}`;
    if (!a.every((c) => typeof c === 'number' && Number.isInteger(c) && c >= 0)) return `${key} counts must be integers >= 0`;
  }
  if (h.binWidth === 0 && ((h.negative as number[]).length > 0 || (h.positive as number[]).length > 1)) {
    return 'a zero-width histogram may only hold zeros';
  }
  return null;
}

/**
 * The |x| histogram: `positive[i] + negative[i]` per bin, trimmed. This is what TensorRT's entropy
 * calibration and ORT's symmetric percentile work on.
 */
export function magnitudeCounts(d: HistogramData): Float64Array {
  const n = Math.max(d.positive.length, d.negative.length);
  const out = new Float64Array(n);
  for (let i = 0; i < d.positive.length; i++) out[i] += d.positive[i];
  for (let i = 0; i < d.negative.length; i++) out[i] += d.negative[i];
  return out;
}

/**
 * The signed histogram laid out left to right, ORT-style: `counts[k]` covers
 * `[lo + k*w, lo + (k+1)*w)` with `lo = -n*w`, `n = negative.length`; the first `n` bins are the
 * negative magnitudes reversed, the rest the positive ones. Edges are `lo + k*w`.
 */
export function signedCounts(d: HistogramData): { lo: number; binWidth: number; counts: Float64Array } {
  const n = d.negative.length;
  const counts = new Float64Array(n + d.positive.length);
  for (let i = 0; i < n; i++) counts[n - 1 - i] = d.negative[i];
  counts.set(d.positive, n);
  return { lo: -n * d.binWidth, binWidth: d.binWidth, counts };
}
