/**
 * The per-op handlers of the QDQ quantizer (pipeline/quantize/handlers.ts) one op family at a time:
 * where Q/DQ pairs go, which parameters each tensor gets (its own, its input's, per-channel weights on
 * which axis, int32 biases), and that the quantized graph run in onnxruntime stays close to float.
 */
import { describe, expect, it } from 'vitest';
import { makeNode, DataType, getAttr } from '../../pipeline/onnx/index.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { asymmetricUint8, fakeQuantize, symmetricInt8FromAmax } from '../../pipeline/quantize/qparams.js';
import { activationTensors, exposeTensors } from '../../pipeline/calibrate/run.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { itExactInt8 } from '../helpers/int8-exact.js';

type Model = ReturnType<typeof tinyModel>;
type Ranges = Record<string, [number, number]>;

/** Every output of `bytes` on input x = `xs` of shape `dims`. */
async function run(bytes: Uint8Array, xs: Float32Array, dims: number[]): Promise<Record<string, Float32Array>> {
  const s = await createSession(bytes);
  const out = await runSession(s, { x: floatTensor(xs, dims) });
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

/** Min/max calibration of every float activation of `m` on the one input `xs` (what `faceopt calibrate` measures). */
async function calibrate(m: Model, xs: Float32Array, dims: number[]): Promise<Ranges> {
  const out = await run(exposeTensors(m, activationTensors(m)), xs, dims);
  const ranges: Ranges = { x: [Math.min(...xs), Math.max(...xs)] };
  for (const [k, v] of Object.entries(out)) ranges[k] = [Math.min(...v), Math.max(...v)];
  return ranges;
}

/** Largest |a - b| over two arrays of the same length. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Quantize `m` with `ranges`, run float and quantized on `xs`: the largest output gap per output. */
async function gaps(m: Model, q: Model, xs: Float32Array, dims: number[]): Promise<Record<string, number>> {
  const f = await run(m.toBytes(), xs, dims);
  const r = await run(q.toBytes(), xs, dims);
  return Object.fromEntries(Object.keys(f).map((k) => [k, maxDiff(f[k]!, r[k]!)]));
}

/** The values of an initializer as plain numbers. */
const values = (m: Model, t: string) => Array.from(m.graph.getTensor(t).data as ArrayLike<number | bigint>, Number);
/** The (scale, zero point) a QuantizeLinear node of tensor `t` reads, by value. */
const qdqParams = (m: Model, t: string) => {
  const q = m.graph.node(`${t}_QuantizeLinear`)!;
  return { scale: values(m, q.input![1]!)[0], zeroPoint: values(m, q.input![2]!)[0] };
};
/** The tensor a DequantizeLinear-fed node input comes from: the QuantizeLinear's float input. */
const quantizedSource = (m: Model, t: string) => {
  const dq = m.graph.producer(t);
  expect(dq?.opType).toBe('DequantizeLinear');
  const q = m.graph.producer(dq!.input![0]!);
  expect(q?.opType).toBe('QuantizeLinear');
  return q!.input![0]!;
};
/** Symmetric int8 weight scales along `axis` of a 2-D [rows, cols] weight: amax / 127 per channel. */
const expectedWeightScales = (w: Float32Array, rows: number, cols: number, axis: number) => {
  const n = axis === 0 ? rows : cols;
  return Array.from({ length: n }, (_, c) => {
    let amax = 0;
    for (let i = 0; i < (axis === 0 ? cols : rows); i++) amax = Math.max(amax, Math.abs(w[axis === 0 ? c * cols + i : i * cols + c]!));
    return symmetricInt8FromAmax(amax).scale;
  });
};

describe('MatMul', () => {
  // W [K=6, N=4]: column n scaled by (n + 1) so per-row (axis 0) and per-column (axis 1) scales differ
  const K = 6; const N = 4;
  const W = seededFloats(K * N, 11).map((v, i) => v * ((i % N) + 1));
  const dims = [3, K];
  const xs = seededFloats(3 * K, 12);

  itExactInt8('a constant weight W[K,N] is int8 per channel along axis 1 (its N output columns); the input is quantized; output close to float', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: dims }, outputs: ['y'],
      nodes: [makeNode('MatMul', ['x', 'w'], ['y'], 'mm')],
      initializers: [{ name: 'w', dims: [K, N], data: W }],
    });
    const q = quantizeModel(m, await calibrate(m, xs, dims));
    const g = q.model.graph;
    expect(q.result.quantizedNodes).toEqual(['mm']);
    expect(q.result.weights).toBe(1);
    expect(g.getTensor('w_quantized').dataType).toBe(DataType.INT8);
    expect(g.getTensor('w_quantized').dims.map(Number)).toEqual([K, N]);
    expect(g.getTensor('w_scale').dims.map(Number)).toEqual([N]);
    expect(getAttr(g.node('w_DequantizeLinear')!, 'axis')).toBe(1);
    expect(values(q.model, 'w_scale')).toEqual(expectedWeightScales(W, K, N, 1));
    // each int8 value is its float weight over its column's scale
    const wq = values(q.model, 'w_quantized');
    const ws = values(q.model, 'w_scale');
    wq.forEach((v, i) => expect(Math.abs(v * ws[i % N]! - W[i]!)).toBeLessThanOrEqual(ws[i % N]! / 2 + 1e-7));
    expect(g.node('mm')!.input).toEqual(['x_dequantized', 'w_dequantized']);
    expect(quantizedSource(q.model, 'x_dequantized')).toBe('x');
    expect(g.hasInitializer('w')).toBe(false);
    const gap = (await gaps(m, q.model, xs, dims)).y!;
    expect(gap).toBeLessThan(0.06);
    expect(gap).toBeGreaterThan(0);
  });

  itExactInt8('a batched constant weight W[2,K,N] is int8 with one scale (onnxruntime\'s QLinearMatMul takes no per-column scale for it), not left float behind a run-time QuantizeLinear; output close to float', async () => {
    const W3 = seededFloats(2 * K * N, 14).map((v, i) => v * ((i % N) + 1));
    const d3 = [2, 3, K];
    const x3 = seededFloats(2 * 3 * K, 15);
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: d3 }, outputs: ['y'],
      nodes: [makeNode('MatMul', ['x', 'w'], ['y'], 'mm')],
      initializers: [{ name: 'w', dims: [2, K, N], data: W3 }],
    });
    const q = quantizeModel(m, await calibrate(m, x3, d3));
    const g = q.model.graph;
    expect(q.result.weights).toBe(1);
    expect(g.getTensor('w_quantized').dataType).toBe(DataType.INT8);
    expect(g.getTensor('w_quantized').dims.map(Number)).toEqual([2, K, N]);
    expect(g.getTensor('w_scale').dims.map(Number)).toEqual([]);
    expect(getAttr(g.node('w_DequantizeLinear')!, 'axis')).toBeUndefined();
    expect(values(q.model, 'w_scale')).toEqual([symmetricInt8FromAmax(Math.max(...W3.map(Math.abs))).scale]);
    expect(g.hasInitializer('w')).toBe(false);
    expect(g.node('mm')!.input).toEqual(['x_dequantized', 'w_dequantized']);
    const gap = (await gaps(m, q.model, x3, d3)).y!;
    expect(gap).toBeLessThan(0.1);
    expect(gap).toBeGreaterThan(0);
  });

  it('two run-time inputs: both get a QuantizeLinear/DequantizeLinear pair and no weight is quantized; output close to float', async () => {
    const sq = [2, 4, 4];
    const xs2 = seededFloats(32, 13);
    // Tanh has no int8 handler: only MatMul's handler can quantize its output
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: sq }, outputs: ['y'],
      nodes: [makeNode('Tanh', ['x'], ['s'], 'tanh'), makeNode('MatMul', ['x', 's'], ['y'], 'mm')],
    });
    const q = quantizeModel(m, await calibrate(m, xs2, sq));
    const g = q.model.graph;
    expect(q.result.quantizedNodes).toEqual(['mm']);
    expect(q.result.weights).toBe(0);
    const [a, b] = g.node('mm')!.input!;
    expect(quantizedSource(q.model, a!)).toBe('x');
    expect(quantizedSource(q.model, b!)).toBe('s');
    expect(Object.keys(q.result.params).sort()).toEqual(['s', 'x', 'y']);
    expect(g.opHistogram().QuantizeLinear).toBe(3);
    const gap = (await gaps(m, q.model, xs2, sq)).y!;
    expect(gap).toBeLessThan(0.03);
    expect(gap).toBeGreaterThan(0);
  });
});

