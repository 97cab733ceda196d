/**
 * The constants of quantized layers (weights.ts) with numbers worked by hand: bias correction for the
 * rounding of int8 weights (sign, per-channel scale, groups, mismatched means), the Cast + Mul scale
 * shape of a weight quantized along axis 1, and the one per-tensor scale grown for the most demanding bias.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { resolveQuantizeOptions } from '../../pipeline/quantize/index.js';
import { INT32_MAX, quantizeBias } from '../../pipeline/quantize/qparams.js';
import { biasCorrected, biasFitScales, int8Weight } from '../../pipeline/quantize/weights.js';
import { tinyModel } from '../onnx/tiny.js';

/** x -> Conv(x, w, b) -> y, with w of the given dims and group. */
const conv = (dims: number[], w: number[], b: number[], group = 1) => tinyModel({
  opset: 13, input: { name: 'x', shape: [1, dims[1]! * group, 2, 2] }, outputs: ['y'],
  nodes: [makeNode('Conv', ['x', 'w', 'b'], ['y'], 'conv', { kernel_shape: dims.slice(2), ...(group > 1 ? { group } : {}) })],
  initializers: [{ name: 'w', dims, data: w }, { name: 'b', dims: [b.length], data: b }],
}).graph;
const withMeans = (m: number[]) => resolveQuantizeOptions({ inputMeans: new Map([['x', Float32Array.from(m)]]) });

describe('biasCorrected', () => {
  // w [2, 2, 1, 1]: channel 0 (0.013, -0.02) at scale 0.01 -> q (1, -2): error (-0.003, 0);
  // channel 1 (0.5, 0.26) at scale 0.1 -> q (5, 3): error (0, 0.04). Input means (2, 3).
  const w = [0.013, -0.02, 0.5, 0.26];
  const scales = Float32Array.from([0.01, 0.1]);

  it('subtracts sum((Wq - W) * E[x]) per output channel, with that channel\'s own scale', () => {
    const b = biasCorrected(conv([2, 2, 1, 1], w, [1, -1]), 'b', 'x', 'w', scales, withMeans([2, 3]));
    // b0 = 1 - (-0.003 * 2) = 1.006; b1 = -1 - 0.04 * 3 = -1.12
    expect(b[0]).toBeCloseTo(1.006, 5);
    expect(b[1]).toBeCloseTo(-1.12, 5);
  });

  it('reads the means of each group\'s own input channels (depthwise, group 2)', () => {
    // w [2, 1, 1, 1] = (0.013, 0.026) at scale 0.01 -> q (1, 3): error (-0.003, 0.004); means (2, 5)
    const b = biasCorrected(conv([2, 1, 1, 1], [0.013, 0.026], [0, 0], 2), 'b', 'x', 'w', Float32Array.from([0.01, 0.01]), withMeans([2, 5]));
    expect(b[0]).toBeCloseTo(0.006, 6);
    expect(b[1]).toBeCloseTo(-0.02, 6);
  });

  it('leaves the bias as it is without means, or with means of another length than the input channels', () => {
    const g = conv([2, 2, 1, 1], w, [1, -1]);
    expect(Array.from(biasCorrected(g, 'b', 'x', 'w', scales, resolveQuantizeOptions()))).toEqual([1, -1]);
    expect(Array.from(biasCorrected(g, 'b', 'x', 'w', scales, withMeans([2, 3, 4])))).toEqual([1, -1]);
  });
});

describe('int8Weight', () => {
  it('shapes Cast + Mul scales [1, N] for a weight quantized along axis 1 (MatMul [K, N])', () => {
    // columns' amax 4, 8, 12
    const g = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 4] }, outputs: ['y'],
      nodes: [makeNode('MatMul', ['x', 'w'], ['y'], 'mm')],
      initializers: [{ name: 'w', dims: [4, 3], data: [1, 2, 3, -4, 0.5, 6, 0.25, -8, 1, 2, 1, -12] }],
    }).graph;
    const { scales, nodes, output } = int8Weight(g, 'w', 1, undefined, resolveQuantizeOptions(), 'cast-mul');
    expect(Array.from(scales)).toEqual([4, 8, 12].map((a) => Math.fround(a / 127)));
    expect(nodes.map((n) => n.opType)).toEqual(['Cast', 'Mul']);
    expect(output).toBe('w_dequantized');
    expect(g.getTensor('w_scale').dims.map(Number)).toEqual([1, 3]);
    expect(Array.from(g.getFloat('w_scale'))).toEqual(Array.from(scales));
  });
});

describe('biasFitScales', () => {
  it('per tensor: the one scale is the largest any channel\'s bias needs, not channel 0\'s', () => {
    // w (1, 0.5) -> per-tensor scale 1/127; bias 1e6 in channel 1 with input scale 1e-3 needs
    // |b| / (sx * (2^31 - 1) / 2) = 0.9313 to fit int32 with headroom
    const g = conv([2, 1, 1, 1], [1, 0.5], [0, 1e6]);
    const got = biasFitScales(g, new Map([['b', { input: 'x', weight: 'w' }]]), new Map([['w', 0]]), new Map([['x', { scale: 1e-3 }]]), false);
    const s = got.get('w')!;
    expect(s.length).toBe(1);
    expect(s[0]).toBeCloseTo(1e6 / (1e-3 * (INT32_MAX / 2)), 5);
    expect(quantizeBias(Float32Array.from([0, 1e6]), 1e-3, s[0]!).saturated).toBe(0);
  });
});
