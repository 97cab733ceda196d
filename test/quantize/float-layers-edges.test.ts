/**
 * Mutation audit of pipeline/quantize/float-layers.ts: the weight-only rule's boundaries, on single
 * nodes built by hand.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { floatClosure, shieldFloatLayers, storesWeightOnly } from '../../pipeline/quantize/float-layers.js';
import type { QParams } from '../../pipeline/quantize/qparams.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { resolveQuantizeOptions } from '../../pipeline/quantize/options.js';
import { tinyModel } from '../onnx/tiny.js';

/** One node of `op` reading x with a weight initializer of `dims` (values irrelevant here). */
const one = (op: string, dims: number[], attrs: Record<string, number | number[]> = {}) => {
  const m = tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 1] }, outputs: ['y'],
    nodes: [makeNode(op, ['x', 'w'], ['y'], 'n', attrs)],
    initializers: [{ name: 'w', dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) }],
  });
  return { g: m.graph, n: m.graph.node('n')! };
};
const auto = resolveQuantizeOptions({ weightOnlyFloatLayers: 'auto' });

describe("storesWeightOnly 'auto'", () => {
  it('a 1x1 Conv from 16,384 weights on (16,383 is too few)', () => {
    const at = one('Conv', [128, 128, 1, 1]);
    expect(storesWeightOnly(at.g, at.n, auto)).toBe(true);
    const below = one('Conv', [127, 129, 1, 1]); // 16,383
    expect(storesWeightOnly(below.g, below.n, auto)).toBe(false);
  });
  it('a depthwise Conv (one input channel per output) of that size too, but not a k x 1 or 3x3 dense one', () => {
    const dw = one('Conv', [1024, 1, 4, 4], { group: 1024 });
    expect(storesWeightOnly(dw.g, dw.n, auto)).toBe(true);
    const kx1 = one('Conv', [128, 128, 1, 3]);
    expect(storesWeightOnly(kx1.g, kx1.n, auto)).toBe(false);
    const k3 = one('Conv', [64, 64, 3, 3]);
    expect(storesWeightOnly(k3.g, k3.n, auto)).toBe(false);
  });
  it('only a Conv: not a 1x1 ConvTranspose of the same size', () => {
    const ct = one('ConvTranspose', [128, 128, 1, 1]);
    expect(storesWeightOnly(ct.g, ct.n, auto)).toBe(false);
  });
  it('true and false apply to every layer', () => {
    const k3 = one('Conv', [4, 4, 3, 3]);
    expect(storesWeightOnly(k3.g, k3.n, resolveQuantizeOptions({ weightOnlyFloatLayers: true }))).toBe(true);
    const big = one('Conv', [128, 128, 1, 1]);
    expect(storesWeightOnly(big.g, big.n, resolveQuantizeOptions({ weightOnlyFloatLayers: false }))).toBe(false);
  });
});

describe('floatClosure grows only over PRelu parts', () => {
  /** c1 = conv1(x), c0 = conv0(x), each 4 channels; then `rest`. */
  const base = (rest: ReturnType<typeof makeNode>[], inits: { name: string; dims: number[]; data: number[] }[] = []) => tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 4, 4, 4] }, outputs: ['y'],
    nodes: [makeNode('Conv', ['x', 'w1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }), makeNode('Conv', ['x', 'w0'], ['c0'], 'conv0', { kernel_shape: [1, 1] }), ...rest],
    initializers: [{ name: 'w1', dims: [4, 4, 1, 1], data: new Array(16).fill(0.5) }, { name: 'w0', dims: [4, 4, 1, 1], data: new Array(16).fill(0.25) }, ...inits],
  }).graph;
  const dw = (name: string, dims = [4, 1, 1, 1]) => ({ name, dims, data: new Array(dims.reduce((a, b) => a * b, 1)).fill(-1) });

  it('a depthwise 1x1 conv with a bias, or a 3x3 one, is not a PRelu part', () => {
    const withBias = base([makeNode('Conv', ['c1', 'wd', 'bd'], ['y'], 'dw', { group: 4, kernel_shape: [1, 1] })], [dw('wd'), { name: 'bd', dims: [4], data: [0, 0, 0, 1] }]);
    expect(floatClosure(withBias, ['c1'])).toEqual(['c1']);
    const k3 = base([makeNode('Conv', ['c1', 'wd'], ['y'], 'dw', { group: 4, kernel_shape: [3, 3], pads: [1, 1, 1, 1] })], [dw('wd', [4, 1, 3, 3])]);
    expect(floatClosure(k3, ['c1'])).toEqual(['c1']);
    const part = base([makeNode('Conv', ['c1', 'wd'], ['y'], 'dw', { group: 4, kernel_shape: [1, 1] })], [dw('wd')]);
    expect(floatClosure(part, ['c1']).sort()).toEqual(['c1', 'y']);
  });

  it('an Add of two PRelu parts is float only when one of them is', () => {
    // sign-dw shape: Relu(dw+(c1)) + dw_a(Relu(dw-(c1)))
    const g = base([
      makeNode('Conv', ['c1', 'wp'], ['xp'], 'pos', { group: 4, kernel_shape: [1, 1] }), makeNode('Relu', ['xp'], ['rp'], 'pos_relu'),
      makeNode('Conv', ['c1', 'wn'], ['xn'], 'neg', { group: 4, kernel_shape: [1, 1] }), makeNode('Relu', ['xn'], ['rn'], 'neg_relu'),
      makeNode('Conv', ['rn', 'wa'], ['an'], 'slope', { group: 4, kernel_shape: [1, 1] }),
      makeNode('Add', ['rp', 'an'], ['y'], 'add'),
    ], [dw('wp'), dw('wn'), dw('wa')]);
    expect(floatClosure(g, ['c0'])).toEqual(['c0']);
    expect(floatClosure(g, ['an']).sort()).toEqual(['an', 'y']);
  });

  it('residual-dw\'s Add(x, Relu((a-1)x)) is float with x only when the slope part reads that same x', () => {
    const g = (reads: string) => base([
      makeNode('Conv', [reads, 'wm'], ['xm'], 'slope', { group: 4, kernel_shape: [1, 1] }), makeNode('Relu', ['xm'], ['m'], 'slope_relu'),
      makeNode('Add', ['c1', 'm'], ['y'], 'add'),
    ], [dw('wm')]);
    expect(floatClosure(g('c1'), ['c1']).sort()).toEqual(['c1', 'm', 'xm', 'y']);
    expect(floatClosure(g('c0'), ['c1'])).toEqual(['c1']);
  });
});