describe('Gemm', () => {
  const K = 6; const N = 3;
  const dims = [2, K];
  const xs = seededFloats(2 * K, 21);
  const bias = Float32Array.of(0.1, -0.25, 0.4);
  // output channel n scaled by (n + 1): its weights are W[:, n] without transB, W[n, :] with it
  const wKN = seededFloats(K * N, 22).map((v, i) => v * ((i % N) + 1));
  const wNK = Float32Array.from({ length: N * K }, (_, i) => wKN[(i % K) * N + Math.floor(i / K)]!); // its transpose

  for (const { transB, w, wDims, axis } of [
    { transB: 0, w: wKN, wDims: [K, N], axis: 1 },
    { transB: 1, w: wNK, wDims: [N, K], axis: 0 },
  ]) {
    it(`transB=${transB}: weight [${wDims.join(',')}] int8 per output channel on axis ${axis}; the int32 bias scale is input scale x weight scale per channel; output close to float`, async () => {
      const m = tinyModel({
        opset: 13, input: { name: 'x', shape: dims }, outputs: ['y'],
        nodes: [makeNode('Gemm', ['x', 'fc', 'fcb'], ['y'], 'fc', { transB })],
        initializers: [{ name: 'fc', dims: wDims, data: w }, { name: 'fcb', dims: [N], data: bias }],
      });
      const q = quantizeModel(m, await calibrate(m, xs, dims));
      const g = q.model.graph;
      expect(g.getTensor('fc_quantized').dataType).toBe(DataType.INT8);
      expect(g.getTensor('fc_scale').dims.map(Number)).toEqual([N]);
      expect(getAttr(g.node('fc_DequantizeLinear')!, 'axis')).toBe(axis);
      expect(values(q.model, 'fc_scale')).toEqual(expectedWeightScales(w, wDims[0]!, wDims[1]!, axis));
      // the bias: int32 behind a per-channel DequantizeLinear, scale[n] = float32(sx * sw[n])
      expect(g.getTensor('fcb_quantized').dataType).toBe(DataType.INT32);
      expect(getAttr(g.node('fcb_DequantizeLinear')!, 'axis')).toBe(0);
      const sx = values(q.model, 'x_scale')[0]!;
      const sw = values(q.model, 'fc_scale');
      const sb = values(q.model, 'fcb_scale');
      expect(sb).toHaveLength(N);
      sb.forEach((s, n) => expect(s).toBe(Math.fround(sx * sw[n]!)));
      values(q.model, 'fcb_quantized').forEach((v, n) => expect(v).toBe(Math.round(bias[n]! / sb[n]!)));
      expect(g.node('fc')!.input).toEqual(['x_dequantized', 'fc_dequantized', 'fcb_dequantized']);
      expect(q.result.biases).toBe(1);
      const gap = (await gaps(m, q.model, xs, dims)).y!;
      expect(gap).toBeLessThan(0.04);
      expect(gap).toBeGreaterThan(0);
    });
  }
});

