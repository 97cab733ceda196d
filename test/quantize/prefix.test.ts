import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { chooseFloatPart, chooseFloatSuffix, fastestShortest, floatPrefixCandidates, floatSuffixCandidates, PREFIX_TIE } from '../../pipeline/quantize/prefix.js';
import { quantizeToTarget } from '../../pipeline/quantize/mixed.js';
import { collectActivationStats } from '../../pipeline/calibrate/run.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const DIMS = [1, 3, 32, 32];
// stem (3x3 stride 2) -> dw (3x3 stride 2) -> pw (1x1) -> dw2 (3x3 stride 2) -> head (1x1)
const layers = [
  { name: 'stem', out: 8, group: 1, k: 3, s: 2 },
  { name: 'dw', out: 8, group: 8, k: 3, s: 2 },
  { name: 'pw', out: 16, group: 1, k: 1, s: 1 },
  { name: 'dw2', out: 16, group: 16, k: 3, s: 2 },
  { name: 'head', out: 4, group: 1, k: 1, s: 1 },
];
const model = () => {
  let input = 'x';
  let channels = 3;
  const nodes: ReturnType<typeof makeNode>[] = [];
  const initializers: { name: string; dims: number[]; data: Float32Array }[] = [];
  layers.forEach((l, i) => {
    const dims = [l.out, channels / l.group, l.k, l.k];
    const out = i === layers.length - 1 ? 'y' : `${l.name}_out`;
    nodes.push(makeNode('Conv', [input, `w_${l.name}`, `b_${l.name}`], [`${l.name}_pre`], l.name, { kernel_shape: [l.k, l.k], pads: l.k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0], group: l.group, strides: [l.s, l.s] }));
    nodes.push(makeNode('Relu', [`${l.name}_pre`], [out], `${l.name}_relu`));
    initializers.push({ name: `w_${l.name}`, dims, data: seededFloats(dims.reduce((a, b) => a * b, 1), 2 * i + 1) });
    initializers.push({ name: `b_${l.name}`, dims: [l.out], data: seededFloats(l.out, 2 * i + 2) });
    input = out;
    channels = l.out;
  });
  return tinyModel({ opset: 13, input: { name: 'x', shape: DIMS }, outputs: ['y'], nodes, initializers });
};
const rangesOf = async (m: ReturnType<typeof tinyModel>) => {
  const stats = await collectActivationStats(m, [{ data: seededFloats(DIMS.reduce((a, b) => a * b, 1), 9), dims: DIMS }], { method: 'minmax' });
  return Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const));
};

