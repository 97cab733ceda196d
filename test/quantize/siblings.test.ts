import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { mergeSiblingConvs, normalizeSiblingRanges } from '../../pipeline/quantize/rewrites/siblings.js';
import { describePadding, padChannels } from '../../pipeline/quantize/rewrites/pad-channels.js';
import { prepareFloatGraph, FP32_REWRITES, quantizeModel } from '../../pipeline/quantize/index.js';
import { collectActivationStats } from '../../pipeline/calibrate/run.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { itExactInt8 } from '../helpers/int8-exact.js';

const X = { name: 'x', shape: [1, 4, 8, 8] };

/** A detector-like head: three 3x3 convolutions on one map (2, 8 and 3 channels, one without bias), a 1x1 beside them, and a Sigmoid on the scores. */
function heads() {
  return tinyModel({
    opset: 13, input: X, outputs: ['score', 'box', 'kps', 'side'],
    nodes: [
      makeNode('Relu', ['x'], ['f'], 'relu'),
      makeNode('Conv', ['f', 'ws', 'bs'], ['s'], 'cls', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Sigmoid', ['s'], ['score'], 'sigmoid'),
      makeNode('Conv', ['f', 'wb', 'bb'], ['box'], 'reg', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Conv', ['f', 'wk'], ['kps'], 'kps', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Conv', ['f', 'w1'], ['side'], 'pointwise', { kernel_shape: [1, 1] }),
    ],
    initializers: [
      { name: 'ws', dims: [2, 4, 3, 3], data: seededFloats(72, 1) }, { name: 'bs', dims: [2], data: [-4, -3] },
      { name: 'wb', dims: [8, 4, 3, 3], data: seededFloats(288, 2).map((v) => v * 0.02) }, { name: 'bb', dims: [8], data: seededFloats(8, 3).map((v) => v + 3) },
      { name: 'wk', dims: [3, 4, 3, 3], data: seededFloats(108, 4).map((v) => v * 2) },
      { name: 'w1', dims: [5, 4, 1, 1], data: seededFloats(20, 5) },
    ],
  });
}

describe('sibling convolutions merged into one', () => {
  it('merges convolutions with one input and one geometry, exactly, and leaves the others', async () => {
    const m = heads();
    const merged = m.clone();
    const r = mergeSiblingConvs(merged.graph);
    merged.graph.toposort();
    expect(r).toHaveLength(1);
    expect(r[0]!.merged).toEqual(['cls', 'reg', 'kps']);
    const h = merged.graph.opHistogram();
    expect(h.Conv).toBe(2);
    expect(h.Split).toBe(1);
    expect(merged.graph.getTensor(merged.graph.producer(r[0]!.output)!.input![1]!).dims).toEqual([13, 4, 3, 3]);
    // the old weights are gone (no dead initializers in the file)
    for (const w of ['ws', 'bs', 'wb', 'bb', 'wk']) expect(merged.graph.hasInitializer(w)).toBe(false);
    expect((await maxOutputDiff(m.toBytes(), merged.toBytes(), X.shape)).maxAbs).toBeLessThan(1e-5);
  });

  it('is part of the --fp32 rewrites', () => {
    const m = heads();
    expect(prepareFloatGraph(m, FP32_REWRITES).siblings).toHaveLength(1);
    expect(prepareFloatGraph(heads(), { ...FP32_REWRITES, mergeSiblingConvs: false }).siblings).toHaveLength(0);
  });

  itExactInt8('normalizing the parts keeps the float function and lets one int8 scale serve parts of different ranges', async () => {
    const m = heads();
    const r = mergeSiblingConvs(m.graph);
    m.graph.toposort();
    const batches = Array.from({ length: 4 }, (_, i) => ({ data: seededFloats(256, 20 + i).map((v) => v * 3), dims: [1, 4, 8, 8] }));
    const stats = await collectActivationStats(m, batches, { method: 'minmax' });
    const ranges: Record<string, readonly [number, number]> = Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const));
    const unionRanges = { ...ranges };
    const normalized = m.clone();
    const restored = normalizeSiblingRanges(normalized.graph, r, ranges);
    expect(ranges[r[0]!.output]).toEqual([-1, 1]);
    expect(restored).toEqual(expect.arrayContaining(['s', 'box', 'kps']));
    expect((await maxOutputDiff(m.toBytes(), normalized.toBytes(), X.shape)).maxAbs).toBeLessThan(1e-4);
    // quantized: each part's error stays within a few steps of its own range, not of the union's
    const q = quantizeModel(normalized, ranges, { floatTensors: restored }).model;
    expect(q.graph.opHistogram().QuantizeLinear).toBeGreaterThan(0);
    const plain = quantizeModel(m, unionRanges).model;
    const run = async (bytes: Uint8Array) => {
      const s = await createSession(bytes);
      const out = await runSession(s, { x: floatTensor(batches[0]!.data, batches[0]!.dims) });
      await s.release();
      return out;
    };
    const f = await run(m.toBytes());
    const a = await run(q.toBytes());
    const b = await run(plain.toBytes());
    const err = (o: typeof f, k: string) => Math.max(...Array.from(o[k]!.data as Float32Array, (v, i) => Math.abs(v - (f[k]!.data as Float32Array)[i]!)));
    const step = (k: string) => (ranges[k]![1] - ranges[k]![0]) / 255;
    for (const k of ['box', 'kps']) expect(err(a, k)).toBeLessThan(8 * step(k));
    // the union of the parts' ranges (here ~10x the box part's) costs the narrow part its precision
    expect(unionRanges[r[0]!.output]![1] - unionRanges[r[0]!.output]![0]).toBeGreaterThan(5 * (ranges.box![1] - ranges.box![0]));
    expect(err(a, 'box')).toBeLessThan(err(b, 'box') / 2);
  });

  it('pads the merged convolution to 16 output channels for int8 (a Split part nobody reads), exactly, and normalizing skips that part', async () => {
    const m = heads();
    const r = mergeSiblingConvs(m.graph);
    m.graph.toposort();
    const padded = m.clone();
    const p = padChannels(padded.graph);
    const conv = r[0]!.node;
    expect(p).toEqual([{ producer: conv, from: 13, to: 16, depthwise: [], readers: [`${conv}_split`] }]);
    expect(describePadding(p)).toBe('1 channel set padded to multiples of 16 (13 -> 16)');
    const g = padded.graph;
    const split = g.node(`${conv}_split`)!;
    expect(Array.from(g.getTensor(split.input![1]!).data as ArrayLike<number | bigint>, Number)).toEqual([2, 8, 3, 3]);
    expect(split.output).toHaveLength(4);
    expect(g.consumers(split.output![3]!)).toEqual([]);
    expect(g.getTensor(g.producer(r[0]!.output)!.input![1]!).dims).toEqual([16, 4, 3, 3]);
    expect((await maxOutputDiff(m.toBytes(), padded.toBytes(), X.shape)).maxAbs).toBe(0);
    // ranges come from calibration of the padded graph; the unread part gets no Mul/Add and keeps its zeros
    const batches = Array.from({ length: 2 }, (_, i) => ({ data: seededFloats(256, 40 + i).map((v) => v * 3), dims: [1, 4, 8, 8] }));
    const stats = await collectActivationStats(padded, batches, { method: 'minmax' });
    const ranges: Record<string, readonly [number, number]> = Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const));
    delete ranges[split.output![3]!];
    const restored = normalizeSiblingRanges(g, r, ranges);
    expect(restored).toHaveLength(6); // rescaled + restored tensor of each of the three read parts
    expect(ranges[r[0]!.output]).toEqual([-1, 1]);
    expect((await maxOutputDiff(m.toBytes(), padded.toBytes(), X.shape)).maxAbs).toBeLessThan(1e-4);
  });

  it('quantized, the Split reads the 8-bit tensor and each part read gets its own DequantizeLinear: the same outputs', async () => {
    const m = heads();
    const r = mergeSiblingConvs(m.graph);
    m.graph.toposort();
    padChannels(m.graph); // the unread part must stay without a DequantizeLinear
    const batches = Array.from({ length: 2 }, (_, i) => ({ data: seededFloats(256, 60 + i).map((v) => v * 3), dims: [1, 4, 8, 8] }));
    const stats = await collectActivationStats(m, batches, { method: 'minmax' });
    const ranges: Record<string, readonly [number, number]> = Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const));
    const restored = normalizeSiblingRanges(m.graph, r, ranges);
    const moved = quantizeModel(m, ranges, { floatTensors: restored }).model;
    const kept = quantizeModel(m, ranges, { floatTensors: restored, splitQuantized: false }).model;
    const split = (q: typeof moved) => q.graph.nodes.find((n) => n.opType === 'Split')!;
    expect(moved.graph.producer(split(moved).input![0]!)!.opType).toBe('QuantizeLinear');
    expect(kept.graph.producer(split(kept).input![0]!)!.opType).toBe('DequantizeLinear');
    const readers = split(moved).output!.map((o) => moved.graph.consumers(o).map((c) => c.opType));
    expect(readers).toEqual([['DequantizeLinear'], ['DequantizeLinear'], ['DequantizeLinear'], []]);
    expect((await maxOutputDiff(kept.toBytes(), moved.toBytes(), X.shape)).maxAbs).toBe(0);
  });
});