describe('Gemm with alpha or beta other than 1', () => {
  // the int32 bias is dequantized before Gemm scales it by beta, so input scale x weight scale stays right;
  // a bias of 2.5-4 makes any misreading of it (by alpha or beta) a gap of 1 or more
  for (const [alpha, beta] of [[0.5, undefined], [undefined, 0.5], [2.5, 1.5]]) {
    it(`alpha ${alpha ?? 1}, beta ${beta ?? 1}: quantized output close to float in onnxruntime`, async () => {
      const K = 6; const N = 3; const dims = [2, K];
      const xs = seededFloats(2 * K, 21);
      const m = tinyModel({
        opset: 13, input: { name: 'x', shape: dims }, outputs: ['y'],
        nodes: [makeNode('Gemm', ['x', 'fc', 'fcb'], ['y'], 'fc', { transB: 1, ...(alpha ? { alpha } : {}), ...(beta ? { beta } : {}) })],
        initializers: [{ name: 'fc', dims: [N, K], data: seededFloats(N * K, 22) }, { name: 'fcb', dims: [N], data: Float32Array.of(3, -2.5, 4) }],
      });
      const q = quantizeModel(m, await calibrate(m, xs, dims));
      expect(q.result.biases).toBe(1);
      const gap = (await gaps(m, q.model, xs, dims)).y!;
      expect(gap).toBeLessThan(0.04);
      expect(gap).toBeGreaterThan(0);
    });
  }
});

