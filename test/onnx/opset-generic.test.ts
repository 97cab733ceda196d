import { describe, expect, it } from 'vitest';
import { upgradeOpset, makeNode, DataType, getAttr } from '../../pipeline/onnx/index.js';
import { makeValueInfo } from '../../pipeline/onnx/graph.js';
import type { NodeProto } from '../../pipeline/onnx/proto.js';
import { maxOutputDiff, seededFloats } from './compare.js';
import { tinyModel, type TinySpec } from './tiny.js';

/** Upgrade a copy to 13 and check onnxruntime gives the same outputs as the original. */
async function upgradesExactly(spec: TinySpec, dims: number[]) {
  const m = tinyModel(spec);
  const up = m.clone();
  upgradeOpset(up, 13);
  expect(up.opset()).toBe(13);
  const { maxAbs } = await maxOutputDiff(m.toBytes(), up.toBytes(), dims);
  expect(maxAbs).toBe(0);
  return up;
}

describe('opset upgrade: Softmax axis when the rank is certain from the producer', () => {
  const fc = { name: 'fc_w', dims: [10, 16], data: seededFloats(160, 1) };
  const mm = { name: 'mm_w', dims: [16, 10], data: seededFloats(160, 2) };
  for (const [name, producer, inits] of [
    ['Gemm', makeNode('Gemm', ['x', 'fc_w'], ['logits'], 'fc', { transB: 1 }), [fc]],
    ['MatMul of 2-D tensors', makeNode('MatMul', ['x', 'mm_w'], ['logits'], 'mm'), [mm]],
  ] as const) {
    it(`${name} -> Softmax(axis=1), output rank not recorded`, async () => {
      const up = await upgradesExactly({
        opset: 11, input: { name: 'x', shape: [2, 16] }, outputs: ['y'],
        nodes: [producer as NodeProto, makeNode('Softmax', ['logits'], ['y'], 'softmax', { axis: 1 })], initializers: [...inits],
      }, [2, 16]);
      expect(getAttr(up.graph.node('softmax')!, 'axis')).toBe(1);
    });
  }
  it('Flatten -> LogSoftmax (default axis), input rank 4', async () => {
    await upgradesExactly({
      opset: 11, input: { name: 'x', shape: [2, 3, 2, 2] }, outputs: ['y'],
      nodes: [makeNode('Flatten', ['x'], ['f'], 'flat', { axis: 1 }), makeNode('Relu', ['f'], ['r'], 'relu'), makeNode('LogSoftmax', ['r'], ['y'], 'lsm')],
    }, [2, 3, 2, 2]);
  });
});

describe('opset upgrade: subgraphs', () => {
  it('If branches are upgraded with the same rules (Squeeze axes attribute -> input inside the branches)', async () => {
    const branch = (name: string, neg: boolean) => ({
      name,
      node: [
        ...(neg ? [makeNode('Neg', ['x'], [`${name}_n`], `${name}_neg`)] : []),
        makeNode('Squeeze', [neg ? `${name}_n` : 'x'], [`${name}_y`], `${name}_squeeze`, { axes: [0] }),
      ],
      output: [makeValueInfo(`${name}_y`, DataType.FLOAT, null)],
    });
    const iff = makeNode('If', ['c'], ['y'], 'if');
    iff.attribute!.push({ name: 'then_branch', type: 5, g: branch('then', false) }, { name: 'else_branch', type: 5, g: branch('else', true) });
    const up = await upgradesExactly({
      opset: 11, input: { name: 'x', shape: [1, 4] }, outputs: ['y'],
      nodes: [makeNode('ReduceMax', ['x'], ['m'], 'max', { keepdims: 0 }), makeNode('Greater', ['m', 'zero'], ['c'], 'gt'), iff],
      initializers: [{ name: 'zero', dims: [], data: [0] }],
    }, [1, 4]);
    const thenSqueeze = up.graph.node('if')!.attribute!.find((a) => a.name === 'then_branch')!.g!.node![0]!;
    expect(thenSqueeze.input).toHaveLength(2);
    expect(getAttr(thenSqueeze, 'axes')).toBeUndefined();
  });

  it('a BatchNorm output read only inside an If branch is kept (training outputs are dropped only when nothing reads them)', () => {
    const C = 2;
    const branch = (name: string) => ({ name, node: [makeNode('Identity', ['bn_mean'], [`${name}_y`], `${name}_id`)], output: [makeValueInfo(`${name}_y`, DataType.FLOAT, null)] });
    const iff = makeNode('If', ['c'], ['z'], 'if');
    iff.attribute!.push({ name: 'then_branch', type: 5, g: branch('then') }, { name: 'else_branch', type: 5, g: branch('else') });
    const m = tinyModel({
      opset: 9, input: { name: 'x', shape: [1, C, 2, 2] }, outputs: ['y', 'z'],
      nodes: [
        makeNode('BatchNormalization', ['x', 's', 'b', 'mu', 'var'], ['y', 'bn_mean', 'bn_var'], 'bn'),
        makeNode('ReduceMax', ['x'], ['m'], 'max', { keepdims: 0 }), makeNode('Greater', ['m', 'zero'], ['c'], 'gt'), iff,
      ],
      initializers: [
        { name: 's', dims: [C], data: [1, 2] }, { name: 'b', dims: [C], data: [0, 1] }, { name: 'mu', dims: [C], data: [0.5, -0.5] },
        { name: 'var', dims: [C], data: [1, 4] }, { name: 'zero', dims: [], data: [0] },
      ],
    });
    upgradeOpset(m, 13);
    expect(m.graph.node('bn')!.output).toEqual(['y', 'bn_mean', 'bn_var']);
    // and one nothing reads is still dropped
    const m2 = tinyModel({
      opset: 9, input: { name: 'x', shape: [1, C, 2, 2] }, outputs: ['y'],
      nodes: [makeNode('BatchNormalization', ['x', 's', 'b', 'mu', 'var'], ['y', 'bn_mean', 'bn_var'], 'bn')],
      initializers: [{ name: 's', dims: [C], data: [1, 2] }, { name: 'b', dims: [C], data: [0, 1] }, { name: 'mu', dims: [C], data: [0.5, -0.5] }, { name: 'var', dims: [C], data: [1, 4] }],
    });
    upgradeOpset(m2, 13);
    expect(m2.graph.node('bn')!.output).toEqual(['y']);
  });
});
