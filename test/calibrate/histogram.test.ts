import { describe, expect, it } from 'vitest';
import {
  StreamingHistogram, checkHistogramData, magnitudeCounts, powerOfTwoWidth, signedCounts,
} from '../../pipeline/calibrate/histogram.js';
import { batches, gaussian } from './random.js';

describe('powerOfTwoWidth', () => {
  it.each([
    [1, 2048, 2 ** -11 * 2], // 1/2048 exactly -> must be strictly larger: 2^-10
    [999, 2048, 0.5],
    [500, 2048, 0.25],
    [50, 2048, 2 ** -5],
    [3e38, 2048, 2 ** 117],
    [1.401298464324817e-45, 2048, 2 ** -159], // 2^-149 / 2^11 = 2^-160 exactly -> next power,
  ])('amax %d over %d bins -> %d', (amax, bins, w) => {
    expect(powerOfTwoWidth(amax, bins)).toBe(w);
    expect(amax < bins * w && amax >= (bins * w) / 2).toBe(true);
  });
});

describe('StreamingHistogram', () => {
  it('bins values by sign with exact power-of-two edges', () => {
    const h = new StreamingHistogram(16);
    h.add(Float32Array.from([0, 0.5, 1, 1.5, -1, -7.9, 7.9]));
    const d = h.toData();
    expect(d.binWidth).toBe(0.5); // 7.9 / 16 = 0.49 -> 0.5
    expect(d.positive).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(d.negative).toEqual([0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(h.total()).toBe(7);
  });

  it('doubles the width and merges pairs exactly when the range grows', () => {
    const h = new StreamingHistogram(16);
    h.add(Float32Array.from([0.1, 0.2, 0.3, -0.3])); // width 2^-5 = 0.03125
    expect(h.binWidth).toBe(0.03125);
    h.add(Float32Array.from([10])); // needs width > 10/16 -> 1: five doublings
    expect(h.binWidth).toBe(1);
    const d = h.toData();
    expect(d.positive).toEqual([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(d.negative).toEqual([1]);
  });

  it('streaming in batches equals one shot, bit for bit, even when later batches grow the range', () => {
    const data = gaussian(50_000, 2, 7);
    data[49_000] = 300; // far outlier arrives late
    data[10] = 1e-6;
    const oneShot = new StreamingHistogram();
    oneShot.add(data);
    const streamed = new StreamingHistogram();
    for (const b of batches(data, [3, 100, 1000, 7000, 40_000])) streamed.add(b);
    expect(streamed.toData()).toEqual(oneShot.toData());
  });

  it('merges histograms collected apart (e.g. by two workers) into the one-shot result', () => {
    const data = gaussian(20_000, 1, 3);
    data[5] = -40;
    const a = new StreamingHistogram();
    a.add(data.subarray(0, 3000));
    const b = new StreamingHistogram();
    b.add(data.subarray(3000));
    a.merge(b.toData());
    const all = new StreamingHistogram();
    all.add(data);
    expect(a.toData()).toEqual(all.toData());
  });

  it('counts zeros before any non-zero value fixes the width, and skips NaN/Infinity', () => {
    const h = new StreamingHistogram(16);
    h.add(new Float32Array(5));
    expect(h.toData()).toEqual({ bins: 16, binWidth: 0, positive: [5], negative: [] });
    h.add(Float32Array.from([NaN, Infinity, -Infinity, 2]));
    const d = h.toData();
    expect(d.positive[0]).toBe(5);
    expect(h.total()).toBe(6);
  });

  it('round-trips through its serialised form', () => {
    const h = new StreamingHistogram(32);
    h.add(gaussian(1000, 1, 9));
    const d = h.toData();
    const back = StreamingHistogram.fromData(JSON.parse(JSON.stringify(d)));
    expect(back.toData()).toEqual(d);
  });

  it('refuses odd or tiny bin counts with a named argument error', () => {
    expect(() => new StreamingHistogram(15)).toThrow(/histogram bins/);
    expect(() => new StreamingHistogram(8)).toThrow(/even integer between 16/);
  });
});

describe('histogram views and validation', () => {
  const d = { bins: 16, binWidth: 0.5, positive: [1, 2], negative: [3, 0, 4] };

  it('magnitudeCounts adds both signs per bin', () => {
    expect(Array.from(magnitudeCounts(d))).toEqual([4, 2, 4]);
  });

  it('signedCounts lays bins left to right from -n*w', () => {
    const s = signedCounts(d);
    expect(s.lo).toBe(-1.5);
    expect(Array.from(s.counts)).toEqual([4, 0, 3, 1, 2]);
  });

  it.each([
    [{ ...d, binWidth: 0.3 }, /power of two/],
    [{ ...d, positive: [1.5] }, /integers/],
    [{ ...d, bins: 17 }, /even integer/],
    [{ ...d, positive: new Array(17).fill(1) }, /more than 16/],
    [{ ...d, binWidth: 0, negative: [1] }, /only hold zeros/],
    [null, /not an object/],
  ])('checkHistogramData names the problem (%#)', (bad, re) => {
    expect(checkHistogramData(bad)).toMatch(re);
  });

  it('accepts a valid histogram', () => {
    expect(checkHistogramData(d)).toBeNull();
  });
});

describe('edge cases found by mutation testing', () => {
  it('a value exactly at bins x width doubles the width (the last bin is open)', () => {
    const h = new StreamingHistogram(16);
    h.add(Float32Array.from([1])); // 1 / 16 -> width 2^-3, covering [0, 2)
    expect(h.binWidth).toBe(0.125);
    h.add(Float32Array.from([2])); // 2 = 16 x 0.125: outside, so the width doubles to 0.25
    const d = h.toData();
    expect(d.binWidth).toBe(0.25);
    expect(d.positive).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(d.negative).toEqual([]); // trimmed to nothing: no negative value was seen
  });

  it('merging a wider histogram into a narrower one widens this one first', () => {
    const a = new StreamingHistogram(16);
    a.add(Float32Array.from([0.1, -0.2])); // width 2^-6
    const b = new StreamingHistogram(16);
    b.add(Float32Array.from([5, -3])); // width 0.5
    a.merge(b.toData());
    const d = a.toData();
    expect(d.binWidth).toBe(0.5);
    expect(d.positive).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // 0.1 in bin 0, 5 in bin 10
    expect(d.negative).toEqual([1, 0, 0, 0, 0, 0, 1]); // -0.2 in bin 0, -3 in bin 6
    const all = new StreamingHistogram(16);
    all.add(Float32Array.from([0.1, -0.2, 5, -3]));
    expect(d).toEqual(all.toData());
  });

  it('merging keeps the zeros of an all-zero histogram, on either side', () => {
    const zeros = new StreamingHistogram(16);
    zeros.add(new Float32Array(3));
    const a = new StreamingHistogram(16);
    a.add(Float32Array.from([1, -1]));
    a.merge(zeros.toData());
    expect(a.total()).toBe(5);
    expect(a.toData().positive[0]).toBe(3);

    const z = new StreamingHistogram(16);
    z.add(new Float32Array(2));
    const b = new StreamingHistogram(16);
    b.add(Float32Array.from([1, -1]));
    z.merge(b.toData());
    expect(z.total()).toBe(4);
    expect(z.toData()).toEqual({ bins: 16, binWidth: 0.125, positive: [2, 0, 0, 0, 0, 0, 0, 0, 1], negative: [0, 0, 0, 0, 0, 0, 0, 0, 1] });
  });

  it('accepts a histogram whose every bin is in use', () => {
    expect(checkHistogramData({ bins: 16, binWidth: 0.5, positive: new Array(16).fill(1), negative: [] })).toBeNull();
  });
});
