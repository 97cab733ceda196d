import { describe, expect, it } from 'vitest';
import { makeNode, makeValueInfo, DataType, getAttr } from '../../pipeline/onnx/index.js';
import { quantizeModel, assertFloatModel } from '../../pipeline/quantize/index.js';
import { countMacs } from '../../pipeline/onnx/macs.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { loadModel } from '../../pipeline/onnx/model.js';
import ort from 'onnxruntime-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { itExactInt8 } from '../helpers/int8-exact.js';

const X = { name: 'x', shape: [1, 4, 6, 6] };
const convModel = (extra: ReturnType<typeof makeNode>[] = [], outputs = ['y']) => tinyModel({
  opset: 11, input: X, outputs,
  nodes: [makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), ...extra],
  initializers: [{ name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) }],
});
const ops = (m: ReturnType<typeof tinyModel>) => m.graph.opHistogram();
const names = (m: ReturnType<typeof tinyModel>) => m.graph.nodes.map((n) => n.name);

describe('QDQ quantizer', () => {
  itExactInt8('Conv: uint8 activations, int8 per-channel weights on axis 0, int32 bias with scale = sx*sw; output close to float', async () => {
    const m = convModel([makeNode('Relu', ['c'], ['y'], 'relu')]);
    const q = quantizeModel(m, { x: [-1, 1], c: [-6, 6], y: [0, 6] });
    expect(q.model.opset()).toBe(13); // raised from 11 automatically
    expect(q.result.foldedActivations).toEqual(['relu']); // Relu folded into the uint8 range
    const g = q.model.graph;
    expect(g.getTensor('w_quantized').dataType).toBe(DataType.INT8);
    expect(g.getTensor('w_scale').dims).toEqual([8]);
    expect(getAttr(g.node('w_DequantizeLinear')!, 'axis')).toBe(0);
    expect(g.getTensor('b_quantized').dataType).toBe(DataType.INT32);
    const sx = g.getFloat('x_scale')[0]!;
    const sw = g.getFloat('w_scale');
    const sb = g.getFloat('b_scale');
    sb.forEach((s, i) => expect(s).toBeCloseTo(Math.fround(sx * sw[i]!), 12));
    expect(g.getTensor('y_zero_point').dataType).toBe(DataType.UINT8);
    expect(Array.from(g.getTensor('y_zero_point').data as Uint8Array)).toEqual([0]);
    expect(names(q.model)).toContain('x_QuantizeLinear');
    expect(names(q.model)).toContain('y_DequantizeLinear');
    const { maxAbs } = await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape);
    expect(maxAbs).toBeLessThan(0.15);
    expect(maxAbs).toBeGreaterThan(0); // it really is quantized
  });
  it('MACs of a QDQ graph count the int8 weights behind DequantizeLinear', async () => {
    const m = convModel([makeNode('Relu', ['c'], ['y'], 'relu')]);
    const q = quantizeModel(m, { x: [-1, 1], c: [-6, 6], y: [0, 6] });
    const f = await countMacs(m);
    expect(f.total).toBe(8 * 6 * 6 * 4 * 9);
    expect((await countMacs(q.model)).total).toBe(f.total);
  });
  it('symmetric int8 (TensorRT): zero points 0, Relu kept', () => {
    const q = quantizeModel(convModel([makeNode('Relu', ['c'], ['y'], 'relu')]), { x: [-1, 1], c: [-6, 6], y: [0, 6] }, { activationType: 'int8' });
    expect(q.result.foldedActivations).toEqual([]);
    for (const t of q.model.graph.initializerNames().filter((n) => n.endsWith('_zero_point'))) {
      expect(Array.from(q.model.graph.getTensor(t).data as ArrayLike<number>).every((v) => Number(v) === 0)).toBe(true);
    }
    expect(ops(q.model).Relu).toBe(1);
  });
  it('compact constants: int32 biases without zero points (int8 weights keep theirs), one scale when every channel has the same; the same outputs as explicit ones', async () => {
    // a conv with varied weights and a bias, then a depthwise 1x1 conv whose channels all weigh 1 (a sign-dw half)
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Conv', ['c', 'ones'], ['y'], 'dw', { kernel_shape: [1, 1], group: 8 }),
      ],
      initializers: [{ name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) }, { name: 'ones', dims: [8, 1, 1, 1], data: new Float32Array(8).fill(1) }],
    });
    const ranges = { x: [-1, 1], c: [-6, 6], y: [-6, 6] } as const;
    const compact = quantizeModel(m, ranges).model;
    const explicit = quantizeModel(m, ranges, { compactConstants: false }).model;
    const dq = (model: typeof compact, t: string) => model.graph.node(`${t}_DequantizeLinear`)!;
    // onnxruntime's symmetric-weight conv kernels need the weight zero point as a constant input
    expect(dq(compact, 'w').input).toEqual(['w_quantized', 'w_scale', 'w_zero_point']);
    expect(compact.graph.getTensor('w_zero_point').dims).toEqual([8]);
    expect(compact.graph.getTensor('ones_zero_point').dims).toEqual([]);
    expect(dq(compact, 'b').input).toEqual(['b_quantized', 'b_scale']);
    expect(dq(explicit, 'w').input).toEqual(['w_quantized', 'w_scale', 'w_zero_point']);
    expect(dq(explicit, 'b').input).toEqual(['b_quantized', 'b_scale', 'b_zero_point']);
    expect(compact.graph.getTensor('w_scale').dims).toEqual([8]); // channels differ: per channel
    expect(compact.graph.getTensor('ones_scale').dims).toEqual([]); // all equal: stored once
    expect(getAttr(dq(compact, 'ones'), 'axis')).toBeUndefined();
    expect(explicit.graph.getTensor('ones_scale').dims).toEqual([8]);
    expect(compact.toBytes().length).toBeLessThan(explicit.toBytes().length);
    const a = await runSession(await createSession(compact.toBytes()), { x: floatTensor(seededFloats(144, 3), X.shape) });
    const b = await runSession(await createSession(explicit.toBytes()), { x: floatTensor(seededFloats(144, 3), X.shape) });
    expect(Array.from(a.y!.data as Float32Array)).toEqual(Array.from(b.y!.data as Float32Array));
  });
  it('per-tensor weights on request', () => {
    const q = quantizeModel(convModel([makeNode('Relu', ['c'], ['y'], 'relu')]), { x: [-1, 1], c: [-6, 6], y: [0, 6] }, { perChannel: false });
    expect(q.model.graph.getTensor('w_scale').dims).toEqual([]);
  });
  it('pass-through ops share their input parameters; Add, Concat, Sigmoid, MaxPool, Resize handled', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['out'],
      nodes: [
        makeNode('Sigmoid', ['x'], ['s'], 'sig'),
        makeNode('Add', ['x', 's'], ['a'], 'add'),
        makeNode('MaxPool', ['a'], ['p'], 'pool', { kernel_shape: [2, 2], strides: [2, 2] }),
        makeNode('Resize', ['p', '', 'scales'], ['r'], 'resize', { mode: 'nearest' }),
        makeNode('Concat', ['r', 'a'], ['cat'], 'concat', { axis: 1 }),
        makeNode('Reshape', ['cat', 'shape'], ['out'], 'reshape'),
      ],
      initializers: [{ name: 'scales', dims: [4], data: [1, 1, 2, 2] }, { name: 'shape', dataType: DataType.INT64, dims: [2], data: [1, -1] }],
    });
    const q = quantizeModel(m, { x: [-1, 1], s: [0, 1], a: [-1, 2], p: [-1, 2], r: [-1, 2], cat: [-1, 2], out: [-1, 2] });
    const p = q.result.params;
    expect(p.p).toEqual(p.a); // MaxPool output = input params
    expect(p.r).toEqual(p.p); // Resize
    expect(p.out).toEqual(p.cat); // Reshape
    expect(q.result.quantizedNodes).toHaveLength(6);
    expect((await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape)).maxAbs).toBeLessThan(0.05);
  });
  it('Gemm: weight per output channel (axis 0 with transB)', () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [2, 6] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'fc', 'fcb'], ['y'], 'fc', { transB: 1 })],
      initializers: [{ name: 'fc', dims: [3, 6], data: seededFloats(18, 3) }, { name: 'fcb', dims: [3], data: [0.1, 0.2, 0.3] }],
    });
    const q = quantizeModel(m, { x: [-1, 1], y: [-3, 3] });
    expect(q.model.graph.getTensor('fc_scale').dims).toEqual([3]);
    expect(getAttr(q.model.graph.node('fc_DequantizeLinear')!, 'axis')).toBe(0);
  });
  it('exclusion by node name and by op type leaves those nodes float', () => {
    const m = convModel([makeNode('Sigmoid', ['c'], ['y'], 'sig')]);
    const byName = quantizeModel(m, { x: [-1, 1], c: [-6, 6], y: [0, 1] }, { exclude: ['conv'] });
    expect(byName.result.floatNodes.find((f) => f.name === 'conv')?.reason).toMatch(/excluded/);
    expect(byName.model.graph.hasInitializer('w_quantized')).toBe(false);
    const byOp = quantizeModel(m, { x: [-1, 1], c: [-6, 6], y: [0, 1] }, { exclude: ['Sigmoid'] });
    expect(byOp.result.floatNodes.map((f) => f.op)).toContain('Sigmoid');
    expect(byOp.model.graph.hasInitializer('w_quantized')).toBe(true);
  });
  itExactInt8('a float layer between int8 layers stays float under onnxruntime (its WeightBiasQuantization is sidestepped)', async () => {
    // conv2 is excluded; its weights span 1000x between channels, so per-tensor int8 (what onnxruntime's
    // basic-level WeightBiasQuantization gives a float Conv fed by a per-tensor DequantizeLinear) ruins them
    const w2 = seededFloats(8 * 8 * 9, 3).map((v, i) => (i < 72 ? v * 1000 : v));
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Conv', ['c', 'w2', 'b2'], ['d'], 'conv2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Conv', ['d', 'w3', 'b2'], ['y'], 'conv3', { kernel_shape: [1, 1] }),
      ],
      initializers: [
        { name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) },
        { name: 'w2', dims: [8, 8, 3, 3], data: w2 }, { name: 'b2', dims: [8], data: seededFloats(8, 4) },
        { name: 'w3', dims: [8, 8, 1, 1], data: seededFloats(64, 5) },
      ],
    });
    // conv2's output is quantized (conv3 reads it): the node-unit shape onnxruntime's transformer matches
    const ranges = { x: [-1, 1], c: [-6, 6], d: [-3000, 3000], y: [-3000, 3000] } as Record<string, [number, number]>;
    const run = async (bytes: Uint8Array, optimization: 'disabled' | 'all') => {
      const s = await createSession(bytes, { optimization });
      const out = await runSession(s, { x: floatTensor(seededFloats(144, 9), X.shape) });
      await s.release();
      return out.y!.data as Float32Array;
    };
    const gap = async (shieldFloatLayers: boolean) => {
      const q = quantizeModel(m, ranges, { exclude: ['conv2'], quantizeGraphOutputs: false, shieldFloatLayers });
      const [a, b] = [await run(q.model.toBytes(), 'disabled'), await run(q.model.toBytes(), 'all')];
      return { q, diff: Math.max(...a.map((v, i) => Math.abs(v - b[i]!))) };
    };
    const shielded = await gap(true);
    expect(shielded.diff).toBeLessThan(1); // what the graph says is what onnxruntime runs
    const dq = shielded.q.model.graph.node('c_dequantized_per_channel_DequantizeLinear')!;
    expect(getAttr(dq, 'axis')).toBe(1);
    expect(shielded.q.model.graph.getTensor('c_dequantized_per_channel_scale').dims).toEqual([8]);
    expect(shielded.q.model.graph.node('conv2')!.input![0]).toBe('c_dequantized_per_channel');
    // unshielded, onnxruntime's own per-tensor weights move y by several of its quantization steps (23.5)
    expect((await gap(false)).diff).toBeGreaterThan(40);
  });
  it('a float Gemm with transA reading an int8 activation runs: its shield has the length of A\'s axis 1 (M) where that is recorded, and there is none where it is not (it had K values and every run failed)', async () => {
    const nodes = [
      makeNode('Transpose', ['v'], ['vt'], 'transpose', { perm: [1, 0] }),
      makeNode('Gemm', ['vt', 'w', 'c'], ['h'], 'gemmA', { transA: 1 }),
      makeNode('Relu', ['h'], ['r'], 'relu'),
      makeNode('Gemm', ['r', 'w2', 'c2'], ['y'], 'gemm2', { transB: 1 }),
    ];
    const initializers = [
      { name: 'w', dims: [32, 16], data: seededFloats(512, 1) }, { name: 'c', dims: [16], data: seededFloats(16, 2) },
      { name: 'w2', dims: [8, 16], data: seededFloats(128, 3) }, { name: 'c2', dims: [8], data: seededFloats(8, 4) },
    ];
    const V = { name: 'v', shape: [1, 32] };
    const m = tinyModel({ opset: 13, input: V, outputs: ['y'], nodes, initializers });
    const ranges = { v: [-1, 1], vt: [-1, 1], h: [-8, 8], r: [0, 8], y: [-20, 20] } as Record<string, [number, number]>;
    const runs = async (q: ReturnType<typeof quantizeModel>) => {
      const s = await createSession(q.model.toBytes());
      const out = await runSession(s, { v: floatTensor(seededFloats(32, 9), V.shape) });
      await s.release();
      return out.y!.data as Float32Array;
    };
    // gemmA stays float (an int8 Gemm takes A untransposed) between quantized tensors
    const unrecorded = quantizeModel(m, ranges, { shieldFloatLayers: true });
    expect(unrecorded.result.quantizedNodes).not.toContain('gemmA');
    expect(unrecorded.model.graph.node('gemmA')!.input![0]).not.toMatch(/per_channel/);
    expect((await runs(unrecorded)).length).toBe(8);
    const recorded = tinyModel({ opset: 13, input: V, outputs: ['y'], nodes, initializers });
    recorded.graph.proto.valueInfo!.push(makeValueInfo('vt', DataType.FLOAT, [32, 1]));
    const shielded = quantizeModel(recorded, ranges, { shieldFloatLayers: true });
    const a = shielded.model.graph.node('gemmA')!.input![0]!;
    expect(a).toMatch(/per_channel/);
    expect(shielded.model.graph.getTensor(shielded.model.graph.producer(a)!.input![1]!).dims).toEqual([1]);
    expect((await runs(shielded)).length).toBe(8);
  });

  it('a layer kept float for its output activation stores weight-only int8 weights; excluded layers keep float weights', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Conv', ['c', 'w2', 'b2'], ['y'], 'conv2', { kernel_shape: [1, 1] }),
      ],
      initializers: [
        { name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) },
        { name: 'w2', dims: [8, 8, 1, 1], data: seededFloats(64, 5) }, { name: 'b2', dims: [8], data: seededFloats(8, 4) },
      ],
    });
    const xs = seededFloats(144, 9);
    const s0 = await createSession(m.toBytes(), { optimization: 'disabled' });
    const ref = (await runSession(s0, { x: floatTensor(xs, X.shape) })).y!.data as Float32Array;
    await s0.release();
    const ranges = { x: [-1, 1], c: [-6, 6], y: [Math.min(...ref), Math.max(...ref)] } as Record<string, [number, number]>;
    const means = new Map([['x', Float32Array.from({ length: 4 }, (_, i) => 0.3 * (i - 1.5))]]);
    const weightOnly = quantizeModel(m, ranges, { floatTensors: ['c'], inputMeans: means, weightOnlyFloatLayers: true });
    const g = weightOnly.model.graph;
    // conv keeps a float output (no Q/DQ on c) but reads w as int8 through Cast + Mul by its
    // per-channel scales (shaped to broadcast over the output channels)
    expect(g.node('conv')!.input![1]).toBe('w_dequantized');
    expect(g.getTensor('w_quantized').dataType).toBe(DataType.INT8);
    expect(g.producer('w_dequantized')!.opType).toBe('Mul');
    expect(g.producer('w_dequantized')!.input).toEqual(['w_int8_as_float', 'w_scale']);
    expect(getAttr(g.node('w_Cast')!, 'to')).toBe(DataType.FLOAT);
    expect(g.getTensor('w_scale').dims).toEqual([8, 1, 1, 1]);
    expect(g.hasInitializer('c_scale')).toBe(false);
    expect(g.hasInitializer('w')).toBe(false);
    // its float bias absorbs the mean shift of the rounded weights (input means given)
    expect(g.node('conv')!.input![2]).toBe('b_weight_only_corrected');
    expect(weightOnly.result.floatNodes.find((n) => n.name === 'conv')!.reason).toMatch(/weight-only/);
    // what the graph says is what onnxruntime runs, and it stays close to float
    const run = async (bytes: Uint8Array, optimization: 'disabled' | 'all') => {
      const s = await createSession(bytes, { optimization });
      const out = await runSession(s, { x: floatTensor(xs, X.shape) });
      await s.release();
      return out.y!.data as Float32Array;
    };
    const [plain, full] = [await run(weightOnly.model.toBytes(), 'disabled'), await run(weightOnly.model.toBytes(), 'all')];
    expect(Math.max(...plain.map((v, i) => Math.abs(v - full[i]!)))).toBeLessThan(1e-4);
    const step = (ranges.y![1] - ranges.y![0]) / 255;
    expect(Math.max(...full.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(3 * step);
    // conv2 reads the float c, so it is a float layer too: weight-only int8 like conv, not a float conv
    // on int8 weights with a quantized bias
    expect(g.node('conv2')!.input![1]).toBe('w2_dequantized');
    expect(g.node('conv2')!.input![2]).toBe('b2_weight_only_corrected');
    expect(weightOnly.result.floatNodes.find((n) => n.name === 'conv2')!.reason).toMatch(/reads an activation kept float/);
    expect(weightOnly.result.quantizedNodes).not.toContain('conv2');
    // excluded by name: float weights; by default (speed, see options.ts) float weights for both layers
    expect(quantizeModel(m, ranges, { exclude: ['conv'] }).model.graph.node('conv')!.input![1]).toBe('w');
    const fast = quantizeModel(m, ranges, { floatTensors: ['c'] }).model.graph;
    expect([fast.node('conv')!.input![1], fast.node('conv2')!.input![1], fast.node('conv2')!.input![2]]).toEqual(['w', 'w2', 'b2']);
  });
  it('weight-only weights as Cast + Mul: the values of DequantizeLinear, folded by onnxruntime into a float initializer', async () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Relu', ['c'], ['r'], 'relu'),
        makeNode('Conv', ['r', 'w2', 'b2'], ['y'], 'conv2', { kernel_shape: [1, 1] }),
      ],
      initializers: [
        { name: 'w', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) },
        { name: 'w2', dims: [8, 8, 1, 1], data: seededFloats(64, 5) }, { name: 'b2', dims: [8], data: seededFloats(8, 4) },
      ],
    });
    const ranges = { x: [-1, 1], c: [-6, 6], r: [0, 6], y: [-8, 8] } as Record<string, [number, number]>;
    const opts = { floatTensors: ['c'], weightOnlyFloatLayers: true as const };
    const folded = quantizeModel(m, ranges, opts).model;
    const dq = quantizeModel(m, ranges, { ...opts, foldableWeightOnly: false }).model;
    expect(dq.graph.producer('w_dequantized')!.opType).toBe('DequantizeLinear');
    expect(folded.graph.producer('w_dequantized')!.opType).toBe('Mul');
    // the same numbers either way
    const xs = seededFloats(144, 9);
    const run = async (bytes: Uint8Array) => {
      const s = await createSession(bytes, { optimization: 'all' });
      const out = await runSession(s, { x: floatTensor(xs, X.shape) });
      await s.release();
      return out.y!.data as Float32Array;
    };
    expect(Array.from(await run(folded.toBytes()))).toEqual(Array.from(await run(dq.toBytes())));
    // what onnxruntime runs: no Cast or Mul left (folded at load); the DequantizeLinear form keeps its node
    const optimizedOps = async (bytes: Uint8Array) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-fold-'));
      try {
        const file = path.join(dir, 'optimized.onnx');
        const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'basic', optimizedModelFilePath: file });
        await s.release();
        return loadModel(file).graph.nodes.map((n) => n.opType);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const foldedOps = await optimizedOps(folded.toBytes());
    expect(foldedOps).not.toContain('Cast');
    expect(foldedOps).not.toContain('Mul');
    expect((await optimizedOps(dq.toBytes())).filter((o) => o === 'DequantizeLinear').length).toBeGreaterThan(foldedOps.filter((o) => o === 'DequantizeLinear').length);
    // the MAC count still finds the weights behind Cast + Mul
    expect((await countMacs(folded)).total).toBe((await countMacs(m)).total);
  });
  it('Relu(x) and Relu(-x) as +1/-1 depthwise convs take x\'s grid, so they are exact', async () => {
    const sq = { name: 'x', shape: [1, 4, 6, 6] };
    const m = tinyModel({
      opset: 13, input: sq, outputs: ['pos', 'neg'],
      nodes: [
        makeNode('Conv', ['x', 'one'], ['xp'], 'pos_conv', { group: 4, kernel_shape: [1, 1] }),
        makeNode('Relu', ['xp'], ['pos'], 'pos_relu'),
        makeNode('Conv', ['x', 'minus'], ['xn'], 'neg_conv', { group: 4, kernel_shape: [1, 1] }),
        makeNode('Relu', ['xn'], ['neg'], 'neg_relu'),
      ],
      initializers: [{ name: 'one', dims: [4, 1, 1, 1], data: [1, 1, 1, 1] }, { name: 'minus', dims: [4, 1, 1, 1], data: [-1, -1, -1, -1] }],
    });
    const ranges = { x: [-0.7, 1.3], xp: [-0.7, 1.3], pos: [0, 1.3], xn: [-1.3, 0.7], neg: [0, 0.7] } as Record<string, [number, number]>;
    const exact = quantizeModel(m, ranges);
    const p = exact.result.params;
    expect(p.pos!.scale).toBe(p.x!.scale);
    expect(p.neg!.scale).toBe(p.x!.scale);
    expect([p.pos!.zeroPoint, p.neg!.zeroPoint]).toEqual([0, 0]);
    expect(quantizeModel(m, ranges, { exactSignConvs: false }).result.params.pos!.scale).not.toBe(p.x!.scale);
    // onnxruntime's result is Relu(+-x) of x's dequantized grid values, exactly
    const s = await createSession(exact.model.toBytes());
    const xs = seededFloats(144, 5);
    const out = await runSession(s, { x: floatTensor(xs, sq.shape) });
    await s.release();
    const qx = Array.from(xs, (v) => (Math.min(255, Math.max(0, Math.round(v / p.x!.scale) + p.x!.zeroPoint)) - p.x!.zeroPoint) * p.x!.scale);
    const pos = out.pos!.data as Float32Array;
    const neg = out.neg!.data as Float32Array;
    qx.forEach((v, i) => {
      expect(pos[i]).toBeCloseTo(Math.max(v, 0), 6);
      expect(neg[i]).toBeCloseTo(Math.max(-v, 0), 6);
    });
  });
  it('a tensor without a calibrated range is a coded error, not a guess', () => {
    let err: unknown;
    try { quantizeModel(convModel([makeNode('Relu', ['c'], ['y'], 'relu')]), { x: [-1, 1] }); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_QUANTIZE')).toBe(true);
    expect((err as Error).message).toMatch(/no calibrated range/);
  });
  it('refuses an already quantized graph', () => {
    const q = quantizeModel(convModel([makeNode('Relu', ['c'], ['y'], 'relu')]), { x: [-1, 1], c: [-6, 6], y: [0, 6] });
    let err: unknown;
    try { assertFloatModel(q.model, 'q.onnx'); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_ALREADY_QUANTIZED')).toBe(true);
    expect((err as Error).message).toMatch(/QuantizeLinear/);
  });
  it('deterministic: the same inputs give byte-identical graphs', () => {
    const a = quantizeModel(convModel([makeNode('Relu', ['c'], ['y'], 'relu')]), { x: [-1, 1], c: [-6, 6], y: [0, 6] });
    const b = quantizeModel(convModel([makeNode('Relu', ['c'], ['y'], 'relu')]), { x: [-1, 1], c: [-6, 6], y: [0, 6] });
    expect(Buffer.from(a.model.toBytes()).equals(Buffer.from(b.model.toBytes()))).toBe(true);
  });
});

