import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { rewritePrelus } from '../../pipeline/quantize/rewrites/prelu.js';
import { floatClosure } from '../../pipeline/quantize/float-layers.js';
import { collectActivationStats } from '../../pipeline/calibrate/run.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { itExactInt8 } from '../helpers/int8-exact.js';

const X = { name: 'x', shape: ['N', 4, 6, 6] };
const DIMS = [2, 4, 6, 6];
// conv1 -> PRelu -> conv2 (ungrouped) -> Add(residual from conv1's input path) : the PRelu as sign-dw or sign-concat
const model = (form: 'sign-dw' | 'sign-concat' | 'residual-dw') => {
  const m = tinyModel({
    opset: 13, input: X, outputs: ['y'],
    nodes: [
      makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'conv1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('PRelu', ['c1', 'slope'], ['p'], 'prelu'),
      makeNode('Conv', ['p', 'w2', 'b2'], ['c2'], 'conv2', { kernel_shape: [1, 1] }),
      makeNode('Add', ['c2', 'x'], ['y'], 'residual'),
    ],
    initializers: [
      { name: 'w1', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b1', dims: [8], data: seededFloats(8, 2) },
      { name: 'slope', dims: [8, 1, 1], data: seededFloats(8, 3).map((v) => v * 3) },
      { name: 'w2', dims: [4, 8, 1, 1], data: seededFloats(32, 4) }, { name: 'b2', dims: [4], data: seededFloats(4, 5) },
    ],
  });
  rewritePrelus(m.graph, form);
  return m;
};
const xs = seededFloats(2 * 4 * 36, 9);
const run = async (bytes: Uint8Array) => {
  const s = await createSession(bytes);
  const out = (await runSession(s, { x: floatTensor(xs, DIMS) })).y!.data as Float32Array;
  await s.release();
  return out;
};
const rangesOf = async (m: ReturnType<typeof tinyModel>) => {
  const stats = await collectActivationStats(m, [{ data: xs, dims: DIMS }], { method: 'minmax' });
  return Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const));
};
/**
 * A chain of Convs on X (4 channels): each layer's weights w_<name>, bias b_<name> and output
 * <name>_out, the last one's output y. 3x3 layers are padded to keep the size.
 */
const convChain = (layers: { name: string; out: number; kernel: 1 | 3; group?: number; stride?: number; relu?: boolean }[]) => {
  let input = 'x';
  let channels = 4;
  const nodes: ReturnType<typeof makeNode>[] = [];
  const initializers: { name: string; dims: number[]; data: Float32Array }[] = [];
  layers.forEach((l, i) => {
    const group = l.group ?? 1;
    const output = i === layers.length - 1 ? 'y' : `${l.name}_out`;
    const dims = [l.out, channels / group, l.kernel, l.kernel];
    const stride = l.stride ?? 1;
    nodes.push(makeNode('Conv', [input, `w_${l.name}`, `b_${l.name}`], [l.relu ? `${l.name}_pre` : output], l.name, { kernel_shape: [l.kernel, l.kernel], pads: l.kernel === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0], group, strides: [stride, stride] }));
    if (l.relu) nodes.push(makeNode('Relu', [`${l.name}_pre`], [output], `${l.name}_relu`));
    initializers.push({ name: `w_${l.name}`, dims, data: seededFloats(dims.reduce((a, b) => a * b, 1), 2 * i + 1) });
    initializers.push({ name: `b_${l.name}`, dims: [l.out], data: seededFloats(l.out, 2 * i + 2) });
    input = output;
    channels = l.out;
  });
  return tinyModel({ opset: 13, input: X, outputs: ['y'], nodes, initializers });
};
/** Largest difference between onnxruntime without and with full optimisation: it runs what the graph says. */
const ortDrift = async (m: ReturnType<typeof tinyModel>) => {
  const [plain, full] = await Promise.all((['disabled', 'all'] as const).map(async (optimization) => {
    const s = await createSession(m.toBytes(), { optimization });
    const out = (await runSession(s, { x: floatTensor(xs, DIMS) })).y!.data as Float32Array;
    await s.release();
    return out;
  }));
  return Math.max(...plain!.map((v, i) => Math.abs(v - full![i]!)));
};