describe('the float prefix', () => {
  it('candidates: none, then through each strided convolution in graph order, at most the given number', () => {
    const g = model().graph;
    const c = floatPrefixCandidates(g);
    expect(c.map((x) => [x.strided, x.border])).toEqual([[0, null], [1, 'stem'], [2, 'dw'], [3, 'dw2']]);
    expect(c[0]!.floatTensors).toEqual([]);
    // through the stem: the graph input is float (so the stem reads float), its own output is not listed
    expect(c[1]!.floatTensors).toEqual(['x']);
    expect(c[2]!.floatTensors).toEqual(['x', 'stem_pre', 'stem_out']);
    expect(c[2]!.layers).toEqual(['stem', 'stem_relu', 'dw']);
    expect(floatPrefixCandidates(g, 1).map((x) => x.border)).toEqual([null, 'stem']);
  });

  it('quantizing with a candidate keeps the prefix float and hands over to int8 on the strided layer\'s output', async () => {
    const m = model();
    const ranges = await rangesOf(m);
    const c = floatPrefixCandidates(m.graph)[2]!;
    const q = quantizeModel(m, ranges, { floatTensors: c.floatTensors });
    const g = q.model.graph;
    expect(q.result.quantizedNodes).not.toContain('stem');
    expect(q.result.quantizedNodes).not.toContain('dw');
    expect(q.result.quantizedNodes).toEqual(expect.arrayContaining(['pw', 'dw2', 'head']));
    const quantized = g.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input![0]!);
    expect(quantized).toContain('dw_out');
    expect(quantized).not.toContain('stem_out');
    expect(quantized).not.toContain('x');
  });

  it('suffix candidates: none, then float after each of the last strided convolutions, never before the prefix border', async () => {
    const m = model();
    const g = m.graph;
    expect(floatSuffixCandidates(g).map((x) => [x.strided, x.border])).toEqual([[0, null], [1, 'dw2']]); // MAX_SUFFIX_CANDIDATES
    const c = floatSuffixCandidates(g, null, 2);
    expect(c.map((x) => [x.strided, x.border])).toEqual([[0, null], [1, 'dw2'], [2, 'dw']]);
    expect(c[1]!.floatTensors).toEqual(['head_pre', 'y']); // dw2's Relu stays with it
    expect(c[1]!.layers).toEqual(['head', 'head_relu']);
    expect(floatSuffixCandidates(g, 'dw', 2).map((x) => x.border)).toEqual([null, 'dw2']);
    expect(floatSuffixCandidates(g, 'dw2', 2).map((x) => x.border)).toEqual([null]);
    // quantized with the last one: dw2 int8 (its output quantized for the float tail), head float, no Q/DQ on y
    const q = quantizeModel(m, await rangesOf(m), { floatTensors: c[1]!.floatTensors });
    expect(q.result.quantizedNodes).toContain('dw2');
    expect(q.result.quantizedNodes).not.toContain('head');
    expect(q.model.graph.producer('y')?.opType).toBe('Relu'); // a float tail: the output is not quantized
    expect(q.model.graph.consumers('dw2_out').map((n) => n.opType)).toContain('QuantizeLinear');
  });

  it('the fastest candidate wins, the shortest among those within PREFIX_TIE of it', () => {
    expect(fastestShortest([10, 9.8, 9.0, 9.2])).toBe(2);
    expect(fastestShortest([2.33, 2.4, 2.32, 2.5])).toBe(0);
    expect(fastestShortest([7.74, 9.01, 8.64, 6.6, 6.91])).toBe(3);
    expect(fastestShortest([1, 1 + PREFIX_TIE / 2])).toBe(0);
    expect(fastestShortest([1.02, 1])).toBe(0);
    expect(fastestShortest([1.2, 1])).toBe(1);
  });

  it('times every candidate side by side in onnxruntime and returns the one fastestShortest picks', async () => {
    const m = model();
    const ranges = await rangesOf(m);
    const choice = await chooseFloatPart({ floatModel: m, ranges, options: {}, dims: DIMS, runs: 10 });
    expect(choice.timings.map((t) => t.strided)).toEqual([0, 1, 2, 3]);
    for (const t of choice.timings) expect(t.ms).toBeGreaterThan(0);
    expect(choice.chosen.strided).toBe(choice.timings[fastestShortest(choice.timings.map((t) => t.ms))]!.strided);
  });

  it('the float suffix is judged after the search: the tail searched again with its sensitivities reused, both timed', async () => {
    const m = model();
    const ranges = await rangesOf(m);
    const slice = [1, 2, 3, 4].map((k) => ({ data: seededFloats(DIMS.reduce((a, b) => a * b, 1), 20 + k), dims: DIMS }));
    // a target between the all-int8 graph and the best float prefix, so the search ranks and meets it
    const probe = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 2, maxFloat: 8 });
    const target = (probe.cosineAllInt8 + probe.cosine) / 2;
    const searched = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target, maxFloat: 8, sensitivities: probe.ranked! });
    expect(searched.met).toBe(true);
    const candidates = floatSuffixCandidates(m.graph);
    const seen: string[] = [];
    const choice = await chooseFloatSuffix(searched, candidates, { floatModel: m, ranges, options: {}, slice, target, dims: DIMS, runs: 10, onSearched: (c) => seen.push(c.border!) });
    expect(seen).toEqual(['dw2']);
    expect(choice).not.toBeNull();
    expect(choice!.timings.map((t) => t.strided)).toEqual([0, 1]);
    expect(choice!.mixed.met).toBe(true);
    expect(choice!.chosen.strided).toBe(choice!.timings[fastestShortest(choice!.timings.map((t) => t.ms))]!.strided);
    if (choice!.chosen.strided === 1) expect(choice!.mixed.result.quantizedNodes).not.toContain('head');
    // nothing to choose: an unranked search (the all-int8 graph met the target at once) or no candidate
    const easy = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 0 });
    expect(await chooseFloatSuffix(easy, candidates, { floatModel: m, ranges, options: {}, slice, target: 0, dims: DIMS })).toBeNull();
    expect(await chooseFloatSuffix(searched, candidates.slice(0, 1), { floatModel: m, ranges, options: {}, slice, target, dims: DIMS })).toBeNull();
  });
});
