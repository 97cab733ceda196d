import { describe, expect, it } from 'vitest';
import { collectActivationStats } from '../../pipeline/calibrate/run.js';
import { pruneKept, quantizeToTarget, searchPrefix } from '../../pipeline/quantize/mixed.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { convPreluConv, convPreluConvBatches } from './mixed-fixture.js';

const model = convPreluConv;
const batches = convPreluConvBatches;

const calibrated = async () => {
  const m = model();
  const stats = await collectActivationStats(m, batches(10, 4), { method: 'minmax' });
  return { m, ranges: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const)) };
};

describe('quantizeToTarget (mixed precision)', () => {
  it('reuses the sensitivities of an earlier search (the float suffix search): same ranking, same result, nothing measured', async () => {
    const { m, ranges } = await calibrated();
    const slice = batches(50, 3);
    const first = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 0.99999, maxFloat: 3 });
    expect(first.ranked!.length).toBeGreaterThan(0);
    const lines: string[] = [];
    const again = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 0.99999, maxFloat: 3, sensitivities: first.ranked!, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/reusing the measured sensitivities/);
    expect(lines.join('\n')).not.toMatch(/sensitivities measured in/);
    expect(again.ranked).toEqual(first.ranked);
    expect(again.keptFloat).toEqual(first.keptFloat);
    expect(again.cosine).toBe(first.cosine);
  });

  it('skips what int8 holds exactly, keeps the best prefix, and reports an unreachable target as not met', async () => {
    const { m, ranges } = await calibrated();
    const lines: string[] = [];
    // above 1: out of reach even when the float tensors leave the whole graph float
    const r = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice: batches(50, 3), target: 1.5, maxFloat: 3, log: (l) => lines.push(l) });
    expect(r.met).toBe(false);
    expect(r.cosine).toBeGreaterThanOrEqual(r.cosineAllInt8);
    expect(r.cosineAllInt8).toBeGreaterThan(0.9);
    expect(r.keptFloat.length).toBeLessThanOrEqual(3);
    // Relu(+-x) halves share their input's grid, depthwise 1x1 weights are exact per channel: not ranked
    expect(quantizeModel(m, ranges).result.exactActivations.sort()).toEqual(['prelu_neg', 'prelu_pos']);
    const ranked = r.sensitivity!.map((s) => s.layer);
    expect(ranked.some((l) => /prelu_(pos|neg)$/.test(l))).toBe(false);
    expect(ranked.some((l) => /prelu_(pos_conv|neg_conv|mul_neg) \(weights\)/.test(l))).toBe(false);
    expect(ranked).toContain('conv2 (weights)');
    // a weight ranked alone is really quantized (its input is float only because nothing else is int8)
    expect(r.sensitivity!.find((x) => x.layer === 'conv2 (weights)')!.metric).toBeGreaterThan(0);
    expect(lines.join('\n')).toMatch(/\(5 exact in int8, skipped\)/);
  });

  it('a reachable target: bisection keeps a prefix where the cosine crosses it, measuring fewer prefixes', async () => {
    const { m, ranges } = await calibrated();
    const slice = batches(50, 3);
    // the cosine of every prefix, from the search that measures them all (target out of reach)
    const lines: string[] = [];
    const full = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 1.5, maxFloat: 8, log: (l) => lines.push(l) });
    const prefix = new Map([...lines.join('\n').matchAll(/(\d+) kept float \(up to [^)]*\) -> output cosine ([\d.]+)/g)].map((x) => [Number(x[1]), Number(x[2])]));
    const n = Math.max(...prefix.keys());
    expect(prefix.size).toBe(n);
    const top = prefix.get(n)!;
    expect(top).toBeGreaterThan(full.cosineAllInt8);
    // a target just below the longest prefix's cosine is reachable
    const target = (full.cosineAllInt8 + top) / 2;
    const bisected: string[] = [];
    const r = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target, maxFloat: 8, log: (l) => bisected.push(l) });
    expect(r.met).toBe(true);
    const k = r.keptFloat.length;
    // the log prints five decimals
    expect(prefix.get(k)! + 5e-6).toBeGreaterThanOrEqual(target);
    expect(k === 1 || prefix.get(k - 1)! < target + 5e-6).toBe(true);
    const measuredPrefixes = bisected.filter((l) => / kept float \(up to /.test(l)).length;
    expect(measuredPrefixes).toBeLessThanOrEqual(Math.ceil(Math.log2(n)) + 1);
  });

  it('pruning returns kept-float candidates the target does not need to int8, and still meets it', async () => {
    const { m, ranges } = await calibrated();
    const slice = batches(50, 3);
    const full = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 1.5, maxFloat: 8 });
    const target = (full.cosineAllInt8 + full.cosine) / 2;
    const plain = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target, maxFloat: 8 });
    const pruned: string[] = [];
    const r = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target, maxFloat: 8, prune: true, log: (l) => pruned.push(l) });
    expect(r.met).toBe(true);
    expect(r.cosine).toBeGreaterThanOrEqual(target);
    expect(r.keptFloat.length).toBeLessThanOrEqual(plain.keptFloat.length);
    // what it kept is a subset of the prefix, in the prefix's order
    const prefix = plain.keptFloat.map((k) => k.layer);
    expect(r.keptFloat.map((k) => k.layer).every((l) => prefix.includes(l))).toBe(true);
    expect(pruned.join('\n')).toMatch(new RegExp(`pruning returned ${plain.keptFloat.length - r.keptFloat.length} of ${plain.keptFloat.length} to int8 in ${plain.keptFloat.length} trials`));
  });

  it('returns the all-int8 graph untouched when it already meets the target', async () => {
    const { m, ranges } = await calibrated();
    const r = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice: batches(50, 2), target: 0.5 });
    expect(r.met).toBe(true);
    expect(r.keptFloat).toEqual([]);
    expect(r.sensitivity).toBeNull();
  });
});

