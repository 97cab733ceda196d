import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { batchNormsToDepthwise, foldBatchNorms } from '../../pipeline/quantize/rewrites/batchnorm.js';
import { rewritePrelus } from '../../pipeline/quantize/rewrites/prelu.js';
import { equalizeGraph, findEqualizablePairs } from '../../pipeline/quantize/rewrites/equalize.js';
import { collectChannelAmax } from '../../pipeline/calibrate/channels.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const X = { name: 'x', shape: [1, 4, 8, 8] };
const bn = (name: string, c: number, seed: number) => [
  { name: `${name}_g`, dims: [c], data: Array.from(seededFloats(c, seed), (v) => 1 + 0.5 * v) },
  { name: `${name}_b`, dims: [c], data: Array.from(seededFloats(c, seed + 1)) },
  { name: `${name}_m`, dims: [c], data: Array.from(seededFloats(c, seed + 2), (v) => 0.3 * v) },
  { name: `${name}_v`, dims: [c], data: Array.from(seededFloats(c, seed + 3), (v) => 1 + 0.5 * Math.abs(v)) },
];
// slopes on both sides of 0 and 1, as real InsightFace models have (-25 .. 21 in mobileface)
const SLOPES = [-3.5, 0.25, 1.7, 0.02, -0.4, 8, 0.9, 0];

