/**
 * Opset upgrade rules the other suites do not reach: Resize-10 (nearest rounding must stay floor:
 * upsampling by 3 tells floor from round_prefer_floor), TopK-9's k attribute, a Dropout whose mask is
 * read, Split without a `split` attribute (Split-18 needs num_outputs), a Clip already at opset 11
 * (min/max are inputs there and must be kept), IR<4 initializer inputs, and the IR version table.
 * Outputs are compared in onnxruntime before and after.
 */
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { DataType, getAttr, irVersionFor, makeNode, upgradeOpset } from '../../pipeline/onnx/index.js';
import { makeValueInfo } from '../../pipeline/onnx/graph.js';
import { maxOutputDiff } from './compare.js';
import { tinyModel, type TinySpec } from './tiny.js';

const X = { name: 'x', shape: [1, 2, 4, 4] };

async function sameOutputs(spec: TinySpec, target: number) {
  const m = tinyModel(spec);
  const up = m.clone();
  const r = upgradeOpset(up, target);
  expect(up.opset()).toBe(target);
  const { maxAbs } = await maxOutputDiff(m.toBytes(), up.toBytes(), spec.input.shape as number[]);
  expect(maxAbs).toBe(0);
  return { up, r };
}

describe('opset upgrade: rules not covered elsewhere', () => {
  it('Resize-10 nearest upsampling by 3 -> 13: roi input added, nearest_mode floor, outputs equal', async () => {
    const { up } = await sameOutputs({
      opset: 10, input: X, outputs: ['y'],
      nodes: [makeNode('Resize', ['x', 's'], ['y'], 'rs', { mode: 'nearest' })],
      initializers: [{ name: 's', dims: [4], data: [1, 1, 3, 3] }],
    }, 13);
    const n = up.graph.node('rs')!;
    expect(n.input!.length).toBe(3);
    expect(n.input![2]).toBe('s');
    expect(getAttr(n, 'coordinate_transformation_mode')).toBe('asymmetric');
    expect(getAttr(n, 'nearest_mode')).toBe('floor');
  });

  it('TopK-9 k attribute -> int64 input [k], outputs equal', async () => {
    const { up } = await sameOutputs({
      opset: 9, input: X, outputs: ['v'],
      nodes: [makeNode('TopK', ['x'], ['v', 'i'], 'topk', { k: 3, axis: -1 })],
    }, 13);
    const n = up.graph.node('topk')!;
    expect(getAttr(n, 'k')).toBeUndefined();
    const k = up.graph.getTensor(n.input![1]!);
    expect(k.dataType).toBe(DataType.INT64);
    expect(k.dims).toEqual([1]);
    expect(Array.from(k.data as BigInt64Array)).toEqual([3n]);
  });

  it('a Dropout whose mask is read is refused with FACEOPT_ERR_OPSET_UPGRADE', () => {
    const m = tinyModel({
      opset: 9, input: X, outputs: ['y', 'mf'],
      nodes: [makeNode('Dropout', ['x'], ['y', 'mask'], 'drop'), makeNode('Cast', ['mask'], ['mf'], 'cast', { to: DataType.FLOAT })],
    });
    let err: unknown;
    try { upgradeOpset(m, 13); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_OPSET_UPGRADE'), String(err)).toBe(true);
    expect((err as Error).message).toContain('the Dropout mask output is used');
  });

  it('Split-11 without a split attribute: nothing added at 13, num_outputs=2 at 18; outputs equal', async () => {
    const spec: TinySpec = { opset: 11, input: X, outputs: ['a', 'b'], nodes: [makeNode('Split', ['x'], ['a', 'b'], 'split', { axis: 1 })] };
    const at13 = (await sameOutputs(spec, 13)).up.graph.node('split')!;
    expect(at13.input).toEqual(['x']);
    expect(getAttr(at13, 'num_outputs')).toBeUndefined();
    const at18 = (await sameOutputs(spec, 18)).up.graph.node('split')!;
    expect(getAttr(at18, 'num_outputs')).toBe(2);
  });

  it('a Clip already at opset 11 keeps its min/max inputs when upgraded to 13', async () => {
    const { up, r } = await sameOutputs({
      opset: 11, input: X, outputs: ['y'],
      nodes: [makeNode('Clip', ['x', 'lo', 'hi'], ['y'], 'clip')],
      initializers: [{ name: 'lo', dims: [], data: [-0.25] }, { name: 'hi', dims: [], data: [0.5] }],
    }, 13);
    expect(up.graph.node('clip')!.input).toEqual(['x', 'lo', 'hi']);
    expect(r.rewritten).toEqual([]);
  });

  it('IR 3 initializers listed as graph inputs stop being inputs (IR 4+ would make them feedable)', () => {
    const m = tinyModel({
      opset: 8, irVersion: 3, input: X, outputs: ['y'],
      nodes: [makeNode('Mul', ['x', 'w'], ['y'], 'mul')],
      initializers: [{ name: 'w', dims: [1], data: [2] }],
    });
    m.graph.proto.input!.push(makeValueInfo('w', DataType.FLOAT, [1]));
    upgradeOpset(m, 13);
    expect(m.graph.proto.input!.map((v) => v.name)).toEqual(['x']);
    expect(m.irVersion).toBe(7);
  });

  it('IR version per opset (ONNX VERSION_TABLE)', () => {
    expect([13, 15, 16, 17, 18, 19, 20, 21].map(irVersionFor)).toEqual([7, 8, 8, 8, 8, 9, 9, 10]);
  });
});
