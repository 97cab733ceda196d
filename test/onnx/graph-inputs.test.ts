import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import { makeValueInfo } from '../../pipeline/onnx/graph.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { FP32_REWRITES, INT8_REWRITES, prepareFloatGraph, quantizeModel } from '../../pipeline/quantize/index.js';
import { optimizeFp32 } from '../../pipeline/optimize/fp32.js';
import { createSession } from '../../pipeline/runtime.js';
import { maxOutputDiff, seededFloats } from './compare.js';
import { tinyModel } from './tiny.js';
import { measuredRanges } from '../quantize/generic-helpers.js';

const X = { name: 'x', shape: [1, 3, 8, 8] };
const C = 8;
const pos = (n: number, seed: number) => Float32Array.from(seededFloats(n, seed), (v) => 1 + Math.abs(v) * 0.2);

/** An IR 3 export: every initializer also listed as a graph input. */
function listedAsInputs(m: ReturnType<typeof tinyModel>) {
  for (const t of m.graph.proto.initializer!) m.graph.proto.input!.push(makeValueInfo(t.name!, DataType.FLOAT, t.dims!.map(Number)));
  m.graph.invalidate();
  return m;
}

const convs = () => listedAsInputs(tinyModel({
  opset: 9, irVersion: 3, input: X, outputs: ['y'],
  nodes: [
    makeNode('Conv', ['x', 'w1', 'b1'], ['a'], 'c1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), makeNode('Relu', ['a'], ['r'], 'r1'),
    makeNode('Conv', ['r', 'w2', 'b2'], ['y'], 'c2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
  ],
  initializers: [
    { name: 'w1', dims: [C, 3, 3, 3], data: seededFloats(C * 27, 1) }, { name: 'b1', dims: [C], data: seededFloats(C, 2) },
    { name: 'w2', dims: [C, C, 3, 3], data: Float32Array.from(seededFloats(C * C * 9, 3), (v) => v * 0.3) }, { name: 'b2', dims: [C], data: seededFloats(C, 4) },
  ],
}));

const batchNorm = () => listedAsInputs(tinyModel({
  opset: 9, irVersion: 3, input: X, outputs: ['y'],
  nodes: [
    makeNode('Conv', ['x', 'w1'], ['a'], 'c1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    makeNode('BatchNormalization', ['a', 'g', 'be', 'mu', 'var'], ['bn'], 'bn1', { epsilon: 1e-5 }),
    makeNode('Relu', ['bn'], ['r'], 'r1'), makeNode('Conv', ['r', 'w2'], ['y'], 'c2', { kernel_shape: [1, 1] }),
  ],
  initializers: [
    { name: 'w1', dims: [C, 3, 3, 3], data: seededFloats(C * 27, 1) }, { name: 'g', dims: [C], data: pos(C, 2) }, { name: 'be', dims: [C], data: seededFloats(C, 3) },
    { name: 'mu', dims: [C], data: seededFloats(C, 4) }, { name: 'var', dims: [C], data: pos(C, 5) }, { name: 'w2', dims: [C, C, 1, 1], data: seededFloats(C * C, 6) },
  ],
}));

async function inputNames(bytes: Uint8Array): Promise<readonly string[]> {
  const s = await createSession(bytes);
  const names = s.inputNames;
  await s.release();
  return names;
}

describe('initializers listed as graph inputs (IR < 4 exports)', () => {
  it('Graph.inputs lists only the real input', () => {
    expect(convs().graph.inputs.map((i) => i.name)).toEqual(['x']);
  });
  it('pruneUnused removes the graph-input entry of an initializer it removes, and keeps real inputs', () => {
    const m = convs();
    m.graph.proto.input!.push(makeValueInfo('unused_real', DataType.FLOAT, [1]));
    m.graph.proto.initializer!.push({ ...m.graph.proto.initializer![0]!, name: 'dead' });
    m.graph.proto.input!.push(makeValueInfo('dead', DataType.FLOAT, [C, 3, 3, 3]));
    m.graph.invalidate();
    m.graph.pruneUnused();
    expect(m.graph.hasInitializer('dead')).toBe(false);
    expect(m.graph.proto.input!.map((i) => i.name)).not.toContain('dead');
    expect(m.graph.proto.input!.map((i) => i.name)).toContain('unused_real');
  });
  it('--int8: the quantized model needs only its real input', async () => {
    const m = convs();
    const q = quantizeModel(m, await measuredRanges(m, X.shape));
    expect(await inputNames(q.model.toBytes())).toEqual(['x']);
    const { maxAbs } = await maxOutputDiff(m.toBytes(), q.model.toBytes(), X.shape);
    expect(maxAbs).toBeLessThan(0.5);
  });
  it('BatchNorm parameters listed as inputs: folded for --fp32 and --int8, the result needs only x', async () => {
    for (const rw of [FP32_REWRITES, INT8_REWRITES]) {
      const m = batchNorm();
      const f = m.clone();
      prepareFloatGraph(f, rw);
      expect(f.graph.opHistogram().BatchNormalization).toBeUndefined();
      expect(await inputNames(f.toBytes())).toEqual(['x']);
      expect((await maxOutputDiff(m.toBytes(), f.toBytes(), X.shape)).maxAbs).toBeLessThan(1e-4);
      const q = quantizeModel(f, await measuredRanges(f, X.shape));
      expect(await inputNames(q.model.toBytes())).toEqual(['x']);
    }
  });
  it('optimize --fp32 writes a model that runs on x alone', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-ginputs-'));
    const src = path.join(dir, 'bn.onnx');
    await saveModel(batchNorm(), src);
    const out = path.join(dir, 'bn.fp32.onnx');
    await optimizeFp32({ model: src, out, threads: 1, log: () => {} });
    expect(await inputNames(out as unknown as Uint8Array)).toEqual(['x']);
  });
});