describe('Gemm with a broadcast bias C of shape [1]', () => {
  // onnxruntime's fused Gemm adds C's int32 values to each column's accumulator as they are: a [1] C
  // quantized at column 0's scale was off by that column's scale ratio everywhere else (57 steps in an audit's case)
  for (const transB of [1, 0]) {
    it(`transB=${transB}: C stays float (no int32 bias) and the output matches float in onnxruntime's optimized session`, async () => {
      const K = 6; const N = 4; const dims = [2, K];
      const xs = seededFloats(2 * K, 41);
      // columns whose weights differ by 10x, so their per-channel scales differ
      const w = seededFloats(N * K, 42).map((v, i) => v * [0.2, 1, 2, 1.5][transB ? Math.floor(i / K) : i % N]!);
      const m = tinyModel({
        opset: 13, input: { name: 'x', shape: dims }, outputs: ['y'],
        nodes: [makeNode('Gemm', ['x', 'fc', 'c'], ['y'], 'fc', { transB })],
        initializers: [{ name: 'fc', dims: transB ? [N, K] : [K, N], data: w }, { name: 'c', dims: [1], data: Float32Array.of(0.8) }],
      });
      const q = quantizeModel(m, await calibrate(m, xs, dims));
      expect((await gaps(m, q.model, xs, dims)).y!).toBeLessThan(0.1);
      expect(q.result.weights).toBe(1);
      expect(q.result.biases).toBe(0);
      expect(q.model.graph.node('fc')!.input![2]).toBe('c');
    });
  }
});

