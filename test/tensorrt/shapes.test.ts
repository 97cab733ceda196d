import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { DataType, setAttr } from '../../pipeline/onnx/index.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { seededInput } from '../../pipeline/tensorrt/probe.js';
import { fixInputSize, makeBatchDynamic } from '../../pipeline/tensorrt/shapes.js';
import { fixedBatchMbf, preparedFixture } from './helpers.js';

const PER = 3 * 112 * 112;

describe('dynamic batch for a fixed-batch recognizer', async () => {
  const model = fixedBatchMbf();
  const before = model.clone();
  const result = await makeBatchDynamic(model);
  const g = model.graph;

  it('rewrites the batch-1 Reshape constant to copy the batch ([1,-1] -> [0,-1])', () => {
    const reshape = g.nodes.find((n) => n.opType === 'Reshape')!;
    expect(Array.from(g.getTensor(reshape.input![1]!).data as BigInt64Array, Number)).toEqual([0, -1]);
    expect(result.rewrites).toEqual([expect.stringMatching(/shape \[1,-1\] -> \[0,-1\]/)]);
    expect(g.inputs[0]!.shape).toEqual(['batch', 3, 112, 112]);
    expect(g.outputs[0]!.shape).toEqual(['batch', 128]);
    expect(g.proto.valueInfo).toEqual([]);
    expect(result.outputDims).toEqual({ [g.outputs[0]!.name]: [128] });
  });

  it('the original graph refuses batch 2 (so the test exercises a real fixed batch)', async () => {
    const s = await createSession(before.toBytes());
    await expect(runSession(s, { [before.graph.inputs[0]!.name]: floatTensor(seededInput(2 * PER, 3), [2, 3, 112, 112]) })).rejects.toThrow();
    await s.release();
  });

  it('runs at batch 1, 7 and 32 with every sample equal to its batch-1 run', async () => {
    const s = await createSession(model.toBytes());
    const input = g.inputs[0]!.name;
    const output = g.outputs[0]!.name;
    const all = seededInput(32 * PER, 77);
    const single: Float32Array[] = [];
    for (let i = 0; i < 32; i++) {
      const r = await runSession(s, { [input]: floatTensor(all.slice(i * PER, (i + 1) * PER), [1, 3, 112, 112]) });
      expect(r[output]!.dims).toEqual([1, 128]);
      single.push(Float32Array.from(r[output]!.data as Float32Array));
    }
    for (const b of [1, 7, 32]) {
      const r = await runSession(s, { [input]: floatTensor(all.slice(0, b * PER), [b, 3, 112, 112]) });
      expect(r[output]!.dims).toEqual([b, 128]);
      const data = r[output]!.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < b; i++) for (let k = 0; k < 128; k++) worst = Math.max(worst, Math.abs(data[i * 128 + k]! - single[i]![k]!));
      expect(worst, `batch ${b}`).toBeLessThan(1e-4);
    }
    await s.release();
  });

  it('refuses a Reshape it cannot rewrite exactly (allowzero=1 with a -1), naming the node', async () => {
    const m = fixedBatchMbf();
    const reshape = m.graph.nodes.find((n) => n.opType === 'Reshape')!;
    setAttr(reshape, 'allowzero', 1, 'int');
    const err = await makeBatchDynamic(m).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_GRAPH')).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`Reshape ${reshape.name}.*allowzero=1`));
  });

  it('a graph whose batch is already dynamic is left as it is and still verified', async () => {
    const m = (await preparedFixture('mobilefacenet512'));
    const r = await makeBatchDynamic(m);
    expect(r.rewrites).toEqual([]);
    expect(r.batchDim).toBe('N');
  });
});

describe('fixed input size for detectors', () => {
  it('SCRFD fixture (fixed 640, constant Resize sizes) at 320x480: sizes become scales, outputs follow', async () => {
    const m = await preparedFixture('scrfd');
    const sizes = m.graph.nodes.filter((n) => n.opType === 'Resize').map((n) => n.input![3]!);
    expect(sizes.every((s) => m.graph.hasInitializer(s))).toBe(true);
    const r = await fixInputSize(m, 320, 480);
    // the sizes no node reads are gone (onnxruntime warned of them at every load of the bundle's model.onnx)
    expect(sizes.filter((s) => m.graph.hasInitializer(s))).toEqual([]);
    expect(r.inputDims).toEqual([1, 3, 480, 320]);
    expect(r.rewrites.filter((x) => x.startsWith('Resize'))).toHaveLength(2);
    const cells = (s: number) => (480 / s) * (320 / s) * 2; // 2 anchors per cell
    const dims = r.outputDims;
    expect(dims.score_8).toEqual([1, cells(8), 1]);
    expect(dims.bbox_16).toEqual([1, cells(16), 4]);
    expect(dims.kps_32).toEqual([1, cells(32), 10]);
    expect(m.graph.outputs.find((o) => o.name === 'score_8')!.shape).toEqual([1, cells(8), 1]);
    expect(m.graph.nodes.filter((n) => n.opType === 'Resize').every((n) => n.input!.length === 3 && m.graph.getTensor(n.input![2]!).dataType === DataType.FLOAT)).toBe(true);
  });

  it('SCRFD fixture at its own size keeps the graph runnable and its outputs unchanged', async () => {
    const m = await preparedFixture('scrfd');
    const r = await fixInputSize(m, 640, 640);
    expect(r.outputDims.score_8).toEqual([1, 12800, 1]);
  });
});
