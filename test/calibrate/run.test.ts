import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { buildProbe, collectActivationStats, latestProducedFirst, type InputBatch } from '../../pipeline/calibrate/run.js';
import { loadModel } from '../../pipeline/onnx/index.js';
import { SAMPLE_ABOVE } from '../../pipeline/calibrate/collectors.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

// x [N,8,64,64] -> conv 1x1 (16 ch, 65536 values per item: sampled) -> relu -> pool to [N,16,1,1] (small)
const model = () => tinyModel({
  opset: 13, input: { name: 'x', shape: ['N', 8, 64, 64] }, outputs: ['p'],
  nodes: [
    makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [1, 1] }),
    makeNode('Relu', ['c'], ['r'], 'relu'),
    makeNode('GlobalAveragePool', ['r'], ['p'], 'pool'),
  ],
  initializers: [{ name: 'w', dims: [16, 8, 1, 1], data: seededFloats(128, 1).map((v) => v * 3) }, { name: 'b', dims: [16], data: seededFloats(16, 2) }],
});
const batches = (): InputBatch[] => [0, 1, 2, 3].map((i) => ({ data: seededFloats(2 * 8 * 64 * 64, 10 + i), dims: [2, 8, 64, 64] }));

describe('collectActivationStats: in-graph reductions and sampled histograms', () => {
  it('min, max and count stay exact when big activations are sampled; small ones are whole', async () => {
    const full = await collectActivationStats(model(), batches(), { method: 'percentile', settings: { sampleStride: 1 } });
    const sampled = await collectActivationStats(model(), batches(), { method: 'percentile', settings: { sampleStride: 17 } });
    expect(8 * 64 * 64).toBeGreaterThan(SAMPLE_ABOVE);
    for (const t of ['x', 'c', 'r', 'p']) {
      expect(sampled[t]!.min).toBe(full[t]!.min);
      expect(sampled[t]!.max).toBe(full[t]!.max);
      expect(sampled[t]!.count).toBe(full[t]!.count);
    }
    expect(full.c!.count).toBe(4 * 2 * 16 * 64 * 64);
    const total = (t: string, s: typeof full) => [...s[t]!.histogram!.positive, ...s[t]!.histogram!.negative].reduce((a, b) => a + b, 0);
    // the graph input and the small pooled tensor are never sampled
    expect(sampled.p!.histogram).toEqual(full.p!.histogram);
    expect(total('x', sampled)).toBe(full.x!.count);
    // c: every batch sampled alike, every 17th value (sizes come from a separate one-item run)
    const per = 2 * 16 * 64 * 64;
    expect(total('c', sampled)).toBe(4 * Math.ceil(per / 17));
    // the sampled percentile lands near the exact one
    const [lo, hi] = full.c!.range;
    const [slo, shi] = sampled.c!.range;
    expect(Math.abs(shi - hi) / (hi - lo)).toBeLessThan(0.05);
    expect(Math.abs(slo - lo) / (hi - lo)).toBeLessThan(0.05);
  });

  it('minmax needs no sample at all and matches the full pass', async () => {
    const full = await collectActivationStats(model(), batches(), { method: 'minmax', settings: { sampleStride: 1 } });
    const reduced = await collectActivationStats(model(), batches(), { method: 'minmax' });
    expect(reduced).toEqual(full);
  });

  it('refuses a bad stride with a named argument error', async () => {
    await expect(collectActivationStats(model(), batches(), { method: 'minmax', settings: { sampleStride: 0 } })).rejects.toThrow(/sampleStride/);
  });
});

describe('calibration probe layout', () => {
  it('orders tensors latest-produced first, graph inputs last', () => {
    expect(latestProducedFirst(model(), ['c', 'x', 'p', 'r'])).toEqual(['p', 'r', 'c', 'x']);
  });

  it("appends each tensor's probe nodes latest tensor first, so onnxruntime runs them right after the producer", () => {
    const probe = buildProbe(model(), { full: ['p'], sampled: ['c', 'r'] }, 17, true);
    const nodes = loadModel(probe.bytes).graph.nodes;
    const firstReader = (t: string) => nodes.findIndex((n) => n.name?.startsWith('faceopt_calibration') && n.input?.[0] === t);
    // the original graph comes first, untouched
    expect(nodes.slice(0, 3).map((n) => n.name)).toEqual(['conv', 'relu', 'pool']);
    expect(firstReader('r')).toBeLessThan(firstReader('c'));
    // every sampled tensor has exact min/max/size plus a strided sample among the outputs, in tensor order
    expect(probe.outputs).toEqual(['p', ...['c', 'r'].flatMap((t) => ['min', 'max', 'size', 'sum', 'sample'].map((k) => `faceopt_calibration_${k}:${t}`))]);
  });
});
