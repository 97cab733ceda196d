/**
 * Int8 convolutions over an RGB graph input read it padded to 4 channels (pipeline/quantize/pad-input.ts):
 * a Pad of the 8-bit tensor with its zero point, zero int8 weights for the new channel; outputs
 * bit-identical to the unpadded file; left alone where the stem is float, where something else reads
 * the dequantized input, where the channels already fit, and when turned off (TensorRT's export).
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { padInputChannels } from '../../pipeline/quantize/pad-input.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { itExactInt8 } from '../helpers/int8-exact.js';

/** An RGB stem: x [1, c, 8, 8] -> 3x3 Conv (c -> 8) -> Relu -> 1x1 Conv (8 -> 4); `side` also reads x when asked. */
function stem(c = 3, side = false) {
  return tinyModel({
    opset: 13, input: { name: 'x', shape: [1, c, 8, 8] }, outputs: side ? ['y', 's'] : ['y'],
    nodes: [
      makeNode('Conv', ['x', 'w0', 'b0'], ['a'], 'stem', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Relu', ['a'], ['r'], 'relu'),
      makeNode('Conv', ['r', 'w1'], ['y'], 'head', { kernel_shape: [1, 1] }),
      ...(side ? [makeNode('Add', ['x', 'x'], ['s'], 'side')] : []),
    ],
    initializers: [
      { name: 'w0', dims: [8, c, 3, 3], data: seededFloats(8 * c * 9, 1) }, { name: 'b0', dims: [8], data: seededFloats(8, 2) },
      { name: 'w1', dims: [4, 8, 1, 1], data: seededFloats(32, 3) },
    ],
  });
}
const RANGES = { x: [-1, 1], a: [-4, 4], r: [0, 4], y: [-6, 6], s: [-2, 2] } as const;

describe('int8 stem over an RGB input padded to 4 channels', () => {
  itExactInt8('pads the 8-bit input with its zero point and the int8 weights with zeros; outputs bit-identical', async () => {
    const plain = quantizeModel(stem(), RANGES, { padInputChannels: false }).model;
    const { model, result } = quantizeModel(stem(), RANGES);
    expect(result.paddedInputs).toEqual([{ input: 'x', from: 3, to: 4, convs: ['stem'] }]);
    const g = model.graph;
    const pad = g.nodes.find((n) => n.opType === 'Pad')!;
    expect(pad.input).toEqual(['x_quantized', 'x_channel_pads', 'x_zero_point']);
    expect(Array.from(g.getTensor('x_channel_pads').data as ArrayLike<number | bigint>, Number)).toEqual([0, 0, 0, 0, 0, 1, 0, 0]);
    expect(g.producer('x_dequantized')!.input![0]).toBe(pad.output![0]);
    const w = g.getTensor('w0_quantized');
    expect(w.dims.map(Number)).toEqual([8, 4, 3, 3]);
    const wq = w.data as Int8Array;
    for (let o = 0; o < 8; o++) expect(Array.from(wq.subarray(o * 36 + 27, o * 36 + 36))).toEqual(new Array(9).fill(0));
    expect(Array.from(wq.subarray(0, 27))).toEqual(Array.from((plain.graph.getTensor('w0_quantized').data as Int8Array).subarray(0, 27)));
    expect((await maxOutputDiff(plain.toBytes(), model.toBytes(), [1, 3, 8, 8])).maxAbs).toBe(0);
  });

  it('leaves a float stem, a shared dequantized input, 4 channels and a turned-off option alone', () => {
    expect(quantizeModel(stem(), RANGES, { exclude: ['stem'] }).result.paddedInputs).toEqual([]);
    expect(quantizeModel(stem(3, true), RANGES).result.paddedInputs).toEqual([]);
    expect(quantizeModel(stem(4), RANGES).result.paddedInputs).toEqual([]);
    expect(quantizeModel(stem(), RANGES, { padInputChannels: false }).model.graph.nodes.some((n) => n.opType === 'Pad')).toBe(false);
    // on a float graph (no QuantizeLinear on the input) there is nothing to pad
    expect(padInputChannels(stem().graph)).toEqual([]);
  });
});