describe('pruneKept', () => {
  // additive losses: each candidate costs its loss when int8; the float set is what is passed
  const loss: Record<string, number> = { a: 0.004, b: 0.0001, c: 0.003, d: 0, e: 0.0002 };
  const cos = (float: readonly string[]) => 1 - Object.keys(loss).filter((k) => !float.includes(k)).reduce((s, k) => s + loss[k]!, 0);
  it('returns to int8 every candidate the target does not need, least sensitive first, one trial each', async () => {
    const asked: string[][] = [];
    const kept = await pruneKept(['a', 'c', 'e', 'b', 'd'], 0.9995, async (rest) => { asked.push([...rest]); return cos(rest); });
    expect(kept).toEqual(['a', 'c']);
    expect(cos(kept)).toBeGreaterThanOrEqual(0.9995);
    expect(asked.length).toBe(5);
    // d first (least sensitive), a last
    expect(asked[0]).toEqual(['a', 'c', 'e', 'b']);
  });
  it('keeps everything when every candidate is needed', async () => {
    expect(await pruneKept(['a', 'c'], 0.9999, async (rest) => cos(rest))).toEqual(['a', 'c']);
  });
});

describe('searchPrefix (shared by --int8 and --tensorrt)', () => {
  const run = async (cos: number[], target: number) => {
    const asked: number[] = [];
    const k = await searchPrefix(cos.length - 1, target, async (i) => { asked.push(i); return cos[i]!; });
    return { k, asked };
  };
  it('finds the first prefix that reaches the target in about log2(n) measurements', async () => {
    const cos = Array.from({ length: 33 }, (_, i) => 0.9 + i * 0.003); // 0.900 .. 0.996, rising
    const { k, asked } = await run(cos, 0.95);
    expect(k).toBe(17); // 0.951
    expect(cos[k - 1]!).toBeLessThan(0.95);
    expect(new Set(asked).size).toBeLessThanOrEqual(Math.ceil(Math.log2(32)) + 1);
  });
  it('keeps the best prefix (the shortest on ties) when the target is out of reach', async () => {
    expect((await run([0.90, 0.95, 0.97, 0.96, 0.97], 0.99)).k).toBe(2);
  });
  it('returns 0 when nothing is to be searched', async () => {
    expect((await run([0.9], 0.99)).k).toBe(0);
  });
});
