/**
 * The shape rewrites of pipeline/tensorrt/shapes.ts on small hand-built graphs, where the right answer
 * can be worked out by hand: which axis carries the batch through Transpose/Flatten/Squeeze/Unsqueeze/
 * Gather, which Reshape constants are rewritten (and to what), when a Resize `sizes` constant has no
 * exact float32 scale, and which graphs the batch-1/batch-2 check must refuse (and with which message).
 */
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { DataType, makeNode, setAttr } from '../../pipeline/onnx/index.js';
import { batchAxes, makeBatchDynamic, resizeSizesToScales } from '../../pipeline/tensorrt/shapes.js';
import { probeModel } from '../../pipeline/tensorrt/probe.js';
import { tinyModel } from '../onnx/tiny.js';
import { fixedBatchMbf } from './helpers.js';

describe('batchAxes: the axis that carries the batch, following the ops', () => {
  const m = tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 2, 3, 4] }, outputs: ['t2', 'f0', 'f1', 'u0', 'u2', 'sq', 'g0', 'g1'],
    nodes: [
      // perm [1,2,0,3]: output axis j is input axis perm[j], so the batch (input axis 0) lands on axis 2
      makeNode('Transpose', ['x'], ['t1'], 't1', { perm: [1, 2, 0, 3] }),
      // perm [2,1,0,3] on t1 (batch on 2): back to axis 0
      makeNode('Transpose', ['t1'], ['t2'], 't2', { perm: [2, 1, 0, 3] }),
      makeNode('Flatten', ['x'], ['f0'], 'f0', { axis: 0 }), // [1, N*24]: the batch is folded away
      makeNode('Flatten', ['x'], ['f1'], 'f1', { axis: 1 }), // [N, 24]
      makeNode('Unsqueeze', ['x', 'ax0'], ['u0'], 'u0'), // [1, N, ...]: the batch moves to axis 1
      makeNode('Unsqueeze', ['x', 'ax2'], ['u2'], 'u2'), // [N, 2, 1, 3, 4]
      makeNode('Squeeze', ['u2', 'ax2'], ['sq'], 'sq'), // [N, 2, 3, 4]
      makeNode('Gather', ['x', 'idx'], ['g0'], 'g0', { axis: 0 }), // picks samples: no batch axis left
      makeNode('Gather', ['x', 'idx'], ['g1'], 'g1', { axis: 1 }), // [N, 3, 4]
    ],
    initializers: [
      { name: 'ax0', dataType: DataType.INT64, dims: [1], data: [0] },
      { name: 'ax2', dataType: DataType.INT64, dims: [1], data: [2] },
      { name: 'idx', dataType: DataType.INT64, dims: [], data: [0] },
    ],
  });
  const axes = batchAxes(m.graph, 'x');

  it('Transpose: the batch goes to perm.indexOf(axis), not perm[axis]', () => {
    expect(axes.get('t1')).toBe(2);
    expect(axes.get('t2')).toBe(0);
  });

  it('Flatten keeps the batch on axis 0 only for axis >= 1', () => {
    expect(axes.get('f1')).toBe(0);
    expect(axes.has('f0')).toBe(false);
  });

  it('Squeeze/Unsqueeze keep the axis only when every touched axis is after it', () => {
    expect(axes.get('u2')).toBe(0);
    expect(axes.get('sq')).toBe(0);
    expect(axes.has('u0')).toBe(false);
  });

  it('Gather keeps the axis only when it gathers along a later axis', () => {
    expect(axes.get('g1')).toBe(0);
    expect(axes.has('g0')).toBe(false);
  });
});

