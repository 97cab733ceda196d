/**
 * BatchNorm folds into a Gemm whose bias C is not one value per output feature, and the fold report for
 * a Conv padded by auto_pad (found by the mutation audit of pipeline/quantize/rewrites; each failed
 * before its fix in batchnorm.ts).
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { foldBatchNorms } from '../../pipeline/quantize/rewrites/batchnorm.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const bnInits = (c: number) => [
  { name: 'g', dims: [c], data: Array.from(seededFloats(c, 1), (v) => 1 + 0.5 * v) },
  { name: 'b', dims: [c], data: Array.from(seededFloats(c, 2), (v) => 0.5 + v) },
  { name: 'm', dims: [c], data: Array.from(seededFloats(c, 3), (v) => 0.3 + 0.5 * v) },
  { name: 'v', dims: [c], data: Array.from(seededFloats(c, 4), (v) => 0.5 + 0.5 * Math.abs(v)) },
];
const bn = (x: string, y: string) => makeNode('BatchNormalization', [x, 'g', 'b', 'm', 'v'], [y], 'bn');

describe('foldBatchNorms and a Gemm bias C that is not one value per output feature', () => {
  // Gemm's C broadcasts to [M, N]: besides [N] and [1] it may be [M, N] (a bias per row and column) or
  // [M, 1] (per row). batchnorm.ts reads C as per-feature whenever its length is 1 or N.
  it('BN -> Gemm with C of [M, N] keeps the function (foldBeforeGemm reads only C\'s first row)', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [2, 4] }, outputs: ['y'],
      nodes: [bn('x', 'n'), makeNode('Gemm', ['n', 'B', 'C'], ['y'], 'fc')],
      initializers: [...bnInits(4), { name: 'B', dims: [4, 5], data: seededFloats(20, 7) }, { name: 'C', dims: [2, 5], data: seededFloats(10, 8) }],
    });
    const f = m.clone();
    foldBatchNorms(f.graph);
    expect((await maxOutputDiff(m.toBytes(), f.toBytes(), [2, 4])).maxAbs).toBeLessThan(1e-4);
  });

  it('Gemm with C of [M, 1] (M = N) -> BN keeps the function (foldAfterGemm takes the per-row C as per-feature)', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [4, 6] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'B', 'C'], ['h'], 'fc'), bn('h', 'y')],
      initializers: [...bnInits(4), { name: 'B', dims: [6, 4], data: seededFloats(24, 7) }, { name: 'C', dims: [4, 1], data: [1, -2, 3, -4] }],
    });
    const f = m.clone();
    foldBatchNorms(f.graph);
    expect((await maxOutputDiff(m.toBytes(), f.toBytes(), [4, 6])).maxAbs).toBeLessThan(1e-4);
  });

  it('BN -> Gemm with C of [M, 1] (M = N) keeps the function (foldBeforeGemm takes the per-row C as per-feature)', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [5, 4] }, outputs: ['y'],
      nodes: [bn('x', 'n'), makeNode('Gemm', ['n', 'B', 'C'], ['y'], 'fc')],
      initializers: [...bnInits(4), { name: 'B', dims: [4, 5], data: seededFloats(20, 7) }, { name: 'C', dims: [5, 1], data: [1, -2, 3, -4, 5] }],
    });
    const f = m.clone();
    foldBatchNorms(f.graph);
    expect((await maxOutputDiff(m.toBytes(), f.toBytes(), [5, 4])).maxAbs).toBeLessThan(1e-4);
  });
});

describe('foldBatchNorms report', () => {
  it('a fold into a Conv padded by auto_pad (SAME_UPPER), asked for, is reported as before-conv-padded (approximate), not before-conv', () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 4, 6, 6] }, outputs: ['y'],
      nodes: [bn('x', 'n'), makeNode('Conv', ['n', 'w'], ['y'], 'conv', { kernel_shape: [3, 3], auto_pad: 'SAME_UPPER' })],
      initializers: [...bnInits(4), { name: 'w', dims: [5, 4, 3, 3], data: seededFloats(180, 9) }],
    });
    expect(foldBatchNorms(m.graph, { preConvPadded: true }).folded).toEqual([{ bn: 'bn', into: 'conv', how: 'before-conv-padded' }]);
  });
});
