/**
 * Nearest rounding when Resize-10 and Upsample become Resize-11+. Before opset 11 onnxruntime rounds with
 * what it calls the SIMPLE nearest mode (onnxruntime/core/providers/cpu/tensor/upsamplebase.h,
 * GetNearestPixelFromOriginal: ceil on an axis whose scale is < 1, truncation otherwise; upsample.cc asks
 * per axis with `scales[axis] < 1`); from 11 on, one nearest_mode covers every axis. So a constant
 * downsampling Resize-10 must become nearest_mode 'ceil', an upsampling one 'floor', and a node that
 * shrinks one axis and grows another has no equivalent. Each case runs a ramp through onnxruntime before
 * and after the upgrade; the outputs must be identical.
 */
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { DataType, getAttr, makeNode, setAttr, upgradeOpset } from '../../pipeline/onnx/index.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { tinyModel, type TinySpec } from './tiny.js';

const X = { name: 'x', shape: [1, 1, 5, 5] };
const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

async function run(bytes: Uint8Array, dims: number[]): Promise<{ dims: number[]; data: number[] }> {
  const s = await createSession(bytes);
  const r = await runSession(s, { x: floatTensor(ramp(dims.reduce((a, b) => a * b, 1)), dims) });
  await s.release();
  return { dims: [...r.y!.dims], data: [...(r.y!.data as Float32Array)] };
}

/** Upgrade to `target`, check the nearest_mode written, and compare the ramp's outputs exactly. */
async function sameOnRamp(spec: TinySpec, target: number, mode: string): Promise<{ dims: number[]; data: number[] }> {
  const m = tinyModel(spec);
  const up = m.clone();
  upgradeOpset(up, target);
  const before = await run(m.toBytes(), spec.input.shape as number[]);
  const after = await run(up.toBytes(), spec.input.shape as number[]);
  expect(after).toEqual(before);
  expect(getAttr(up.graph.nodes.find((n) => n.opType === 'Resize')!, 'nearest_mode')).toBe(mode);
  return before;
}

const resize10 = (scales: number[], asConstantNode = false): TinySpec => ({
  opset: 10, input: X, outputs: ['y'],
  nodes: [
    ...(asConstantNode ? [makeNode('Constant', [], ['s'], 'sc', { value: { name: 's', dims: [4], dataType: DataType.FLOAT, floatData: scales } })] : []),
    makeNode('Resize', ['x', 's'], ['y'], 'rs', { mode: 'nearest' }),
  ],
  initializers: asConstantNode ? [] : [{ name: 's', dims: [4], data: scales }],
});

function upgradeError(spec: TinySpec): Error {
  try { upgradeOpset(tinyModel(spec), 13); } catch (e) { return e as Error; }
  throw new Error('expected FACEOPT_ERR_OPSET_UPGRADE');
}

describe('Resize-10 / Upsample nearest -> Resize-11+: rounding as onnxruntime did before opset 11', () => {
  it.each([13, 18])('downsampling by 0.6 (1x1x5x5 ramp) becomes nearest_mode ceil, outputs identical (to %i)', async (target) => {
    const out = await sameOnRamp(resize10([1, 1, 0.6, 0.6]), target, 'ceil');
    // x_original = i / 0.6 = 0, 1.67, 3.33 -> ceil 0, 2, 4 (floor would read 0, 1, 3)
    expect(out).toEqual({ dims: [1, 1, 3, 3], data: [0, 2, 4, 10, 12, 14, 20, 22, 24] });
  });

  it('scales from a Constant node are read too', async () => {
    await sameOnRamp(resize10([1, 1, 0.6, 0.6], true), 13, 'ceil');
  });

  it('downsampling one axis and keeping the others (scale 1) is ceil', async () => {
    await sameOnRamp(resize10([1, 1, 1, 0.5]), 13, 'ceil');
  });

  it.each([[[1, 1, 2, 2]], [[1, 1, 1.5, 2.5]], [[1, 1, 1, 1]]])('upsampling (or keeping) by %j stays floor, outputs identical', async (scales) => {
    await sameOnRamp(resize10(scales), 13, 'floor');
  });

  it('one axis shrinking and another growing has no single nearest_mode: FACEOPT_ERR_OPSET_UPGRADE names the node', () => {
    const e = upgradeError(resize10([1, 1, 0.6, 2]));
    expect(isFaceoptError(e, 'FACEOPT_ERR_OPSET_UPGRADE'), String(e)).toBe(true);
    expect(e.message).toMatch(/Cannot upgrade rs \(Resize\) from opset 10 to 13: .*scales \[1,1,0\.6,2\]/);
  });

  it('scales that are not constant keep floor (exact for every upsampling Resize)', async () => {
    const spec: TinySpec = {
      opset: 10, input: X, outputs: ['y'],
      nodes: [makeNode('Identity', ['s0'], ['s'], 'id'), makeNode('Resize', ['x', 's'], ['y'], 'rs', { mode: 'nearest' })],
      initializers: [{ name: 's0', dims: [4], data: [1, 1, 2, 3] }],
    };
    await sameOnRamp(spec, 13, 'floor');
  });

  it('Upsample-9 upsampling stays floor, outputs identical', async () => {
    await sameOnRamp({
      opset: 9, input: X, outputs: ['y'],
      nodes: [makeNode('Upsample', ['x', 's'], ['y'], 'up', { mode: 'nearest' })],
      initializers: [{ name: 's', dims: [4], data: [1, 1, 2, 1.5] }],
    }, 13, 'floor');
  });

  it('Upsample-7 with a scales attribute stays floor, outputs identical', async () => {
    const up = makeNode('Upsample', ['x'], ['y'], 'up', { mode: 'nearest' });
    setAttr(up, 'scales', [1, 1, 2, 2], 'floats');
    await sameOnRamp({ opset: 7, input: X, outputs: ['y'], nodes: [up] }, 13, 'floor');
  });

  it('an Upsample with a scale below 1 is refused (the operator takes scales >= 1; onnxruntime refuses the node)', () => {
    const e = upgradeError({
      opset: 9, input: X, outputs: ['y'],
      nodes: [makeNode('Upsample', ['x', 's'], ['y'], 'up', { mode: 'nearest' })],
      initializers: [{ name: 's', dims: [4], data: [1, 1, 0.5, 0.5] }],
    });
    expect(isFaceoptError(e, 'FACEOPT_ERR_OPSET_UPGRADE'), String(e)).toBe(true);
    expect(e.message).toMatch(/Cannot upgrade up \(Upsample\).*scales \[1,1,0\.5,0\.5\].*>= 1/);
  });
});