describe('makeBatchDynamic on hand-built graphs', () => {
  it('a Reshape([1,-1]) behind two Transposes that bring the batch back to axis 0 is rewritten and runs at batch 2', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 2, 3, 4] }, outputs: ['y'],
      nodes: [
        makeNode('Transpose', ['x'], ['t1'], 't1', { perm: [1, 2, 0, 3] }),
        makeNode('Transpose', ['t1'], ['t2'], 't2', { perm: [2, 1, 0, 3] }),
        makeNode('Reshape', ['t2', 'shape'], ['y'], 'flat'),
      ],
      initializers: [{ name: 'shape', dataType: DataType.INT64, dims: [2], data: [1, -1] }],
    });
    const r = await makeBatchDynamic(m);
    expect(r.rewrites).toEqual(['Reshape flat: shape [1,-1] -> [0,-1]']);
    expect(r.outputDims).toEqual({ y: [24] });
    expect((await probeModel(m, [2, 2, 3, 4])).dims.y).toEqual([2, 24]);
  });

  it('a Reshape([1,4]) of a weight (not on the batch path) is left alone', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 4] }, outputs: ['y'],
      nodes: [makeNode('Reshape', ['w', 'wshape'], ['w2'], 'wr'), makeNode('Add', ['x', 'w2'], ['y'], 'add')],
      initializers: [{ name: 'w', dims: [4], data: [1, 2, 3, 4] }, { name: 'wshape', dataType: DataType.INT64, dims: [2], data: [1, 4] }],
    });
    const r = await makeBatchDynamic(m);
    expect(r.rewrites).toEqual([]);
    expect(Array.from(m.graph.getTensor(m.graph.node('wr')!.input![1]!).data as BigInt64Array, Number)).toEqual([1, 4]);
    expect((await probeModel(m, [3, 4])).dims.y).toEqual([3, 4]);
  });

  it('allowzero=1 and no -1: the batch 1 becomes -1 (0 would mean a literal zero-size dim)', async () => {
    const m = fixedBatchMbf();
    m.setOpset(14); // allowzero is a Reshape-14 attribute
    const reshape = m.graph.nodes.find((n) => n.opType === 'Reshape')!;
    m.graph.setTensor('flatten_shape_fixed', DataType.INT64, [2], BigInt64Array.from([1n, 512n]));
    setAttr(reshape, 'allowzero', 1, 'int');
    m.graph.invalidate();
    const r = await makeBatchDynamic(m);
    expect(r.rewrites).toEqual([`Reshape ${reshape.name}: shape [1,512] -> [-1,512]`]);
    expect(Array.from(m.graph.getTensor(reshape.input![1]!).data as BigInt64Array, Number)).toEqual([-1, 512]);
    expect(Object.values((await probeModel(m, [2, 3, 112, 112])).dims)[0]).toEqual([2, 128]);
  });

  it('refuses a graph that mixes samples across the batch (dims fine, values not)', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 4] }, outputs: ['y'],
      nodes: [makeNode('ReduceMean', ['x'], ['mean'], 'mean', { axes: [0], keepdims: 1 }), makeNode('Sub', ['x', 'mean'], ['y'], 'sub')],
    });
    const err = await makeBatchDynamic(m).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_GRAPH'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/output y: sample 0 differs between batch 1 and batch 2 runs .*mixes samples/);
  });

  it('refuses a graph whose output keeps batch 1 at batch 2, saying the batch does not flow', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 4] }, outputs: ['y'],
      nodes: [makeNode('ReduceSum', ['x', 'ax'], ['y'], 'sum', { keepdims: 1 })],
      initializers: [{ name: 'ax', dataType: DataType.INT64, dims: [1], data: [0] }],
    });
    const err = await makeBatchDynamic(m).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_GRAPH'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/output y has dims \[1,4\] at batch 1 but \[1,4\] at batch 2, so the batch does not flow through the graph/);
  });
});

describe('resizeSizesToScales', () => {
  const resize = (from: number, to: number) => tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 1, from, from] }, outputs: ['y'],
    nodes: [makeNode('Resize', ['x', '', '', 'sizes'], ['y'], 'rs', { mode: 'nearest' })],
    initializers: [{ name: 'sizes', dataType: DataType.INT64, dims: [4], data: [1, 1, to, to] }],
  });

  it('an exact ratio (4 -> 8) becomes float scales [1,1,2,2] and the sizes initializer goes', () => {
    const m = resize(4, 8);
    expect(resizeSizesToScales(m.graph, { x: [1, 1, 4, 4] })).toEqual(['Resize rs: constant sizes [1,1,8,8] -> scales [1,1,2,2]']);
    const n = m.graph.node('rs')!;
    expect(n.input!.length).toBe(3);
    expect(Array.from(m.graph.getFloat(n.input![2]!))).toEqual([1, 1, 2, 2]);
    expect(m.graph.hasInitializer('sizes')).toBe(false);
  });

  it('3 -> 5 is refused: float32(5/3) = 1.6666666269..., and onnxruntime sizes the output floor(3 * 1.6666666) = 4', () => {
    expect(Math.floor(3 * Math.fround(5 / 3))).toBe(4); // the arithmetic the refusal rests on
    const m = resize(3, 5);
    let err: unknown;
    try { resizeSizesToScales(m.graph, { x: [1, 1, 3, 3] }); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_GRAPH'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/Resize rs: size 5 from 3 is not an exact scale/);
  });
});
