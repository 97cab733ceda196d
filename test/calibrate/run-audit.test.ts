/**
 * The calibration loop's bookkeeping (mutation audit): which tensors are calibrated (float activations,
 * not initializers, integer tensors or Constant outputs), each counted once; progress in samples, not
 * batches; a model exported with a fixed batch of 4 measured per item (its sizes divided by the batch, the
 * SAMPLE_ABOVE boundary itself kept whole).
 */
import { describe, expect, it } from 'vitest';
import { DataType, loadModel, makeNode, makeTensor, makeValueInfo } from '../../pipeline/onnx/index.js';
import { activationTensors, collectActivationStats, exposeTensors, fixedBatchOf, sampleCount, type InputBatch } from '../../pipeline/calibrate/run.js';
import { SAMPLE_ABOVE } from '../../pipeline/calibrate/collectors.js';
import type { TensorStats } from '../../pipeline/calibrate/collectors.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

/** Values in a tensor's histogram (the values the collector saw, sampled or not). */
const seen = (s: TensorStats) => [...s.histogram!.positive, ...s.histogram!.negative].reduce((a, b) => a + b, 0);

describe('activationTensors and exposeTensors', () => {
  it('lists float activations once: the graph input and node outputs, not initializers listed as inputs, integer tensors or Constant outputs', () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 2] }, outputs: ['y'],
      nodes: [
        makeNode('Constant', [], ['k'], 'const', { value: makeTensor('kv', DataType.FLOAT, [2], [1, 2]) }),
        makeNode('Add', ['x', 'k'], ['a'], 'add'),
        makeNode('Mul', ['a', 'w'], ['y'], 'mul'),
        makeNode('Shape', ['a'], ['s'], 'shape'),
        makeNode('Greater', ['a', 'x'], ['g'], 'greater'),
      ],
      initializers: [{ name: 'w', dims: [2], data: [0.5, 0.25] }],
    });
    // an old-style export lists its initializers among the graph inputs too
    m.graph.proto.input!.push(makeValueInfo('w', DataType.FLOAT, [2]));
    expect(activationTensors(m)).toEqual(['x', 'a', 'y']);
  });

  it('a tensor that is already a graph output is not exposed twice', () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 2] }, outputs: ['y'],
      nodes: [makeNode('Relu', ['x'], ['r'], 'relu'), makeNode('Neg', ['r'], ['y'], 'neg')],
    });
    const names = loadModel(exposeTensors(m, ['r', 'y'])).graph.proto.output!.map((o) => o.name);
    expect(names).toEqual(['y', 'r']);
  });
});

describe('collectActivationStats bookkeeping', () => {
  const relu = () => tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 4] }, outputs: ['y'],
    nodes: [makeNode('Relu', ['x'], ['y'], 'relu')],
  });

  it('counts samples (batch items), in progress and in sampleCount, and the graph input once', async () => {
    const batches: InputBatch[] = [2, 3, 1].map((n, i) => ({ data: seededFloats(n * 4, 30 + i), dims: [n, 4] }));
    expect(sampleCount(batches)).toBe(6);
    const progress: number[] = [];
    const stats = await collectActivationStats(relu(), batches, { method: 'minmax', onProgress: (d) => progress.push(d) });
    expect(progress).toEqual([2, 5, 6]);
    expect(stats.x!.count).toBe(24);
    expect(stats.y!.count).toBe(24);
  });
});

describe('a model exported with a fixed batch of 4', () => {
  // x [4,1,64,64] (4096 per item) -> conv to 4 channels: c holds exactly SAMPLE_ABOVE values per item
  // (kept whole) -> conv to 8 channels: b holds twice that (sampled)
  const model = () => tinyModel({
    opset: 13, input: { name: 'x', shape: [4, 1, 64, 64] }, outputs: ['b'],
    nodes: [
      makeNode('Conv', ['x', 'w1'], ['c'], 'conv1', { kernel_shape: [1, 1] }),
      makeNode('Conv', ['c', 'w2'], ['b'], 'conv2', { kernel_shape: [1, 1] }),
    ],
    initializers: [{ name: 'w1', dims: [4, 1, 1, 1], data: [1, -2, 0.5, 3] }, { name: 'w2', dims: [8, 4, 1, 1], data: seededFloats(32, 5) }],
  });
  const batches = (): InputBatch[] => [0, 1].map((i) => ({ data: seededFloats(4 * 64 * 64, 40 + i), dims: [4, 1, 64, 64] }));

  it('is measured on its whole batch, sizes per item: a tensor of exactly SAMPLE_ABOVE values is whole, a larger one sampled', async () => {
    const m = model();
    expect(fixedBatchOf(m)).toBe(4);
    expect(4 * 64 * 64).toBe(SAMPLE_ABOVE);
    const stats = await collectActivationStats(m, batches(), { method: 'percentile', settings: { sampleStride: 16 } });
    expect(stats.x!.count).toBe(2 * 4 * 4096);
    expect(stats.c!.count).toBe(2 * 4 * SAMPLE_ABOVE);
    // c: every value went into its histogram; b: every 16th
    expect(seen(stats.c!)).toBe(stats.c!.count);
    expect(stats.b!.count).toBe(2 * 4 * 2 * SAMPLE_ABOVE);
    expect(seen(stats.b!)).toBe(stats.b!.count / 16);
  });
});

describe('a sampled tensor with NaN or ±Infinity in a batch', () => {
  // x [N,8,64,64] -> Abs -> Log: Log(0) is -Infinity, a NaN input stays NaN; a and y are sampled (32768 values per item)
  const model = () => tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 8, 64, 64] }, outputs: ['y'],
    nodes: [makeNode('Abs', ['x'], ['a'], 'abs'), makeNode('Log', ['a'], ['y'], 'log')],
  });
  const per = 2 * 8 * 64 * 64;
  // batch 1: one -Infinity and one NaN (at positions the every-16th sample skips); batch 3: y all -Infinity
  const batches = (): InputBatch[] => [0, 1, 2, 3].map((i) => {
    const data = i === 3 ? new Float32Array(per) : seededFloats(per, 60 + i).map((v) => v * 10);
    if (i === 1) { data[7] = 0; data[1000] = Number.NaN; }
    return { data, dims: [2, 8, 64, 64] };
  });

  it('keeps that batch\'s finite min, max and count, and counts its non-finite values, as the full pass does', async () => {
    expect(8 * 64 * 64).toBeGreaterThan(SAMPLE_ABOVE);
    for (const method of ['minmax', 'percentile'] as const) {
      const full = await collectActivationStats(model(), batches(), { method, settings: { sampleStride: 1 } });
      const sampled = await collectActivationStats(model(), batches(), { method, settings: { sampleStride: 16 } });
      for (const t of ['a', 'y']) {
        const pick = (s: TensorStats) => ({ min: s.min, max: s.max, count: s.count, nonFinite: s.nonFinite });
        expect(pick(sampled[t]!), `${method} ${t}`).toEqual(pick(full[t]!));
      }
      expect(full.y!.nonFinite).toBe(2 + per);
      expect(full.y!.count).toBe(3 * per - 2);
      if (method === 'minmax') expect(sampled.y!.range).toEqual(full.y!.range);
      // the histogram holds the same every-16th values as for a batch without them: 3 batches' worth
      else expect(seen(sampled.y!)).toBe(3 * Math.ceil(per / 16));
    }
  });
});