describe('shape arithmetic stays integer', () => {
  it('Shape -> Gather -> Unsqueeze -> Concat -> Reshape (view(N, -1)) is not quantized', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 2, 3, 3] }, outputs: ['y'],
      nodes: [
        makeNode('Shape', ['x'], ['s'], 'shape'),
        makeNode('Gather', ['s', 'zero'], ['n'], 'gather', { axis: 0 }),
        makeNode('Unsqueeze', ['n', 'axes'], ['nu'], 'unsq'),
        makeNode('Concat', ['nu', 'minus1'], ['shp'], 'cat', { axis: 0 }),
        makeNode('Reshape', ['x', 'shp'], ['y'], 'reshape'),
      ],
      initializers: [
        { name: 'zero', dataType: DataType.INT64, dims: [], data: [0] },
        { name: 'axes', dataType: DataType.INT64, dims: [1], data: [0] },
        { name: 'minus1', dataType: DataType.INT64, dims: [1], data: [-1] },
      ],
    });
    const q = quantizeModel(m, { x: [-1, 1], y: [-1, 1] });
    expect(Object.keys(q.result.params).sort()).toEqual(['x', 'y']);
    expect((await maxOutputDiff(m.toBytes(), q.model.toBytes(), [2, 2, 3, 3])).maxAbs).toBeLessThan(0.01);
  });
});
