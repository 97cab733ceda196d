/**
 * Mutation audit of the passes insertQdq runs on a finished Q/DQ graph: splitQuantized
 * (pipeline/quantize/split-quantized.ts) and padInputChannels (pipeline/quantize/pad-input.ts). The
 * graphs are built by hand, each pass run on a copy, and both run in onnxruntime: where a pass applies
 * the outputs are bit-identical, where it must not apply it leaves the graph alone.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { splitQuantized } from '../../pipeline/quantize/split-quantized.js';
import { padInputChannels } from '../../pipeline/quantize/pad-input.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel, type TinySpec } from '../onnx/tiny.js';

type Model = ReturnType<typeof tinyModel>;
const diff = async (a: Model, b: Model, dims: number[]) => (await maxOutputDiff(a.toBytes(), b.toBytes(), dims)).maxAbs;

describe('splitQuantized', () => {
  const X = [1, 4, 2, 2];
  /** x -> Q -> DQ -> Split [1, 3] on the channels -> Relu each part; per-tensor unless `perChannel`. */
  const graph = (o: { perChannel?: boolean; outputs?: string[]; nodes?: TinySpec['nodes']; parts?: number } = {}) => {
    const s = o.perChannel ? { dims: [4], data: [0.01, 0.02, 0.03, 0.04] } : { dims: [], data: [0.02] };
    const z = o.perChannel ? { dims: [4], data: [128, 128, 128, 128] } : { dims: [], data: [128] };
    const axis: Record<string, number> = o.perChannel ? { axis: 1 } : {};
    const three = o.parts === 3;
    return tinyModel({
      opset: 13, input: { name: 'x', shape: X }, outputs: o.outputs ?? ['ya', 'yb'],
      nodes: [
        makeNode('QuantizeLinear', ['x', 's', 'z'], ['xq'], 'q', axis),
        makeNode('DequantizeLinear', ['xq', 's', 'z'], ['xd'], 'dq', axis),
        makeNode('Split', ['xd', 'sizes'], three ? ['a', 'b', 'c'] : ['a', 'b'], 'split', { axis: 1 }),
        makeNode('Relu', ['a'], ['ya'], 'ra'), makeNode('Relu', ['b'], ['yb'], 'rb'),
        ...(o.nodes ?? []),
      ],
      initializers: [
        { name: 's', ...s }, { name: 'z', dataType: DataType.UINT8, ...z },
        { name: 'sizes', dataType: DataType.INT64, dims: [three ? 3 : 2], data: three ? [1, 2, 1] : [1, 3] },
      ],
    });
  };
  const untouched = async (m: Model) => {
    const f = m.clone();
    expect(splitQuantized(f.graph)).toEqual([]);
    expect(await diff(m, f, X)).toBe(0);
  };

  it('moves the Split onto the 8-bit tensor, a DequantizeLinear per part read (none for a part nothing reads), same outputs', async () => {
    const m = graph({ parts: 3 });
    const f = m.clone();
    expect(splitQuantized(f.graph)).toEqual(['split']);
    expect(f.graph.producer(f.graph.node('split')!.input![0]!)!.opType).toBe('QuantizeLinear');
    expect(f.graph.opHistogram().DequantizeLinear).toBe(2);
    expect(await diff(m, f, X)).toBe(0);
  });
  it('not when the dequantized tensor has another reader or is a graph output', async () => {
    await untouched(graph({ outputs: ['ya', 'yb', 'side'], nodes: [makeNode('Relu', ['xd'], ['side'], 'side')] }));
    await untouched(graph({ outputs: ['ya', 'yb', 'xd'] }));
  });
  it('not with a per-channel scale (each part would need its own slice of it), with or without a zero point', async () => {
    await untouched(graph({ perChannel: true }));
    const m = graph({ perChannel: true });
    for (const n of m.graph.nodes) if (n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear') n.input = n.input!.slice(0, 2);
    m.graph.invalidate();
    await untouched(m);
  });
  it('not a Split after another node with a constant second input', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: X }, outputs: ['a', 'b'],
      nodes: [makeNode('Mul', ['x', 'k'], ['xm'], 'mul'), makeNode('Split', ['xm', 'sizes'], ['a', 'b'], 'split', { axis: 1 })],
      initializers: [{ name: 'k', dims: [], data: [3] }, { name: 'sizes', dataType: DataType.INT64, dims: [2], data: [1, 3] }],
    });
    await untouched(m);
  });
});

