/**
 * `residual-dw` on a real IResNet topology (the fixture builder's IResNet-18, w600k_r50's layout at a
 * smaller depth) with slopes pushed across 1, so channels are negated around PRelus whose producer is a
 * Conv with its BatchNorm folded and whose readers are a BatchNorm turned depthwise Conv, a 3x3 Conv and
 * a strided 1x1 downsample Conv: the float function must not change.
 */
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../pipeline/onnx/index.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { prepareFloatGraph, INT8_REWRITES } from '../../pipeline/quantize/index.js';
import { rewritePrelus } from '../../pipeline/quantize/rewrites/prelu.js';
import { encodeModel } from '../fixtures/index.js';
import { iresnet } from '../fixtures/iresnet.js';
import { maxOutputDiff } from '../onnx/compare.js';

describe('residual-dw on an IResNet-18 fixture', () => {
  it('negates channels with slopes above 1 through folded BatchNorms, depthwise BatchNorms and downsample convs, outputs unchanged', async () => {
    const original = loadModel(encodeModel(iresnet(18)));
    // slopes from -1.5 to 3: every PRelu gets channels above 1
    for (const n of original.graph.nodes.filter((p) => p.opType === 'PRelu')) {
      const s = n.input![1]!;
      const t = original.graph.getTensor(s);
      original.graph.setTensor(s, DataType.FLOAT, t.dims, Float32Array.from(original.graph.getFloat(s), (_, c) => -1.5 + ((c * 37) % 10) * 0.5));
    }
    const m = original.clone();
    prepareFloatGraph(m, { ...INT8_REWRITES, prelu: 'keep' });
    const res = rewritePrelus(m.graph, 'residual-dw');
    expect(res.rewritten.length).toBe(original.graph.nodes.filter((p) => p.opType === 'PRelu').length);
    expect(res.fallback).toEqual([]);
    expect(m.graph.opHistogram().PRelu).toBeUndefined();
    const { maxAbs, outputs } = await maxOutputDiff(original.toBytes(), m.toBytes(), [1, 3, 112, 112]);
    const amax = Math.max(...Object.values(outputs).flat().map(Math.abs));
    expect(maxAbs).toBeLessThan(1e-4 * Math.max(1, amax));
  });
});
