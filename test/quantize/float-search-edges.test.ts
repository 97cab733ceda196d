/**
 * Mutation audit of the mixed-precision search helpers (pipeline/quantize/mixed.ts, prefix.ts): the
 * boundaries and small cases a hand-made mutation survived. Plain numbers in, plain numbers out, plus one
 * onnxruntime run for the per-sample output split.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { createSession } from '../../pipeline/runtime.js';
import { defaultTargetCosine, meanCosine, outputsPerSample, quantizeToTarget, rankingBatches, searchPrefix, searchTarget } from '../../pipeline/quantize/mixed.js';
import { collectActivationStats } from '../../pipeline/calibrate/run.js';
import { chooseFloatSuffix, fastestShortest, floatPrefixCandidates, floatSuffixCandidates, PREFIX_TIE } from '../../pipeline/quantize/prefix.js';
import { seededFloats } from '../onnx/compare.js';
import { convPreluConv, convPreluConvBatches } from './mixed-fixture.js';
import { tinyModel } from '../onnx/tiny.js';

describe('mixed precision targets', () => {
  it('default target cosine by model role', () => {
    expect([defaultTargetCosine('recognizer'), defaultTargetCosine('detector'), defaultTargetCosine('generic')]).toEqual([0.995, 0.998, 0.99]);
  });
  it('the aimed cosine is target + margin, at most 1, and a zero margin logs nothing', () => {
    const lines: string[] = [];
    expect(searchTarget('recognizer', {}, 'slice', (l) => lines.push(l))).toEqual({ target: 0.995, margin: 0.001, aimed: 0.996 });
    expect(lines).toEqual(['mixed precision: target 0.995 + margin 0.001 for the slice = 0.9960']);
    expect(searchTarget('generic', { targetCosine: 0.9995, targetMargin: 0.002 }, 'slice', () => undefined).aimed).toBe(1);
    const none: string[] = [];
    expect(searchTarget('detector', { targetMargin: 0 }, 'slice', (l) => none.push(l))).toEqual({ target: 0.998, margin: 0, aimed: 0.998 });
    expect(none).toEqual([]);
  });
});

describe('meanCosine', () => {
  it('two all-zero outputs agree (1), a zero against a non-zero one does not (0), no samples give 0', () => {
    const z = new Float32Array(3);
    const v = Float32Array.from([1, 2, 2]);
    expect(meanCosine([z], [z])).toBe(1);
    expect(meanCosine([z], [v])).toBe(0);
    expect(meanCosine([v, z], [v, v])).toBeCloseTo(0.5, 12);
    expect(meanCosine([], [])).toBe(0);
  });
});

describe('searchPrefix boundaries', () => {
  const run = (cos: number[], target: number) => searchPrefix(cos.length - 1, target, async (i) => cos[i]!);
  it('a prefix whose cosine equals the target meets it', async () => {
    expect(await run([0.9, 0.95, 0.99, 0.995], 0.99)).toBe(2);
  });
  it('out of reach, the longest prefix wins when it is the best', async () => {
    expect(await run([0.9, 0.95, 0.96, 0.98], 0.99)).toBe(3);
  });
});

describe('rankingBatches', () => {
  it('whole batches until 8 samples: two batches of 4, not a third', () => {
    const b = (n: number, tag: number) => ({ data: new Float32Array(n).fill(tag), dims: [n, 1] });
    expect(rankingBatches([b(4, 1), b(4, 2), b(4, 3)]).map((x) => x.data[0])).toEqual([1, 2]);
    expect(rankingBatches([b(5, 1), b(2, 2), b(4, 3), b(1, 4)]).map((x) => x.data[0])).toEqual([1, 2, 3]);
  });
});

describe('outputsPerSample', () => {
  it('splits every output of a batch per sample and joins one sample\'s outputs in output order', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [2, 3] }, outputs: ['r', 'n'],
      nodes: [makeNode('Relu', ['x'], ['r'], 'relu'), makeNode('Neg', ['x'], ['n'], 'neg')],
    });
    const s = await createSession(m.toBytes());
    try {
      const out = await outputsPerSample(s, [{ data: Float32Array.from([1, -2, 3, -4, 5, -6]), dims: [2, 3] }]);
      expect(out.map((o) => Array.from(o))).toEqual([[1, 0, 3, -1, 2, -3], [0, 5, 0, 4, -5, 6]]);
    } finally {
      await s.release();
    }
  });
});

describe('fastestShortest', () => {
  it('a candidate exactly PREFIX_TIE slower than the fastest counts as tied; 0.04 slower does not', () => {
    expect(fastestShortest([1 + PREFIX_TIE, 1])).toBe(0);
    expect(fastestShortest([1.04, 1])).toBe(1);
  });
});

describe('quantizeToTarget ranking', () => {
  const model = convPreluConv; // as in mixed.test.ts
  const batches = convPreluConvBatches;
  const calibrated = async () => {
    const m = model();
    const stats = await collectActivationStats(m, batches(10, 2), { method: 'minmax' });
    return { m, ranges: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const)) };
  };

  it('ranks most sensitive first and keeps a prefix of that ranking', async () => {
    const { m, ranges } = await calibrated();
    const r = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice: batches(50, 2), target: 1.5, maxFloat: 3 });
    const metrics = r.ranked!.map((c) => c.metric);
    expect(metrics.length).toBeGreaterThan(3);
    expect(metrics).toEqual([...metrics].sort((a, b) => b - a));
    expect(metrics[0]).toBeGreaterThan(metrics.at(-1)!);
    expect(r.keptFloat.map((k) => k.layer)).toEqual(r.ranked!.slice(0, r.keptFloat.length).map((c) => c.name));
  });

  it('leave-one-out ranking measures every candidate itself: sensitivities of an earlier (alone) search are not reused', async () => {
    const { m, ranges } = await calibrated();
    const slice = batches(50, 2);
    const first = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 1.5, maxFloat: 1 });
    const bogus = first.ranked!.map((c) => ({ ...c, metric: 42 }));
    const r = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 1.5, maxFloat: 1, ranking: 'leave-one-out', sensitivities: bogus });
    expect(r.ranked!.length).toBe(bogus.length);
    for (const c of r.ranked!) expect(c.metric).not.toBe(42);
  });

  it('chooseFloatSuffix has nothing to choose after a search that missed its target, even when a float tail would meet it', async () => {
    const { m, ranges } = await calibrated();
    const slice = batches(50, 1);
    const target = 0.99999;
    const missed = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target, maxFloat: 1 });
    expect(missed.met).toBe(false);
    // a "tail" that keeps the whole graph float meets any target below 1
    const all = { strided: 1, border: 'conv1', floatTensors: ['x', ...m.graph.nodes.flatMap((n) => n.output ?? [])], layers: m.graph.nodes.map((n) => n.name ?? '') };
    expect((await quantizeToTarget({ floatModel: m, ranges, options: { floatTensors: all.floatTensors }, slice, target, maxFloat: 1 })).met).toBe(true);
    const none = { strided: 0, border: null, floatTensors: [], layers: [] };
    expect(await chooseFloatSuffix(missed, [none, all], { floatModel: m, ranges, options: {}, slice, target, dims: [1, 4, 12, 12], runs: 2 })).toBeNull();
  });

  it('maxFloat 0: nothing is measured or kept float', async () => {
    const { m, ranges } = await calibrated();
    const lines: string[] = [];
    const r = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice: batches(50, 2), target: 1.5, maxFloat: 0, log: (l) => lines.push(l) });
    expect(r.ranked).toBeNull();
    expect(r.sensitivity).toBeNull();
    expect(r.keptFloat).toEqual([]);
    expect(lines.join('\n')).not.toMatch(/measuring the sensitivity/);
  });

  it('per-tensor weights: the slope conv (one weight per channel) is ranked, per channel it is exact and skipped', async () => {
    const { m, ranges } = await calibrated();
    const weights = async (perChannel: boolean) => {
      const r = await quantizeToTarget({ floatModel: m, ranges, options: { perChannel }, slice: batches(50, 2), target: 1.5, maxFloat: 1 });
      expect(r.keptFloat.length).toBeLessThanOrEqual(1); // at most maxFloat, even with the target out of reach
      return r.ranked!.filter((c) => c.kind === 'weights').map((c) => c.name);
    };
    expect(await weights(true)).not.toContain('prelu_mul_neg');
    expect(await weights(false)).toContain('prelu_mul_neg');
  });
});

describe('float prefix and suffix candidates', () => {
  const conv = (x: string, w: string, y: string, name: string, strides = [1, 1], domain = '') =>
    makeNode('Conv', [x, w], [y], name, { kernel_shape: [1, 1], strides }, domain);
  const graph = (nodes: ReturnType<typeof makeNode>[], outputs: string[]) => tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 4, 8, 8] }, outputs, nodes,
    initializers: ['w1', 'w2', 'w3'].map((name) => ({ name, dims: [4, 4, 1, 1], data: seededFloats(16, 1) })),
  }).graph;

  it('a prefix must leave a standard-domain weighted layer after it: a Conv of another domain does not count', () => {
    const g = graph([conv('x', 'w1', 'a', 's', [2, 2]), conv('a', 'w2', 'y', 'custom', [1, 1], 'com.example')], ['y']);
    expect(floatPrefixCandidates(g).map((c) => c.border)).toEqual([null]);
    const std = graph([conv('x', 'w1', 'a', 's', [2, 2]), conv('a', 'w2', 'y', 'plain')], ['y']);
    expect(floatPrefixCandidates(std).map((c) => c.border)).toEqual([null, 's']);
  });

  it('the suffix keeps the strided conv\'s own Relu or Clip with it, but not one it shares or one that reads something else', () => {
    const tail = (g: ReturnType<typeof graph>) => floatSuffixCandidates(g)[1]!.layers;
    // Relu right after: stays with s
    expect(tail(graph([conv('x', 'w1', 'a', 's', [2, 2]), makeNode('Relu', ['a'], ['r'], 'relu'), conv('r', 'w2', 'y', 'head')], ['y']))).toEqual(['head']);
    // Clip right after: the same
    expect(tail(graph([conv('x', 'w1', 'a', 's', [2, 2]), makeNode('Clip', ['a'], ['r'], 'clip'), conv('r', 'w2', 'y', 'head')], ['y']))).toEqual(['head']);
    // s's output also read by another node: the Relu goes with the float tail
    expect(tail(graph([conv('x', 'w1', 'a', 's', [2, 2]), makeNode('Relu', ['a'], ['r'], 'relu'), conv('r', 'w2', 'y', 'head'), conv('a', 'w3', 'z', 'side')], ['y', 'z']))).toEqual(['relu', 'head', 'side']);
    // the next node is a Relu of something else: it is part of the tail
    expect(tail(graph([conv('x', 'w1', 'a', 's', [2, 2]), makeNode('Relu', ['x'], ['r'], 'relu'), conv('a', 'w2', 'y', 'head'), conv('r', 'w3', 'z', 'side')], ['y', 'z']))).toEqual(['relu', 'head', 'side']);
  });
});