describe('Clip', () => {
  const X = { name: 'x', shape: [1, 4, 6, 6] };
  const xs = seededFloats(144, 31);
  // weights x3 so the conv output reaches well beyond 6 (and below -1)
  const convThenClip = (lo: number, hi: number) => tinyModel({
    opset: 13, input: X, outputs: ['y'],
    nodes: [
      makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Clip', ['c', 'lo', 'hi'], ['y'], 'clip'),
    ],
    initializers: [
      { name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 32).map((v) => 3 * v) }, { name: 'b', dims: [8], data: seededFloats(8, 33) },
      { name: 'lo', dims: [], data: [lo] }, { name: 'hi', dims: [], data: [hi] },
    ],
  });

  itExactInt8('Clip(0, 6) after a Conv folds into the Conv output\'s range [0, 6] (uint8 zero point 0, scale 6/255) even where the calibrated range goes past 6', async () => {
    const m = convThenClip(0, 6);
    const measured = await calibrate(m, xs, X.shape);
    expect(measured.c![1]).toBeGreaterThan(8); // the conv alone goes past 6: the Clip matters
    // the fold takes the Clip output's range, else its input's; both go past 6 here, and the Clip's max bounds them
    const variants: Ranges[] = [{ x: measured.x!, c: measured.c! }, { x: measured.x!, c: measured.c!, y: [0, measured.c![1]] }];
    for (const ranges of variants) {
      const q = quantizeModel(m, ranges);
      const g = q.model.graph;
      expect(q.result.foldedActivations).toEqual(['clip']);
      expect(g.opHistogram().Clip).toBeUndefined();
      expect(g.producer(g.node('y_QuantizeLinear')!.input![0]!)!.opType).toBe('Conv');
      const six = asymmetricUint8(0, 6);
      expect(six.zeroPoint).toBe(0);
      expect(six.scale).toBe(Math.fround(6 / 255));
      expect(q.result.params.y).toEqual({ scale: six.scale, zeroPoint: 0, dtype: 'uint8' });
      expect(qdqParams(q.model, 'y')).toEqual({ scale: six.scale, zeroPoint: 0 });
      expect(g.getTensor('y_zero_point').dataType).toBe(DataType.UINT8);
      // QuantizeLinear saturating at 0 and 255 is the Clip: outputs in [0, 6], close to float
      const f = (await run(m.toBytes(), xs, X.shape)).y!;
      const r = (await run(q.model.toBytes(), xs, X.shape)).y!;
      expect(Math.min(...r)).toBe(0);
      expect(Math.max(...r)).toBeCloseTo(6, 5);
      const gap = maxDiff(f, r);
      expect(gap).toBeLessThan(0.15); // an unclamped range would let outputs reach 8 and more
      expect(gap).toBeGreaterThan(0);
    }
  });

  itExactInt8('Clip(-1, 1) is not folded (its min is not 0): it stays a node between the Conv output\'s wider grid and a [-1, 1] grid of its own; output close to float', async () => {
    const m = convThenClip(-1, 1);
    const ranges = await calibrate(m, xs, X.shape);
    expect(ranges.y).toEqual([-1, 1]);
    const q = quantizeModel(m, ranges);
    const g = q.model.graph;
    expect(q.result.foldedActivations).toEqual([]);
    expect(q.result.quantizedNodes).toEqual(['conv', 'clip']);
    expect(g.node('clip')!.input!.slice(0, 1)).toEqual(['c_dequantized']);
    expect(quantizedSource(q.model, 'c_dequantized')).toBe('c');
    const { scale: cs, zeroPoint: cz } = asymmetricUint8(ranges.c![0], ranges.c![1]);
    expect(q.result.params.c).toEqual({ scale: cs, zeroPoint: cz, dtype: 'uint8' });
    const { scale: ys, zeroPoint: yz } = asymmetricUint8(-1, 1);
    expect(q.result.params.y).toEqual({ scale: ys, zeroPoint: yz, dtype: 'uint8' });
    expect(cs).toBeGreaterThan(2 * ys);
    const f = (await run(m.toBytes(), xs, X.shape)).y!;
    const r = (await run(q.model.toBytes(), xs, X.shape)).y!;
    // the Clip still clamps: nothing outside [-1, 1] beyond the grid's own rounding
    expect(Math.max(...r.map(Math.abs))).toBeLessThanOrEqual(1 + ys);
    const gap = maxDiff(f, r);
    expect(gap).toBeLessThan(0.15);
    expect(gap).toBeGreaterThan(0);
  });
});

describe('AveragePool and GlobalAveragePool', () => {
  it('each output gets quantization parameters of its own calibrated range, not its input\'s; output close to float', async () => {
    const X = { name: 'x', shape: [1, 4, 6, 6] };
    const xs = seededFloats(144, 41);
    const m = tinyModel({
      opset: 13, input: X, outputs: ['gap'],
      nodes: [
        makeNode('AveragePool', ['x'], ['ap'], 'avg', { kernel_shape: [2, 2], strides: [2, 2] }),
        makeNode('GlobalAveragePool', ['ap'], ['gap'], 'global'),
      ],
    });
    const ranges = await calibrate(m, xs, X.shape);
    // averaging narrows the range: each output's own grid is finer than its input's
    const own = (t: string) => { const p = asymmetricUint8(ranges[t]![0], ranges[t]![1]); return { scale: p.scale, zeroPoint: p.zeroPoint, dtype: 'uint8' }; };
    expect(own('ap').scale).toBeLessThan(own('x').scale);
    expect(own('gap').scale).toBeLessThan(own('ap').scale);
    const q = quantizeModel(m, ranges);
    const p = q.result.params;
    expect(q.result.quantizedNodes).toEqual(['avg', 'global']);
    expect(p.x).toEqual(own('x'));
    expect(p.ap).toEqual(own('ap'));
    expect(p.gap).toEqual(own('gap'));
    expect(p.ap).not.toEqual(p.x);
    expect(p.gap).not.toEqual(p.ap);
    expect(qdqParams(q.model, 'ap')).toEqual({ scale: own('ap').scale, zeroPoint: own('ap').zeroPoint });
    expect(qdqParams(q.model, 'gap')).toEqual({ scale: own('gap').scale, zeroPoint: own('gap').zeroPoint });
    expect(q.model.graph.node('avg')!.input).toEqual(['x_dequantized']);
    expect(q.model.graph.node('global')!.input).toEqual(['ap_dequantized']);
    const gap = (await gaps(m, q.model, xs, X.shape)).gap!;
    // x's rounding, averaged, and the outputs' finer grids: well under half a step of x's grid, where
    // outputs re-rounded onto x's grid (shared parameters) could be off by that much
    expect(gap).toBeLessThan(own('x').scale / 4);
    expect(gap).toBeGreaterThan(0);
  });
});