describe('shieldFloatLayers', () => {
  /** x (4 channels, dequantized as xd) read by `layers`, each output quantized. */
  const shield = (layers: ReturnType<typeof makeNode>[], inits: { name: string; dims: number[] }[], qType: number = DataType.UINT8, zeroPoint = 3) => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [4, 4, 1, 1] }, outputs: layers.map((l) => l.output![0]!),
      nodes: [makeNode('Identity', ['x'], ['xd'], 'dq_stand_in'), ...layers],
      initializers: inits.map((i) => ({ ...i, data: new Float32Array(i.dims.reduce((a, b) => a * b, 1)) })),
    });
    const g = m.graph;
    const params = new Map([['x', { dtype: 'uint8', scale: 0.5, zeroPoint, qmin: 0, qmax: 255 } as unknown as QParams]]);
    const made = shieldFloatLayers(g, params, new Map([['xd', 'x']]), qType, new Set(layers.map((l) => l.output![0]!)), new Map([['x', 'xq']]));
    return { g, made };
  };
  const scaleDims = (g: ReturnType<typeof shield>['g'], dq: ReturnType<typeof makeNode>) => g.getTensor(dq.input![1]!).dims.map(Number);

  it('one per-channel DequantizeLinear per activation, sized to the channels each layer reads', () => {
    const grouped = shield([makeNode('Conv', ['xd', 'w'], ['y'], 'g', { group: 2, kernel_shape: [1, 1] })], [{ name: 'w', dims: [6, 2, 1, 1] }]);
    expect(grouped.made).toHaveLength(1);
    expect(scaleDims(grouped.g, grouped.made[0]!)).toEqual([4]);
    expect(grouped.made[0]!.input![0]).toBe('xq');
    const ct = shield([makeNode('ConvTranspose', ['xd', 'w'], ['y'], 'ct', { kernel_shape: [1, 1] })], [{ name: 'w', dims: [4, 6, 1, 1] }]);
    expect(scaleDims(ct.g, ct.made[0]!)).toEqual([4]);
    const gemm = shield([makeNode('Gemm', ['xd', 'w'], ['y'], 'fc', { transB: 1 })], [{ name: 'w', dims: [6, 4] }]);
    expect(scaleDims(gemm.g, gemm.made[0]!)).toEqual([4]);
    const two = shield([makeNode('Gemm', ['xd', 'w'], ['y'], 'fc'), makeNode('Gemm', ['xd', 'w2'], ['z'], 'fc2')], [{ name: 'w', dims: [4, 6] }, { name: 'w2', dims: [4, 3] }]);
    expect(two.made).toHaveLength(1);
    expect(scaleDims(two.g, two.made[0]!)).toEqual([4]);
    expect(two.g.node('fc')!.input![0]).toBe(two.g.node('fc2')!.input![0]);
  });
  it('the zero point has the quantized type (int8: a negative zero point stays negative)', () => {
    const s = shield([makeNode('Conv', ['xd', 'w'], ['y'], 'c', { kernel_shape: [1, 1] })], [{ name: 'w', dims: [2, 4, 1, 1] }], DataType.INT8, -3);
    const z = s.g.getTensor(s.made[0]!.input![2]!);
    expect(z.dataType).toBe(DataType.INT8);
    expect(Array.from(z.data as Int8Array, Number)).toEqual([-3, -3, -3, -3]);
  });
});