describe('padInputChannels', () => {
  const X = [1, 3, 4, 4];
  /**
   * x (3 channels) -> Q -> DQ -> Conv 1x1 (int8 weights [4, 3, 1, 1] per channel behind their own
   * DequantizeLinear) -> y, plus `extra` nodes and initializers.
   */
  const graph = (o: { perChannelInput?: boolean; outputs?: string[]; nodes?: TinySpec['nodes']; inits?: TinySpec['initializers']; uint8Weights?: boolean } = {}) => tinyModel({
    opset: 13, input: { name: 'x', shape: X }, outputs: o.outputs ?? ['y'],
    nodes: [
      makeNode('QuantizeLinear', ['x', 's', 'z'], ['xq'], 'q', o.perChannelInput ? { axis: 1 } : {}),
      makeNode('DequantizeLinear', ['xq', 's', 'z'], ['xd'], 'dq', o.perChannelInput ? { axis: 1 } : {}),
      makeNode('DequantizeLinear', ['wq', 'ws', 'wz'], ['wd'], 'wdq', { axis: 0 }),
      makeNode('Conv', ['xd', 'wd', 'b'], ['y'], 'stem', { kernel_shape: [1, 1] }),
      ...(o.nodes ?? []),
    ],
    initializers: [
      ...(o.perChannelInput
        ? [{ name: 's', dims: [3], data: [0.01, 0.02, 0.03] }, { name: 'z', dataType: DataType.UINT8, dims: [3], data: [128, 120, 130] }]
        : [{ name: 's', dims: [], data: [0.01] }, { name: 'z', dataType: DataType.UINT8, dims: [], data: [128] }]),
      o.uint8Weights
        ? { name: 'wq', dataType: DataType.UINT8, dims: [4, 3, 1, 1], data: [200, 10, 130, 90, 250, 128, 5, 60, 180, 140, 100, 30] }
        : { name: 'wq', dataType: DataType.INT8, dims: [4, 3, 1, 1], data: [100, -20, 5, -90, 60, 0, 127, -128, 33, 7, -7, 70] },
      { name: 'ws', dims: [4], data: [0.01, 0.02, 0.005, 0.03] },
      o.uint8Weights ? { name: 'wz', dataType: DataType.UINT8, dims: [4], data: [128, 128, 128, 128] } : { name: 'wz', dataType: DataType.INT8, dims: [4], data: [0, 0, 0, 0] },
      { name: 'b', dims: [4], data: [0.1, -0.2, 0.3, 0] },
      ...(o.inits ?? []),
    ],
  });
  const untouched = async (m: Model) => {
    const f = m.clone();
    expect(padInputChannels(f.graph)).toEqual([]);
    expect(await diff(m, f, X)).toBe(0);
  };

  it('pads the 8-bit input to 4 channels and the int8 weights with zeros: the same outputs (the baseline)', async () => {
    const m = graph();
    const f = m.clone();
    expect(padInputChannels(f.graph)).toEqual([{ input: 'x', from: 3, to: 4, convs: ['stem'] }]);
    expect(f.graph.getTensor('wq').dims.map(Number)).toEqual([4, 4, 1, 1]);
    expect(await diff(m, f, X)).toBe(0);
  });
  it('not a per-channel quantized input (the Pad needs one zero point)', async () => {
    await untouched(graph({ perChannelInput: true }));
  });
  it('not when the dequantized input is a graph output', async () => {
    await untouched(graph({ outputs: ['y', 'xd'] }));
  });
  it('not when the weights (or their DequantizeLinear) also serve a Conv over 3 channels that is not padded', async () => {
    // a second conv reads the float input x (3 channels, not padded) with the same dequantized weights / int8 initializer
    await untouched(graph({ outputs: ['y', 'y2'], nodes: [makeNode('Conv', ['x', 'wd'], ['y2'], 'other', { kernel_shape: [1, 1] })] }));
    await untouched(graph({
      outputs: ['y', 'y2'],
      nodes: [makeNode('DequantizeLinear', ['wq', 'ws', 'wz'], ['wd2'], 'wdq2', { axis: 0 }), makeNode('Conv', ['x', 'wd2'], ['y2'], 'other', { kernel_shape: [1, 1] })],
    }));
  });
  it('not uint8 weights (only int8 ones are padded with int8 zeros)', async () => {
    await untouched(graph({ uint8Weights: true }));
  });
});