describe('float regions around a PRelu kept float', () => {
  it('a float pre-activation takes the sign-dw halves, the slope and their Add with it, but not the residual Add', () => {
    const g = model('sign-dw').graph;
    const grown = floatClosure(g, ['c1']).sort();
    expect(grown).toEqual(['c1', 'p', 'prelu_an', 'prelu_neg', 'prelu_pos', 'prelu_xneg', 'prelu_xpos'].sort());
    expect(floatClosure(g, [])).toEqual([]);
    // a float half alone does not make the other half float; the Add then stays quantized-capable only if both are
    expect(floatClosure(g, ['prelu_an']).sort()).toEqual(['p', 'prelu_an']);
  });

  itExactInt8('residual-dw: a float pre-activation takes the slope conv and the Add with it; quantized, the PRelu is one depthwise conv and an Add', async () => {
    const m = model('residual-dw');
    // slopes above 1 negate their channels in conv1 and conv2: no PRelu, one slope conv, two Adds
    expect(m.graph.opHistogram()).toEqual({ Conv: 3, Relu: 1, Add: 2 });
    expect(floatClosure(m.graph, ['c1']).sort()).toEqual(['c1', 'p', 'prelu_m', 'prelu_xm'].sort());
    expect(floatClosure(m.graph, ['prelu_m']).sort()).toEqual(['prelu_m']);
    const ranges = await rangesOf(m);
    const q = quantizeModel(m, ranges);
    // the slope conv's Relu folds into its uint8 range: Conv + Add, both int8
    expect(q.model.graph.opHistogram().Relu).toBeUndefined();
    expect(q.result.foldedActivations).toEqual(['prelu_slope_relu']);
    const [ref, got] = [await run(m.toBytes()), await run(q.model.toBytes())];
    const amax = Math.max(...ref.map(Math.abs));
    expect(Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(0.05 * amax);
    const f = quantizeModel(m, ranges, { floatTensors: ['c1'] }).model.graph;
    const quantized = new Set(f.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input![0]!));
    for (const t of ['c1', 'prelu_m', 'p']) expect(quantized.has(t)).toBe(false);
  });

  it('quantizing with the pre-activation float: no Quantize/Dequantize inside the PRelu, conv2 a float layer with float weights, output close to float', async () => {
    const m = model('sign-dw');
    const ranges = await rangesOf(m);
    const q = quantizeModel(m, ranges, { floatTensors: ['c1'] });
    const g = q.model.graph;
    const quantized = new Set(g.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input![0]!));
    for (const t of ['c1', 'prelu_pos', 'prelu_neg', 'prelu_an', 'p']) expect(quantized.has(t)).toBe(false);
    // the halves keep their Relu (nothing folds it into a uint8 range)
    expect(g.nodes.filter((n) => n.opType === 'Relu')).toHaveLength(2);
    expect(g.node('conv2')!.input!.slice(1)).toEqual(['w2', 'b2']);
    expect(q.result.floatNodes.find((n) => n.name === 'conv2')?.reason).toMatch(/reads an activation kept float/);
    expect(quantized.has('c2')).toBe(true); // the layer's output is int8 again
    const [ref, got] = [await run(m.toBytes()), await run(q.model.toBytes())];
    const amax = Math.max(...ref.map(Math.abs));
    expect(Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(0.05 * amax);
  });

  itExactInt8('sign-concat: the halves and their Concat share the pre-activation grid (exact in int8)', async () => {
    const m = model('sign-concat');
    expect(m.graph.opHistogram().Concat).toBe(1);
    const ranges = await rangesOf(m);
    const q = quantizeModel(m, ranges);
    const p = q.result.params;
    expect(q.result.exactActivations.sort()).toEqual(['p', 'prelu_neg', 'prelu_pos']);
    for (const t of ['prelu_pos', 'prelu_neg', 'p']) expect([p[t]!.scale, p[t]!.zeroPoint]).toEqual([p.c1!.scale, 0]);
    const [ref, got] = [await run(m.toBytes()), await run(q.model.toBytes())];
    const amax = Math.max(...ref.map(Math.abs));
    expect(Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(0.05 * amax);
  });
});

describe('layers whose int8 kernel is slower than float', () => {
  it('a grouped (not depthwise) Conv stays float on the CPU path, shielded from onnxruntime re-quantizing it; TensorRT\'s setting quantizes it', async () => {
    const m = convChain([{ name: 'grouped', out: 4, kernel: 3, group: 2 }, { name: 'depthwise', out: 4, kernel: 3, group: 4 }]);
    const ranges = await rangesOf(m);
    const cpu = quantizeModel(m, ranges);
    expect(cpu.result.floatNodes.find((n) => n.name === 'grouped')?.reason).toMatch(/grouped convolution \(2 input and 2 output channels per group\)/);
    expect(cpu.result.quantizedNodes).toContain('depthwise');
    expect(cpu.model.graph.node('grouped')!.input![1]).toBe('w_grouped');
    // onnxruntime at full optimisation runs what the graph says (no QLinearConv for the float layer)
    expect(await ortDrift(cpu.model)).toBeLessThan(1e-4);
    expect(quantizeModel(m, ranges, { floatSlowInt8: false }).result.quantizedNodes).toContain('grouped');
  });
  itExactInt8('a strided depthwise conv reading a float layer stays float, so the border sits on its smaller output (floatStridedBorders)', async () => {
    const m = convChain([{ name: 'a', out: 8, kernel: 3 }, { name: 'dw', out: 8, kernel: 3, group: 8, stride: 2 }, { name: 'pw', out: 4, kernel: 1 }]);
    const ranges = await rangesOf(m);
    const q = quantizeModel(m, ranges, { exclude: ['a'] });
    const g = q.model.graph;
    const quantized = new Set(g.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input![0]!));
    expect(q.result.floatNodes.find((n) => n.name === 'dw')?.reason).toMatch(/strided depthwise conv reading a float layer/);
    expect(quantized.has('a_out')).toBe(false); // only float layers touch it: no Q/DQ (skipFloatOnlyActivations)
    expect(quantized.has('dw_out')).toBe(true);
    expect(q.result.quantizedNodes).toContain('pw');
    expect(await ortDrift(q.model)).toBeLessThan(1e-4);
    const [ref, got] = [await run(m.toBytes()), await run(q.model.toBytes())];
    expect(Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(0.05 * Math.max(...ref.map(Math.abs)));
    // off: the depthwise conv is int8 and reads a quantized a_out
    const off = quantizeModel(m, ranges, { exclude: ['a'], floatStridedBorders: false });
    expect(off.result.quantizedNodes).toContain('dw');
    expect(off.model.graph.consumers('a_out').map((n) => n.opType)).toContain('QuantizeLinear');
    // an unstrided depthwise conv is not moved
    const flat = convChain([{ name: 'a', out: 8, kernel: 3 }, { name: 'dw', out: 8, kernel: 3, group: 8 }, { name: 'pw', out: 4, kernel: 1 }]);
    expect(quantizeModel(flat, await rangesOf(flat), { exclude: ['a'] }).result.quantizedNodes).toContain('dw');
  });

  itExactInt8('a Relu folded into a range that ends up unquantized comes back as a node (the QuantizeLinear was its clamp)', async () => {
    // x float: conv a reads float, so it is float, after its Relu was folded; the strided depthwise conv
    // reading it is float too, so a_out gets no Q/DQ and its Relu must run as a node
    const m = convChain([{ name: 'a', out: 8, kernel: 3, relu: true }, { name: 'dw', out: 8, kernel: 3, group: 8, stride: 2 }, { name: 'pw', out: 4, kernel: 1 }]);
    const ranges = await rangesOf(m);
    const q = quantizeModel(m, ranges, { floatTensors: ['x'] });
    const g = q.model.graph;
    expect(g.consumers('a_out').some((n) => n.opType === 'QuantizeLinear')).toBe(false);
    expect(g.producer('a_out')?.opType).toBe('Relu');
    expect(q.result.foldedActivations).not.toContain('a_relu');
    const [ref, got] = [await run(m.toBytes()), await run(q.model.toBytes())];
    expect(Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(0.05 * Math.max(...ref.map(Math.abs)));
    // where a_out stays quantized for an int8 reader, the Relu stays folded into its uint8 range
    const kept = quantizeModel(m, ranges, { floatTensors: ['x'], floatStridedBorders: false });
    expect(kept.result.foldedActivations).toContain('a_relu');
    expect(kept.model.graph.producer('a_out')?.opType).toBe('Conv');
  });

  itExactInt8('a Relu folded into a graph output that stays float (detectors: quantizeGraphOutputs off) is kept as a node', async () => {
    const m = convChain([{ name: 'a', out: 8, kernel: 3 }, { name: 'head', out: 4, kernel: 1, relu: true }]);
    const ranges = await rangesOf(m);
    const q = quantizeModel(m, ranges, { quantizeGraphOutputs: false });
    expect(q.model.graph.producer('y')?.opType).toBe('Relu');
    const [ref, got] = [await run(m.toBytes()), await run(q.model.toBytes())];
    expect(Math.min(...got)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(0.05 * Math.max(...ref.map(Math.abs)));
    expect(quantizeModel(m, ranges).result.foldedActivations).toContain('head_relu'); // a quantized output keeps it folded
  });

  it('the Relu of a float layer runs with it in float: no Q/DQ between them', async () => {
    const m = convChain([{ name: 'a', out: 8, kernel: 3, relu: true }, { name: 'pw', out: 4, kernel: 1 }]);
    const ranges = await rangesOf(m);
    const q = quantizeModel(m, ranges, { exclude: ['a'] });
    const g = q.model.graph;
    expect(g.consumers('a_pre').map((n) => n.opType)).toEqual(['Relu']);
    expect(q.result.floatNodes.find((n) => n.name === 'a_relu')?.reason).toMatch(/activation function of a float layer/);
    expect(g.consumers('a_out').map((n) => n.opType)).toContain('QuantizeLinear');
    expect(await ortDrift(q.model)).toBeLessThan(1e-4);
  });
});

describe('the float-layer shield', () => {
  itExactInt8('only layers whose output is quantized get a per-channel DequantizeLinear; onnxruntime still runs the others float', async () => {
    // conv1 int8 -> conv2 (kept float: DequantizeLinear in, float out) -> conv3 (reads float) -> y
    const m = convChain([{ name: 'conv1', out: 8, kernel: 3 }, { name: 'conv2', out: 8, kernel: 3 }, { name: 'conv3', out: 4, kernel: 1 }]);
    const ranges = await rangesOf(m);
    const q = quantizeModel(m, ranges, { floatTensors: ['conv2_out'] });
    const g = q.model.graph;
    expect(g.node('conv2')!.input![0]).toBe('conv1_out_dequantized'); // the shared per-tensor node: no shield
    expect(g.node('conv2')!.input![1]).toBe('w_conv2');
    expect(await ortDrift(q.model)).toBeLessThan(1e-4);
    // excluded by name (output quantized): shielded
    const ex = quantizeModel(m, ranges, { exclude: ['conv2'] }).model.graph;
    expect(ex.node('conv2')!.input![0]).toBe('conv1_out_dequantized_per_channel');
  });
});

describe('weight-only int8 for float layers', () => {
  it("'auto' stores int8 weights for a large 1x1 conv only; true for every float layer; false for none", async () => {
    const m = convChain([{ name: 'conv3x3', out: 128, kernel: 3 }, { name: 'pointwise', out: 128, kernel: 1 }, { name: 'head', out: 4, kernel: 1 }]);
    const ranges = await rangesOf(m);
    const weightOf = (o: Parameters<typeof quantizeModel>[2]) => {
      const g = quantizeModel(m, ranges, { floatTensors: ['conv3x3_out'], ...o }).model.graph;
      return [g.node('conv3x3')!.input![1], g.node('pointwise')!.input![1]];
    };
    expect(weightOf({})).toEqual(['w_conv3x3', 'w_pointwise_dequantized']); // default 'auto'
    expect(weightOf({ weightOnlyFloatLayers: true })).toEqual(['w_conv3x3_dequantized', 'w_pointwise_dequantized']);
    expect(weightOf({ weightOnlyFloatLayers: false })).toEqual(['w_conv3x3', 'w_pointwise']);
  });
});