/** Conv(4->8) -> BN -> PRelu -> depthwise Conv -> PRelu -> Conv(8->4, 1x1) */
function block() {
  return tinyModel({
    opset: 13, input: X, outputs: ['out'],
    nodes: [
      makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'conv1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('BatchNormalization', ['c1', 'bn_g', 'bn_b', 'bn_m', 'bn_v'], ['n1'], 'bn1', { epsilon: 1e-5 }),
      makeNode('PRelu', ['n1', 'a1'], ['p1'], 'prelu1'),
      makeNode('Conv', ['p1', 'w2'], ['c2'], 'dw', { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 }),
      makeNode('PRelu', ['c2', 'a2'], ['p2'], 'prelu2'),
      makeNode('Conv', ['p2', 'w3', 'b3'], ['out'], 'project', { kernel_shape: [1, 1] }),
    ],
    initializers: [
      { name: 'w1', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b1', dims: [8], data: seededFloats(8, 2) },
      ...bn('bn', 8, 10),
      { name: 'a1', dims: [8, 1, 1], data: SLOPES }, { name: 'w2', dims: [8, 1, 3, 3], data: seededFloats(72, 3) },
      { name: 'a2', dims: [8, 1, 1], data: [...SLOPES].reverse() },
      { name: 'w3', dims: [4, 8, 1, 1], data: seededFloats(32, 4) }, { name: 'b3', dims: [4], data: seededFloats(4, 5) },
    ],
  });
}

describe('float rewrites keep the function', () => {
  it('folds BatchNormalization after a Conv exactly', async () => {
    const m = block();
    const r = foldBatchNorms(m.clone().graph);
    expect(r.folded.map((f) => f.how)).toEqual(['after-conv']);
    const folded = m.clone();
    foldBatchNorms(folded.graph);
    expect(folded.graph.opHistogram().BatchNormalization).toBeUndefined();
    expect((await maxOutputDiff(m.toBytes(), folded.toBytes(), X.shape as number[])).maxAbs).toBeLessThan(1e-4);
  });
  it('folds BN -> Flatten -> Gemm (IResNet head) exactly', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [2, 4, 3, 3] }, outputs: ['y'],
      nodes: [
        makeNode('BatchNormalization', ['x', 'h_g', 'h_b', 'h_m', 'h_v'], ['n'], 'bn2d'),
        makeNode('Flatten', ['n'], ['f'], 'flatten', { axis: 1 }),
        makeNode('Gemm', ['f', 'fc_w', 'fc_b'], ['y'], 'fc', { transB: 1 }),
      ],
      initializers: [...bn('h', 4, 20), { name: 'fc_w', dims: [5, 36], data: seededFloats(180, 6) }, { name: 'fc_b', dims: [5], data: seededFloats(5, 7) }],
    });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded[0]?.how).toBe('before-gemm');
    expect((await maxOutputDiff(m.toBytes(), f.toBytes(), [2, 4, 3, 3])).maxAbs).toBeLessThan(1e-4);
  });
  it('turns a BatchNorm in front of a padded Conv (IResNet block) into an exact depthwise 1x1 Conv', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('BatchNormalization', ['x', 'p_g', 'p_b', 'p_m', 'p_v'], ['n'], 'pre_bn'),
        makeNode('Conv', ['n', 'w'], ['y'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      ],
      initializers: [...bn('p', 4, 30), { name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 8) }],
    });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toHaveLength(0); // padded: not folded exactly
    expect(batchNormsToDepthwise(f.graph)).toEqual(['pre_bn']);
    expect(f.graph.opHistogram()).toEqual({ Conv: 2 });
    expect((await maxOutputDiff(m.toBytes(), f.toBytes(), X.shape as number[])).maxAbs).toBeLessThan(1e-4);
  });
  for (const form of ['relu-min', 'affine-relu', 'affine-dw', 'sign-dw', 'sign-concat', 'split-relu', 'residual-dw'] as const) {
    it(`PRelu as ${form} is exact for slopes below 0, between 0 and 1, and above 1`, async () => {
      const m = block();
      foldBatchNorms(m.graph);
      const r = m.clone();
      const res = rewritePrelus(r.graph, form);
      expect(res.rewritten).toHaveLength(2);
      expect(r.graph.opHistogram().PRelu).toBeUndefined();
      // sign-concat where the consumer is ungrouped (project), sign-dw where it is depthwise
      if (form === 'sign-concat') expect(r.graph.opHistogram().Concat).toBe(1);
      expect((await maxOutputDiff(m.toBytes(), r.toBytes(), X.shape as number[])).maxAbs).toBeLessThan(1e-4);
    });
  }
  it('residual-dw: one depthwise conv and an Add per PRelu, channels with a slope above 1 negated around it', async () => {
    const m = block();
    foldBatchNorms(m.graph);
    const r = m.clone();
    const res = rewritePrelus(r.graph, 'residual-dw');
    expect(res.fallback).toEqual([]);
    expect(r.graph.opHistogram()).toEqual({ Conv: 5, Relu: 2, Add: 2 });
    // slopes 1.7 and 8 (channels 2 and 5 of prelu1): conv1's rows and dw's weights for them negated
    const w1 = [m.graph.getFloat('w1'), r.graph.getFloat('w1')];
    expect(w1[1]![2 * 36]).toBe(-w1[0]![2 * 36]!);
    expect(w1[1]![0]).toBe(w1[0]![0]!);
    // prelu2 flips the same two channels (its slopes reversed), so dw's weights are negated twice
    expect(r.graph.getFloat('w2')).toEqual(m.graph.getFloat('w2'));
    expect(r.graph.getFloat('w3')[2]).toBe(-m.graph.getFloat('w3')[2]!);
    expect((await maxOutputDiff(m.toBytes(), r.toBytes(), X.shape as number[])).maxAbs).toBeLessThan(1e-4);
  });
  it('residual-dw falls back to sign-dw where a slope above 1 cannot be negated away; slopes up to 1 need nothing around it', async () => {
    const prelu = (slopes: number[]) => tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('PRelu', ['x', 'a'], ['y'], 'prelu')],
      initializers: [{ name: 'a', dims: [4, 1, 1], data: slopes }],
    });
    const above = prelu([0.2, 1.5, -2, 0]);
    const r = above.clone();
    const res = rewritePrelus(r.graph, 'residual-dw');
    expect(res.rewritten).toEqual(['prelu']);
    expect(res.fallback?.[0]?.reason).toMatch(/above 1/);
    expect(r.graph.opHistogram()).toEqual({ Conv: 3, Relu: 2, Add: 1 });
    expect((await maxOutputDiff(above.toBytes(), r.toBytes(), X.shape as number[])).maxAbs).toBeLessThan(1e-5);
    const below = prelu([0.2, 1, -2, 0]);
    const b = below.clone();
    expect(rewritePrelus(b.graph, 'residual-dw').fallback).toEqual([]);
    expect(b.graph.opHistogram()).toEqual({ Conv: 1, Relu: 1, Add: 1 });
    expect((await maxOutputDiff(below.toBytes(), b.toBytes(), X.shape as number[])).maxAbs).toBeLessThan(1e-5);
  });
  it('a PRelu on a [N, C] tensor (slope [C]) stays a PRelu: no 1x1 convolution fits it', async () => {
    for (const form of ['residual-dw', 'sign-dw', 'affine-dw'] as const) {
      const m = tinyModel({
        opset: 13, input: { name: 'x', shape: [2, 4] }, outputs: ['y'],
        nodes: [makeNode('PRelu', ['x', 'a'], ['y'], 'prelu')],
        initializers: [{ name: 'a', dims: [4], data: [0.2, 1.5, -2, 0] }],
      });
      const res = rewritePrelus(m.graph, form);
      expect(res.rewritten).toEqual([]);
      expect(res.skipped[0]?.reason).toMatch(/not one value per channel of an NCHW tensor/);
      expect(m.graph.opHistogram()).toEqual({ PRelu: 1 });
    }
  });
  it('max form refuses slopes above 1 (where it is not PRelu)', () => {
    const r = rewritePrelus(block().graph, 'max');
    expect(r.rewritten).toHaveLength(0);
    expect(r.skipped[0]?.reason).toMatch(/above 1/);
  });
  it('cross-layer equalization keeps the function and narrows the channel spread', async () => {
    const m = block();
    foldBatchNorms(m.graph);
    const pairs = findEqualizablePairs(m.graph);
    expect(pairs.map((p) => [p.producer.name, p.consumers.map((c) => c.name)])).toEqual([['conv1', ['dw']], ['dw', ['project']]]);
    const batches = [{ data: seededFloats(256, 9), dims: [1, 4, 8, 8] }];
    const amax = await collectChannelAmax(m, batches, pairs.flatMap((p) => [p.tensor, p.preActivation]));
    const e = m.clone();
    const r = equalizeGraph(e.graph, amax);
    expect(r.pairs).toBe(2);
    expect(r.spreadAfter).toBeLessThan(r.spreadBefore);
    expect((await maxOutputDiff(m.toBytes(), e.toBytes(), X.shape as number[])).maxAbs).toBeLessThan(1e-4);
  });
});
