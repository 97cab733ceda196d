/**
 * Legal but unusual values through the float rewrites and the quantizer, each checked in onnxruntime
 * against the float graph: PRelu slopes that broadcast along W, a BatchNorm before a Conv1d, NaN and
 * infinite constants, and activation ranges so small that input scale x weight scale underflows.
 */
import { describe, expect, it } from 'vitest';
import { FaceoptError } from '../../pipeline/errors.js';
import { makeNode } from '../../pipeline/onnx/index.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { FLOAT32_TINY, adjustWeightScalesForBias, quantizeBias, quantizeWeightsPerChannel } from '../../pipeline/quantize/qparams.js';
import { batchNormsToDepthwise, foldBatchNorms } from '../../pipeline/quantize/rewrites/batchnorm.js';
import { rewritePrelus } from '../../pipeline/quantize/rewrites/prelu.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { measuredRanges } from './generic-helpers.js';

const X = { name: 'x', shape: [1, 4, 4, 4] };

/** Conv(4 -> 4, 1x1) -> PRelu(slope of `dims`) -> Conv(4 -> 4, 1x1); W = C = 4, so a [4] slope is legal. */
function preluBlock(dims: number[], slope: number[]) {
  return tinyModel({
    opset: 13, input: X, outputs: ['y'],
    nodes: [
      makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }),
      makeNode('PRelu', ['c1', 'a'], ['p'], 'prelu'),
      makeNode('Conv', ['p', 'w2'], ['y'], 'conv2', { kernel_shape: [1, 1] }),
    ],
    initializers: [
      { name: 'w1', dims: [4, 4, 1, 1], data: seededFloats(16, 3) }, { name: 'b1', dims: [4], data: seededFloats(4, 4) },
      { name: 'a', dims, data: slope }, { name: 'w2', dims: [4, 4, 1, 1], data: seededFloats(16, 5) },
    ],
  });
}

const codeOf = (f: () => unknown): string | undefined => {
  try { f(); } catch (e) { return e instanceof FaceoptError ? e.code : `not coded: ${String(e)}`; }
  return undefined;
};

describe('PRelu rewrites and slope broadcasting', () => {
  // slopes below 0, in [0, 1] and above 1
  const A = [-2, 0.25, 1.7, 0.5];
  for (const form of ['split-relu', 'sign-concat'] as const) {
    it(`${form}: a [C] slope (which varies along W, not the channels) is not taken as per-channel`, async () => {
      const m = preluBlock([4], A);
      const f = m.clone();
      rewritePrelus(f.graph, form);
      // before the fix both forms rewrote it and the output moved by 3.3
      expect((await maxOutputDiff(m.toBytes(), f.toBytes(), X.shape)).maxAbs).toBeLessThan(1e-5);
    });
    it(`${form}: per-channel ([1, C, 1, 1], [C, 1, 1]) and scalar slopes are still rewritten, exactly`, async () => {
      for (const [dims, a] of [[[1, 4, 1, 1], A], [[4, 1, 1], A], [[1], [-1.5]], [[1, 1, 1], [3]]] as [number[], number[]][]) {
        const m = preluBlock(dims, a);
        const f = m.clone();
        expect(rewritePrelus(f.graph, form).rewritten).toEqual(['prelu']);
        expect((await maxOutputDiff(m.toBytes(), f.toBytes(), X.shape)).maxAbs).toBeLessThan(1e-5);
      }
    });
  }
});

describe('BatchNormalization as a depthwise Conv', () => {
  it('in front of a padded Conv1d gets a 1-D kernel (a 2-D one failed to load), and keeps the function', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 4, 6] }, outputs: ['y'],
      nodes: [
        makeNode('BatchNormalization', ['x', 'g', 'b', 'mu', 'v'], ['n'], 'bn', { epsilon: 1e-3 }),
        makeNode('Conv', ['n', 'w'], ['y'], 'conv', { kernel_shape: [3], pads: [1, 1] }),
      ],
      // negative gamma, zero variance (epsilon keeps it finite)
      initializers: [
        { name: 'g', dims: [4], data: [1, -2, 0.5, -0.75] }, { name: 'b', dims: [4], data: [0.1, 0.2, -0.3, 0.4] },
        { name: 'mu', dims: [4], data: [0, 1, -0.5, 0.25] }, { name: 'v', dims: [4], data: [1, 0, 2, 0.5] },
        { name: 'w', dims: [2, 4, 3], data: seededFloats(24, 6) },
      ],
    });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toHaveLength(0); // padded: not folded
    expect(batchNormsToDepthwise(f.graph)).toEqual(['bn']);
    expect(f.graph.getTensor('bn_dw_weight').dims).toEqual([4, 1, 1]);
    expect((await maxOutputDiff(m.toBytes(), f.toBytes(), [1, 4, 6])).maxAbs).toBeLessThan(1e-4);
  });
});

