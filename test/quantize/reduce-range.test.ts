/**
 * `--reduce-range` (QuantizeOptions.weightQmax 64): 7-bit weights for x86 CPUs without VNNI, where
 * onnxruntime's uint8 x int8 kernels add pairs of products into a saturating int16 (VPMADDUBSW). With
 * |q| <= 64 a pair of uint8 activations can reach at most 255 x 64 x 2 = 32,640, inside int16.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { quantizeModel, REDUCED_WEIGHT_QMAX } from '../../pipeline/quantize/index.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const X = { name: 'x', shape: [1, 4, 6, 6] };
const model = () => tinyModel({
  opset: 13, input: X, outputs: ['y'],
  nodes: [makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), makeNode('Relu', ['c'], ['y'], 'relu')],
  initializers: [{ name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) }],
});
const ranges = { x: [-1, 1], c: [-6, 6], y: [0, 6] } as Record<string, [number, number]>;
/** Largest |q| of each output channel of the int8 weight. */
const channelMax = (q: Int8Array, channels: number) => Array.from({ length: channels }, (_, c) => Math.max(...Array.from(q.subarray(c * 36, (c + 1) * 36), Math.abs)));
/** The largest sum of two adjacent products with uint8 255 along the reduction (what VPMADDUBSW adds in int16). */
const worstPair = (q: Int8Array) => { let m = 0; for (let i = 0; i + 1 < q.length; i += 2) m = Math.max(m, 255 * (Math.abs(q[i]!) + Math.abs(q[i + 1]!))); return m; };

describe('reduced-range weights', () => {
  it('per channel: every channel spans -64..64 (127 without), scales 127/64 larger, int16 pair sums fit; output still close to float', async () => {
    const m = model();
    const full = quantizeModel(m, ranges).model.graph;
    const reduced = quantizeModel(m, ranges, { weightQmax: REDUCED_WEIGHT_QMAX }).model.graph;
    const qf = full.getTensor('w_quantized').data as Int8Array;
    const qr = reduced.getTensor('w_quantized').data as Int8Array;
    expect(channelMax(qf, 8)).toEqual(new Array(8).fill(127));
    expect(channelMax(qr, 8)).toEqual(new Array(8).fill(64));
    expect(worstPair(qf)).toBeGreaterThan(32767); // what saturates without VNNI
    expect(worstPair(qr)).toBeLessThanOrEqual(32767);
    const sf = full.getFloat('w_scale');
    const sr = reduced.getFloat('w_scale');
    sr.forEach((s, i) => expect(s / sf[i]!).toBeCloseTo(127 / 64, 5));
    // the int32 bias follows the weight scale it is added with
    const sx = reduced.getFloat('x_scale')[0]!;
    reduced.getFloat('b_scale').forEach((s, i) => expect(s).toBeCloseTo(Math.fround(sx * sr[i]!), 12));
    const { maxAbs } = await maxOutputDiff(m.toBytes(), quantizeModel(m, ranges, { weightQmax: REDUCED_WEIGHT_QMAX }).model.toBytes(), X.shape);
    expect(maxAbs).toBeGreaterThan(0);
    expect(maxAbs).toBeLessThan(0.2);
  });
  it('per tensor: the tensor spans -64..64', () => {
    const q = quantizeModel(model(), ranges, { perChannel: false, weightQmax: REDUCED_WEIGHT_QMAX }).model.graph;
    const w = q.getTensor('w_quantized').data as Int8Array;
    expect(Math.max(...Array.from(w, Math.abs))).toBe(64);
    expect(q.getFloat('w_scale').length).toBe(1);
  });
  it('weights without a bias (no int32 scale to fit) span -64..64 too, per channel and per tensor', () => {
    const noBias = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('Conv', ['x', 'w'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), makeNode('Relu', ['c'], ['y'], 'relu')],
      initializers: [{ name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }],
    });
    const pc = quantizeModel(noBias, ranges, { weightQmax: REDUCED_WEIGHT_QMAX }).model.graph;
    expect(channelMax(pc.getTensor('w_quantized').data as Int8Array, 8)).toEqual(new Array(8).fill(64));
    const pt = quantizeModel(noBias, ranges, { perChannel: false, weightQmax: REDUCED_WEIGHT_QMAX }).model.graph;
    expect(Math.max(...Array.from(pt.getTensor('w_quantized').data as Int8Array, Math.abs))).toBe(64);
  });
  it('refuses a weight range outside 1..127', () => {
    for (const bad of [0, 128, 63.5]) {
      let err: unknown;
      try {
        quantizeModel(model(), ranges, { weightQmax: bad });
      } catch (e) {
        err = e;
      }
      expect(isFaceoptError(err) && err.code === 'FACEOPT_ERR_BAD_ARGUMENT').toBe(true);
    }
  });
});
