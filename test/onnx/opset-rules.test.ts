import { describe, expect, it } from 'vitest';
import { upgradeOpset, makeNode, DataType, getAttr } from '../../pipeline/onnx/index.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { maxOutputDiff } from './compare.js';
import { tinyModel, type TinySpec } from './tiny.js';

// One row per rewrite rule: a small model at an old opset that onnxruntime still runs, upgraded to 13 and
// 18; the outputs must not change and the rewritten node must have the new form.
const X = { name: 'x', shape: [1, 4, 6, 6] };
const ROWS: { name: string; spec: TinySpec; check?: (m: ReturnType<typeof tinyModel>) => void }[] = [
  {
    name: 'Upsample(9, nearest) -> Resize',
    spec: { opset: 9, input: X, outputs: ['y'], nodes: [makeNode('Upsample', ['x', 's'], ['y'], 'up', { mode: 'nearest' })], initializers: [{ name: 's', dims: [4], data: [1, 1, 2, 2] }] },
    check: (m) => { expect(m.graph.nodes[0]!.opType).toBe('Resize'); expect(getAttr(m.graph.nodes[0]!, 'nearest_mode')).toBe('floor'); },
  },
  {
    name: 'Upsample(9, linear) -> Resize',
    spec: { opset: 9, input: X, outputs: ['y'], nodes: [makeNode('Upsample', ['x', 's'], ['y'], 'up', { mode: 'linear' })], initializers: [{ name: 's', dims: [4], data: [1, 1, 2, 2] }] },
  },
  {
    name: 'Clip(9) attrs -> inputs',
    spec: { opset: 9, input: X, outputs: ['y'], nodes: [makeNode('Clip', ['x'], ['y'], 'clip', { min: -0.25, max: 0.5 })] },
    check: (m) => expect(m.graph.nodes[0]!.input).toHaveLength(3),
  },
  {
    name: 'Clip(9) only max',
    spec: { opset: 9, input: X, outputs: ['y'], nodes: [makeNode('Clip', ['x'], ['y'], 'clip', { max: 0.5 })] },
    check: (m) => expect(m.graph.nodes[0]!.input![1]).toBe(''),
  },
  {
    name: 'Pad(9) pads attr -> input',
    spec: { opset: 9, input: X, outputs: ['y'], nodes: [makeNode('Pad', ['x'], ['y'], 'pad', { pads: [0, 0, 1, 2, 0, 0, 2, 1], value: 0.5 })] },
  },
  {
    name: 'Slice(9) attrs -> inputs',
    spec: { opset: 9, input: X, outputs: ['y'], nodes: [makeNode('Slice', ['x'], ['y'], 'slice', { starts: [1, 2], ends: [3, 5], axes: [1, 3] })] },
  },
  {
    name: 'Squeeze/Unsqueeze(11) axes -> input',
    spec: {
      opset: 11, input: X, outputs: ['z'],
      nodes: [makeNode('Unsqueeze', ['x'], ['u'], 'unsq', { axes: [0] }), makeNode('Squeeze', ['u'], ['z'], 'sq', { axes: [0] })],
    },
    check: (m) => expect(m.graph.nodes.every((n) => n.input!.length === 2)).toBe(true),
  },
  {
    name: 'Split(11) split attr -> input',
    spec: { opset: 11, input: X, outputs: ['a', 'b'], nodes: [makeNode('Split', ['x'], ['a', 'b'], 'split', { axis: 1, split: [1, 3] })] },
  },
  {
    name: 'ReduceSum(11) and ReduceMean(11) axes -> input',
    spec: {
      opset: 11, input: X, outputs: ['s', 'm'],
      nodes: [makeNode('ReduceSum', ['x'], ['s'], 'rs', { axes: [2, 3], keepdims: 1 }), makeNode('ReduceMean', ['x'], ['m'], 'rm', { axes: [1], keepdims: 0 })],
    },
  },
  {
    name: 'BatchNormalization(7) spatial attr dropped',
    spec: {
      opset: 7, input: X, outputs: ['y'],
      nodes: [makeNode('BatchNormalization', ['x', 'g', 'b', 'mu', 'var'], ['y'], 'bn', { epsilon: 1e-5, momentum: 0.9, spatial: 1 })],
      initializers: [
        { name: 'g', dims: [4], data: [1, 2, 0.5, 1] }, { name: 'b', dims: [4], data: [0, 0.1, -0.1, 0.3] },
        { name: 'mu', dims: [4], data: [0.1, 0, 0.2, -0.3] }, { name: 'var', dims: [4], data: [1, 0.5, 2, 1.5] },
      ],
    },
  },
  {
    name: 'Dropout(9) -> Identity',
    spec: { opset: 9, input: X, outputs: ['y'], nodes: [makeNode('Dropout', ['x'], ['y'], 'drop', { ratio: 0.4 })] },
    check: (m) => expect(m.graph.nodes[0]!.opType).toBe('Identity'),
  },
  {
    name: 'Softmax(11) with the default axis on a 2-D input',
    spec: { opset: 11, input: { name: 'x', shape: [3, 5] }, outputs: ['y'], nodes: [makeNode('Softmax', ['x'], ['y'], 'sm')] },
    check: (m) => expect(getAttr(m.graph.nodes[0]!, 'axis')).toBe(1),
  },
];

describe('opset upgrade rules (synthetic graphs, outputs equal before and after)', () => {
  for (const row of ROWS) {
    for (const target of [13, 18]) {
      it(`${row.name} (to ${target})`, async () => {
        const original = tinyModel(row.spec);
        const upgraded = original.clone();
        const res = upgradeOpset(upgraded, target);
        expect(res.rewritten.length).toBeGreaterThan(0);
        expect(upgraded.opset()).toBe(target);
        expect(upgraded.irVersion).toBeGreaterThanOrEqual(7);
        row.check?.(upgraded);
        const { maxAbs } = await maxOutputDiff(original.toBytes(), upgraded.toBytes(), row.spec.input.shape as number[]);
        expect(maxAbs).toBeLessThanOrEqual(1e-6);
      });
    }
  }

  it('refuses Softmax over a non-last axis of a 4-D input with a coded error that says what to do', () => {
    const m = tinyModel({ opset: 11, input: X, outputs: ['y'], nodes: [makeNode('Softmax', ['x'], ['y'], 'sm', { axis: 1 })] });
    let err: unknown;
    try { upgradeOpset(m, 13); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_OPSET_UPGRADE')).toBe(true);
    expect((err as Error).message).toMatch(/sm.*Softmax.*11 to 13/);
    expect((err as Error).message).toContain('Export the model at opset 13 or later (or convert it with `onnx.version_converter.convert_version(model, 13)`');
  });

  it('rejects targets outside 13..21 and leaves newer models untouched', () => {
    const m = tinyModel({ opset: 14, input: X, outputs: ['y'], nodes: [makeNode('Relu', ['x'], ['y'], 'r')] });
    expect(() => upgradeOpset(m, 12)).toThrow(/between 13 and 21/);
    expect(upgradeOpset(m, 13)).toEqual({ from: 14, to: 14, rewritten: [] });
  });

  it('adds int64 initializers for moved attributes', () => {
    const m = tinyModel({ opset: 11, input: X, outputs: ['u'], nodes: [makeNode('Unsqueeze', ['x'], ['u'], 'unsq', { axes: [0, 5] })] });
    upgradeOpset(m, 13);
    const axes = m.graph.getTensor(m.graph.nodes[0]!.input![1]!);
    expect(axes.dataType).toBe(DataType.INT64);
    expect([...axes.data as BigInt64Array]).toEqual([0n, 5n]);
  });
});
