import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { collectActivationStats, type InputBatch } from '../../pipeline/calibrate/run.js';
import { findCuts, modelAfter, nodesAfter, rankingCuts } from '../../pipeline/quantize/cuts.js';
import { outputsPerSample, quantizeToTarget } from '../../pipeline/quantize/mixed.js';
import { exportQdqToTarget } from '../../pipeline/tensorrt/mixed.js';
import { createSession } from '../../pipeline/runtime.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const conv = (x: string, w: string, b: string, y: string, name: string) => makeNode('Conv', [x, w, b], [y], name, { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });

// conv1 -> relu -> conv2 -> add(conv2, relu) -> conv3 -> transpose there and back -> conv4:
// the skip connection crosses c2, the first transpose's output does not hold the batch first
const model = () => tinyModel({
  opset: 13, input: { name: 'x', shape: ['N', 4, 10, 10] }, outputs: ['y'],
  nodes: [
    conv('x', 'w1', 'b1', 'c1', 'conv1'),
    makeNode('Relu', ['c1'], ['r1'], 'relu'),
    conv('r1', 'w2', 'b2', 'c2', 'conv2'),
    makeNode('Add', ['c2', 'r1'], ['a'], 'add'),
    conv('a', 'w3', 'b3', 'c3', 'conv3'),
    makeNode('Transpose', ['c3'], ['t'], 'to_cnhw', { perm: [1, 0, 2, 3] }),
    makeNode('Transpose', ['t'], ['u'], 'to_nchw', { perm: [1, 0, 2, 3] }),
    conv('u', 'w4', 'b4', 'y', 'conv4'),
  ],
  initializers: [
    { name: 'w1', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b1', dims: [8], data: seededFloats(8, 2) },
    { name: 'w2', dims: [8, 8, 3, 3], data: seededFloats(576, 3) }, { name: 'b2', dims: [8], data: seededFloats(8, 4) },
    { name: 'w3', dims: [8, 8, 3, 3], data: seededFloats(576, 5) }, { name: 'b3', dims: [8], data: seededFloats(8, 6) },
    { name: 'w4', dims: [6, 8, 3, 3], data: seededFloats(432, 7) }, { name: 'b4', dims: [6], data: seededFloats(6, 8) },
  ],
});
const batches = (seed: number, n: number, size = 4): InputBatch[] => Array.from({ length: n }, (_, i) => ({ data: seededFloats(size * 4 * 100, seed + i), dims: [size, 4, 10, 10] }));
/** The model with min/max ranges from three batches, and a slice of three other batches to rank on. */
async function calibrated() {
  const m = model();
  const stats = await collectActivationStats(m, batches(10, 3), { method: 'minmax' });
  return { m, ranges: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const)), slice: batches(50, 3) };
}
const names = (s: Iterable<{ name?: string | null }> | null) => (s ? [...s].map((n) => n.name).sort() : null);