describe('data-movement ops', () => {
  it('Transpose, Flatten, Squeeze and Unsqueeze share their input\'s parameters (ranges of their own are ignored), so their outputs are x\'s quantized values rearranged, exactly', async () => {
    const X = { name: 'x', shape: [1, 2, 3, 4] };
    const xs = seededFloats(24, 51);
    const m = tinyModel({
      opset: 13, input: X, outputs: ['t', 'f', 'sq', 'us'],
      nodes: [
        makeNode('Transpose', ['x'], ['t'], 'transpose', { perm: [0, 3, 1, 2] }), // [1, 4, 2, 3]
        makeNode('Flatten', ['x'], ['f'], 'flatten', { axis: 2 }), // [2, 12]
        makeNode('Squeeze', ['x', 'axes0'], ['sq'], 'squeeze'), // [2, 3, 4]
        makeNode('Unsqueeze', ['x', 'axes4'], ['us'], 'unsqueeze'), // [1, 2, 3, 4, 1]
      ],
      initializers: [{ name: 'axes0', dataType: DataType.INT64, dims: [1], data: [0] }, { name: 'axes4', dataType: DataType.INT64, dims: [1], data: [4] }],
    });
    const calibrated = await calibrate(m, xs, X.shape);
    // the outputs' own ranges are deliberately other than x's: a data-movement op must not use them
    const moved = ['t', 'f', 'sq', 'us'];
    const ranges: Ranges = { x: calibrated.x!, ...Object.fromEntries(moved.map((t) => [t, [-3, 5]])) };
    const q = quantizeModel(m, ranges);
    const p = q.result.params;
    expect(q.result.quantizedNodes.sort()).toEqual(['flatten', 'squeeze', 'transpose', 'unsqueeze']);
    const px = asymmetricUint8(calibrated.x![0], calibrated.x![1]);
    expect(p.x).toEqual({ scale: px.scale, zeroPoint: px.zeroPoint, dtype: 'uint8' });
    for (const t of moved) {
      expect(p[t], t).toEqual(p.x);
      expect(qdqParams(q.model, t), t).toEqual(qdqParams(q.model, 'x'));
      expect(q.model.graph.producer(`${t}_float`)!.input![0], t).toBe('x_dequantized');
    }
    // each output is x's dequantized grid values moved, with no rounding of its own
    const fx = fakeQuantize(xs, px);
    const transposed = new Float32Array(24); // [1,2,3,4] -> perm [0,3,1,2] -> [1,4,2,3]
    for (let c = 0; c < 2; c++) for (let h = 0; h < 3; h++) for (let w = 0; w < 4; w++) transposed[(w * 2 + c) * 3 + h] = fx[(c * 3 + h) * 4 + w]!;
    const r = await run(q.model.toBytes(), xs, X.shape);
    expect(Array.from(r.t!)).toEqual(Array.from(transposed));
    for (const t of ['f', 'sq', 'us']) expect(Array.from(r[t]!), t).toEqual(Array.from(fx));
    // and close to float: half a step of x's grid, not exact
    const g = await gaps(m, q.model, xs, X.shape);
    for (const t of moved) {
      expect(g[t], t).toBeLessThanOrEqual(px.scale / 2 + 1e-6);
      expect(g[t], t).toBeGreaterThan(0);
    }
  });
});
