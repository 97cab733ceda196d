/**
 * toFloat16 (pipeline/tensorrt/fp16.ts) on a small graph with every form it converts: float
 * initializers (one beyond the float16 range each way), a Constant, a ConstantOfShape, a Cast to
 * float, recorded value_info, and a Resize whose roi/scales must stay float32. The converted graph
 * must load and run in onnxruntime with float32 inputs and outputs, with exact counts and bit patterns.
 */
import { describe, expect, it } from 'vitest';
import { DataType, floatToHalf, makeNode, makeTensor, makeValueInfo } from '../../pipeline/onnx/index.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { toFloat16 } from '../../pipeline/tensorrt/fp16.js';
import { tinyModel } from '../onnx/tiny.js';

/**
 * y = Cast<float>((x * w + c) + ConstantOfShape(shape, 0.5)) * w2, x: [1,4].
 * w = [1e6, -1e6, 1, 0.1] holds one value above and one below the float16 range.
 */
function mixed() {
  const m = tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 4] }, outputs: ['y'],
    nodes: [
      makeNode('Mul', ['x', 'w'], ['a'], 'mul'),
      makeNode('Constant', [], ['c'], 'const', { value: makeTensor('c', DataType.FLOAT, [4], [0.25, 0.5, 0.75, 1]) }),
      makeNode('Add', ['a', 'c'], ['b'], 'add'),
      makeNode('ConstantOfShape', ['shape'], ['z'], 'cos', { value: makeTensor('v', DataType.FLOAT, [1], [0.5]) }),
      makeNode('Add', ['b', 'z'], ['d'], 'add2'),
      makeNode('Cast', ['d'], ['e'], 'cast', { to: DataType.FLOAT }),
      makeNode('Mul', ['e', 'w2'], ['y'], 'mul2'),
    ],
    initializers: [
      { name: 'w', dims: [4], data: [1e6, -1e6, 1, 0.1] },
      { name: 'w2', dims: [4], data: [1e-3, 1e-3, 2, 4] },
      { name: 'shape', dataType: DataType.INT64, dims: [2], data: [1, 4] },
    ],
  });
  m.graph.proto.valueInfo!.push(makeValueInfo('a', DataType.FLOAT, [1, 4]), makeValueInfo('e', DataType.FLOAT, [1, 4]));
  return m;
}

describe('toFloat16', () => {
  it('converts initializers and Constants (counted), clamps both signs to +-65504 (counted)', () => {
    const { model, converted, clamped } = toFloat16(mixed());
    expect(converted).toBe(3); // w, w2, the Constant; not the int64 shape
    expect(clamped).toBe(2);
    const w = model.graph.getTensor('w');
    expect(w.dataType).toBe(DataType.FLOAT16);
    expect(Array.from(w.data as Uint16Array)).toEqual([0x7bff, 0xfbff, 0x3c00, floatToHalf(0.1)]);
    expect(model.graph.getTensor('shape').dataType).toBe(DataType.INT64);
  });

  it('loads and runs with float32 in and out, close to the float graph', async () => {
    const float = mixed();
    const { model } = toFloat16(float);
    expect(model.graph.outputs[0]!.elemType).toBe(DataType.FLOAT);
    expect(model.graph.inputs[0]!.elemType).toBe(DataType.FLOAT);
    const x = Float32Array.from([1e-3, 1e-3, 0.5, -2]);
    const s = await createSession(model.toBytes());
    const r = await runSession(s, { x: floatTensor(x, [1, 4]) });
    await s.release();
    const y = r.y!;
    expect(y.type).toBe('float32');
    // by hand, with the clamped weights: ((x*w + c) + 0.5) * w2
    const w = [65504, -65504, 1, 0.1];
    const c = [0.25, 0.5, 0.75, 1];
    const w2 = [1e-3, 1e-3, 2, 4];
    const want = [0, 1, 2, 3].map((i) => (x[i]! * w[i]! + c[i]! + 0.5) * w2[i]!);
    const got = Array.from(y.data as Float32Array);
    for (let i = 0; i < 4; i++) expect(Math.abs(got[i]! - want[i]!), `y[${i}]`).toBeLessThan(Math.abs(want[i]!) * 4e-3);
  });

  it('Resize keeps float32 roi and scales (initializers and Constant), and runs', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 1, 2, 2] }, outputs: ['y', 'y2'],
      nodes: [
        makeNode('Resize', ['x', 'roi', 'scales'], ['y'], 'rs', { mode: 'nearest' }),
        makeNode('Constant', [], ['cscales'], 'cs', { value: makeTensor('cscales', DataType.FLOAT, [4], [1, 1, 2, 2]) }),
        makeNode('Resize', ['x', '', 'cscales'], ['y2'], 'rs2', { mode: 'nearest' }),
      ],
      initializers: [{ name: 'roi', dims: [0], data: [] }, { name: 'scales', dims: [4], data: [1, 1, 2, 2] }],
    });
    const { model } = toFloat16(m);
    expect(model.graph.getTensor('roi').dataType).toBe(DataType.FLOAT);
    expect(model.graph.getTensor('scales').dataType).toBe(DataType.FLOAT);
    const cs = model.graph.node('cs')!.attribute!.find((a) => a.name === 'value')!.t!;
    expect(cs.dataType).toBe(DataType.FLOAT);
    const s = await createSession(model.toBytes());
    const r = await runSession(s, { x: floatTensor(Float32Array.from([1, 2, 3, 4]), [1, 1, 2, 2]) });
    await s.release();
    expect(Array.from(r.y!.data as Float32Array)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    expect(Array.from(r.y2!.data as Float32Array)).toEqual(Array.from(r.y!.data as Float32Array));
  });
});