describe('cuts of a float graph (ranking runs only the graph after the tensor it quantizes)', () => {
  it('finds the tensors every path runs through, not one a skip connection crosses or a graph output', () => {
    const g = model().graph;
    expect(names(nodesAfter(g, 'c1'))).toEqual(['add', 'conv2', 'conv3', 'conv4', 'relu', 'to_cnhw', 'to_nchw']);
    expect(names(nodesAfter(g, 'r1'))).toEqual(['add', 'conv2', 'conv3', 'conv4', 'to_cnhw', 'to_nchw']);
    expect(nodesAfter(g, 'c2')).toBeNull(); // add also reads r1
    expect(nodesAfter(g, 'y')).toBeNull();
    expect(nodesAfter(g, 'x')).toBeNull();
    expect(findCuts(g, ['u', 'c2', 'a', 'c1']).map((c) => c.tensor)).toEqual(['c1', 'a', 'u']);
  });

  it('runs the graph after a cut alone on the cut values: the same outputs as the whole graph', async () => {
    const m = model();
    const slice = batches(20, 2);
    const cuts = await rankingCuts(m, ['c1', 'r1', 'a', 't', 'u'], m.graph.nodes, slice);
    // t holds the channels first, so it cannot be fed per batch; conv4 runs after u, the latest cut
    expect(cuts.map((c) => c.tensor)).toEqual(['u', 'a', 'r1', 'c1']);
    expect(cuts[0]!.inputs.map((b) => b.dims)).toEqual([[4, 8, 10, 10], [4, 8, 10, 10]]);
    expect(cuts[0]!.bytes).toBe(8 * 10 * 10 * 4 * 8);
    expect(cuts[1]!.model.graph.nodes.map((n) => n.name)).toEqual(['conv3', 'to_cnhw', 'to_nchw', 'conv4']);
    expect(cuts[1]!.model.graph.initializerNames().sort()).toEqual(['b3', 'b4', 'w3', 'w4']);
    const whole = await createSession(m.toBytes());
    const expected = await outputsPerSample(whole, slice);
    await whole.release();
    for (const c of cuts) {
      const s = await createSession(c.model.toBytes());
      const got = await outputsPerSample(s, c.inputs);
      await s.release();
      expect(got.length).toBe(expected.length);
      // float sums in another order: within 1e-6 of each sample's largest output
      for (let i = 0; i < got.length; i++) {
        const scale = Math.max(...expected[i]!.map(Math.abs));
        for (let j = 0; j < got[i]!.length; j++) expect(Math.abs(got[i]![j]! - expected[i]![j]!)).toBeLessThan(1e-6 * scale);
      }
    }
    expect(() => modelAfter(m, 'c2', [8, 10, 10])).toThrow(/not a cut/);
  });

  it('keeps the latest cuts within the memory budget', async () => {
    const m = model();
    const slice = batches(20, 1);
    const per = 8 * 10 * 10 * 4 * 4;
    expect((await rankingCuts(m, ['c1', 'r1', 'a', 'u'], m.graph.nodes, slice, 2 * per)).map((c) => c.tensor)).toEqual(['u', 'a']);
    expect(await rankingCuts(m, ['c1', 'r1', 'a', 'u'], m.graph.nodes, slice, 0)).toEqual([]);
    // a leading 1 that is not the batch: channels first after a Transpose of an 8-channel tensor is 8,
    // but of a 1-sample batch seen as [1, ...] it passes the probe; batches of 4 reveal it
    const one = tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 4, 10, 10] }, outputs: ['y'],
      nodes: [
        conv('x', 'w1', 'b1', 'c1', 'conv1'),
        makeNode('Transpose', ['c1'], ['t'], 'to_cnhw', { perm: [1, 0, 2, 3] }),
        makeNode('ReduceMean', ['t'], ['m'], 'mean', { axes: [0], keepdims: 1 }),
        makeNode('Relu', ['m'], ['y'], 'relu'),
      ],
      initializers: [{ name: 'w1', dims: [1, 4, 3, 3], data: seededFloats(36, 1) }, { name: 'b1', dims: [1], data: seededFloats(1, 2) }],
    });
    expect((await rankingCuts(one, ['c1', 't', 'm'], one.graph.nodes, batches(20, 1))).map((c) => c.tensor)).toEqual(['c1']);
    // a cut no candidate runs after is not computed
    expect((await rankingCuts(m, ['c1', 'r1', 'a', 'u'], [m.graph.node('conv2')!], slice)).map((c) => c.tensor)).toEqual(['r1']);
  });

  it('ranks candidates from cuts as on the whole graph: same sensitivities, same search result', async () => {
    const { m, ranges, slice } = await calibrated();
    const lines: string[] = [];
    const fromCuts = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 0.99999, maxFloat: 4, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/mixed precision: \d+ cuts of the float graph/);
    const whole = await quantizeToTarget({ floatModel: m, ranges, options: {}, slice, target: 0.99999, maxFloat: 4, cutBytes: 0 });
    expect(fromCuts.ranked!.length).toBeGreaterThan(3);
    expect(fromCuts.ranked!.map((r) => r.name)).toEqual(whole.ranked!.map((r) => r.name));
    for (let i = 0; i < whole.ranked!.length; i++) expect(fromCuts.ranked![i]!.metric).toBeCloseTo(whole.ranked![i]!.metric, 6);
    expect(fromCuts.keptFloat).toEqual(whole.keptFloat);
  });
});

describe('TensorRT Q/DQ ranking from cuts', () => {
  it('ranks each layer alone from the latest cut as on the whole graph: same losses, same float layers', async () => {
    const { m, ranges, slice } = await calibrated();
    const lines: string[] = [];
    const fromCuts = await exportQdqToTarget({ float: m, ranges, slice, target: 0.999999, maxFloat: 4, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/TensorRT Q\/DQ: \d+ cuts? of the float graph/);
    // ranked on whole batches up to 8 samples, as --int8 ranks; the search checks on all 12
    expect(lines.join('\n')).toMatch(/measured on 8 of the 12 inputs/);
    const whole = await exportQdqToTarget({ float: m, ranges, slice, target: 0.999999, maxFloat: 4, cutBytes: 0 });
    expect(whole.sensitivity!.map((s) => s.layer).sort()).toEqual(['conv1', 'conv2', 'conv3', 'conv4']);
    expect(fromCuts.sensitivity!.map((s) => s.layer)).toEqual(whole.sensitivity!.map((s) => s.layer));
    for (let i = 0; i < whole.sensitivity!.length; i++) expect(fromCuts.sensitivity![i]!.cosineLoss).toBeCloseTo(whole.sensitivity![i]!.cosineLoss, 6);
    expect(fromCuts.keptFloat).toEqual(whole.keptFloat);
  });
});