describe('NaN and infinite constants are refused, not quantized into another function', () => {
  const conv = (w: Float32Array, b: number[]) => tinyModel({
    opset: 13, input: X, outputs: ['y'],
    nodes: [makeNode('Conv', ['x', 'w', 'b'], ['y'], 'c', { kernel_shape: [1, 1] })],
    initializers: [{ name: 'w', dims: [4, 4, 1, 1], data: w }, { name: 'b', dims: [4], data: b }],
  });
  const ranges = { x: [-1, 1], y: [-3, 3] } as const;
  const withWeight = (v: number) => { const w = seededFloats(16, 1); w[6] = v; return w; };
  it('a NaN weight (it became int8 0), per channel and per tensor', () => {
    // per channel the bias-fit check read the weights first and refused them without naming the tensor
    expect(codeOf(() => quantizeModel(conv(withWeight(NaN), [1, 0, 0, 0]), ranges))).toBe('FACEOPT_ERR_GRAPH');
    expect(codeOf(() => quantizeModel(conv(withWeight(NaN), [1, 0, 0, 0]), ranges, { perChannel: false }))).toBe('FACEOPT_ERR_GRAPH');
    expect(() => quantizeWeightsPerChannel(Float32Array.from([1, NaN]), [2, 1], 0)).toThrow(/NaN at index 1 \(channel 1\)/);
  });
  it('an infinite weight', () => {
    expect(codeOf(() => quantizeModel(conv(withWeight(-Infinity), [1, 0, 0, 0]), ranges, { perChannel: false }))).toBe('FACEOPT_ERR_GRAPH');
  });
  it('a NaN or infinite bias (it became int32 0 or saturated)', () => {
    for (const v of [NaN, Infinity]) {
      const e = (() => { try { quantizeModel(conv(seededFloats(16, 1), [1, v, 0, 0]), ranges); } catch (err) { return err as FaceoptError; } return undefined; })();
      expect(e?.code).toBe('FACEOPT_ERR_GRAPH');
      expect(e?.message).toContain('bias b holds');
      expect(() => quantizeBias(Float32Array.from([0, v]), 0.1, 0.1)).toThrow(/finite values for bias/);
    }
  });
});

describe('bias scale underflow (tiny activation range x tiny weight channel)', () => {
  it('weight scales grow until input scale x weight scale is a normal float32', () => {
    const s = adjustWeightScalesForBias(Float32Array.from([1e-9, 0.5]), Float32Array.from([0, 1e-30]), 1e-32);
    expect(Math.fround(1e-32 * s[0]!)).toBeGreaterThanOrEqual(FLOAT32_TINY);
    expect(s[1]).toBe(0.5);
    expect(quantizeBias(Float32Array.from([0, 1e-30]), 1e-32, s).scales[0]).toBeGreaterThanOrEqual(FLOAT32_TINY);
  });
  it('a model whose activation range is ~1e-30 quantizes (it was refused as a bad argument) and matches the float one', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('Mul', ['x', 'k'], ['xs'], 'mul'), makeNode('Conv', ['xs', 'w', 'b'], ['y'], 'c', { kernel_shape: [1, 1] })],
      initializers: [
        { name: 'k', dims: [], data: [1e-30] }, { name: 'w', dims: [4, 4, 1, 1], data: seededFloats(16, 2).map((v) => v * 1e-6) },
        { name: 'b', dims: [4], data: [0, 1e-36, 0, 0] },
      ],
    });
    const q = quantizeModel(m, await measuredRanges(m, X.shape));
    expect(q.result.quantizedNodes).toContain('c');
    expect((await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape)).maxAbs).toBeLessThan(1e-35);
  });
});

describe('int32 bias fit with per-tensor weights', () => {
  it('--per-tensor grows the one weight scale until every bias fits int32 (it saturated: output off by 1.06)', async () => {
    // weights ~1e-6 with a bias of 1: input scale x weight scale ~ 3e-11, so the bias needs ~3e10 > 2^31
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('Conv', ['x', 'w', 'b'], ['y'], 'c', { kernel_shape: [1, 1] })],
      initializers: [{ name: 'w', dims: [4, 4, 1, 1], data: seededFloats(16, 7).map((v) => v * 1e-6) }, { name: 'b', dims: [4], data: [1, -1, 0.5, 0] }],
    });
    const ranges = { x: [-1, 1], y: [-1.5, 1.5] } as const;
    for (const perChannel of [true, false]) {
      const q = quantizeModel(m, ranges, { perChannel });
      expect(q.result.quantizedNodes).toContain('c');
      expect((await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape)).maxAbs, `perChannel ${perChannel}`).toBeLessThan(0.01);
    }
  });
});
