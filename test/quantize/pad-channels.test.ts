import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { attrInt } from '../../pipeline/onnx/proto.js';
import { describePadding, padChannels } from '../../pipeline/quantize/rewrites/pad-channels.js';
import { prepareFloatGraph, FP32_REWRITES, INT8_REWRITES, quantizeModel } from '../../pipeline/quantize/index.js';
import { collectActivationStats } from '../../pipeline/calibrate/run.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const X = { name: 'x', shape: [1, 8, 10, 10] };
const dw = (x: string, w: string, b: string, y: string, name: string, c: number) => makeNode('Conv', [x, w, b], [y], name, { group: c, kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
const pw = (x: string, w: string, b: string, y: string, name: string) => makeNode('Conv', [x, w, b], [y], name, { kernel_shape: [1, 1] });

/**
 * A MobileNet-style block: 3x3 (8 -> 20) -> Relu -> depthwise 3x3 -> Clip -> 1x1 (20 -> 12), beside
 * three sets that may not be padded: 20 channels read by a Sigmoid (and a conv), 20 channels that are a graph output,
 * 16 channels (already a multiple of 16), and 20 channels with no depthwise conv (nothing to gain).
 */
function block() {
  return tinyModel({
    opset: 13, input: X, outputs: ['y', 'sg', 'v', 'side', 'z', 'p'],
    nodes: [
      makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'expand', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Relu', ['c1'], ['r1'], 'relu1'),
      dw('r1', 'wd', 'bd', 'd1', 'depthwise', 20),
      makeNode('Clip', ['d1', 'lo', 'hi'], ['r2'], 'relu6'),
      pw('r2', 'w2', 'b2', 'y', 'project'),
      pw('x', 'w3', 'b3', 'c3', 'added'),
      makeNode('Sigmoid', ['c3'], ['sg'], 'sigmoid1'),
      pw('c3', 'w7', 'b7', 'v', 'added_reader'),
      makeNode('Relu', ['x'], ['xr'], 'relu0'),
      pw('xr', 'w4', 'b4', 'side', 'output'),
      makeNode('Sigmoid', ['x'], ['xs'], 'sigmoid0'),
      pw('xs', 'w5', 'b5', 'c5', 'aligned'),
      dw('c5', 'w6', 'b6', 'z', 'depthwise16', 16),
      makeNode('Conv', ['x', 'w8', 'b8'], ['c8'], 'plain', { kernel_shape: [5, 5], pads: [2, 2, 2, 2] }),
      makeNode('Relu', ['c8'], ['r8'], 'relu8'),
      pw('r8', 'w9', 'b9', 'p', 'plain_reader'),
    ],
    initializers: [
      { name: 'w1', dims: [20, 8, 3, 3], data: seededFloats(1440, 1) }, { name: 'b1', dims: [20], data: seededFloats(20, 2) },
      { name: 'wd', dims: [20, 1, 3, 3], data: seededFloats(180, 3) }, { name: 'bd', dims: [20], data: seededFloats(20, 4) },
      { name: 'lo', dims: [], data: [0] }, { name: 'hi', dims: [], data: [6] },
      { name: 'w2', dims: [12, 20, 1, 1], data: seededFloats(240, 5) }, { name: 'b2', dims: [12], data: seededFloats(12, 6) },
      { name: 'w3', dims: [20, 8, 1, 1], data: seededFloats(160, 7) }, { name: 'b3', dims: [20], data: seededFloats(20, 8) },
      { name: 'w4', dims: [20, 8, 1, 1], data: seededFloats(160, 9) }, { name: 'b4', dims: [20], data: seededFloats(20, 10) },
      { name: 'w5', dims: [16, 8, 1, 1], data: seededFloats(128, 11) }, { name: 'b5', dims: [16], data: seededFloats(16, 12) },
      { name: 'w6', dims: [16, 1, 3, 3], data: seededFloats(144, 13) }, { name: 'b6', dims: [16], data: seededFloats(16, 14) },
      { name: 'w7', dims: [4, 20, 1, 1], data: seededFloats(80, 15) }, { name: 'b7', dims: [4], data: seededFloats(4, 16) },
      { name: 'w8', dims: [20, 8, 5, 5], data: seededFloats(4000, 17) }, { name: 'b8', dims: [20], data: seededFloats(20, 18) },
      { name: 'w9', dims: [4, 20, 1, 1], data: seededFloats(80, 19) }, { name: 'b9', dims: [4], data: seededFloats(4, 20) },
    ],
  });
}

describe('channel padding for int8 depthwise convolutions', () => {
  it('pads a conv -> Relu -> depthwise -> Clip -> conv set to 32 channels, exactly, and nothing else', async () => {
    const m = block();
    const padded = m.clone();
    const r = padChannels(padded.graph);
    expect(r).toEqual([{ producer: 'expand', from: 20, to: 32, depthwise: ['depthwise'], readers: ['project'] }]);
    expect(describePadding(r)).toBe('1 channel set padded to multiples of 16 (20 -> 32)');
    const g = padded.graph;
    expect(g.getTensor('w1').dims).toEqual([32, 8, 3, 3]);
    expect(g.getTensor('b1').dims).toEqual([32]);
    expect(g.getTensor('wd').dims).toEqual([32, 1, 3, 3]);
    expect(attrInt(g.node('depthwise')!, 'group', 1)).toBe(32);
    expect(g.getTensor('w2').dims).toEqual([12, 32, 1, 1]);
    // the extra weights are zeros, the original ones where they were
    expect(Array.from(g.getFloat('w1').subarray(1440))).toEqual(new Array(864).fill(0));
    expect(Array.from(g.getFloat('w1').subarray(0, 1440))).toEqual(Array.from(seededFloats(1440, 1)));
    for (const t of ['w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9']) expect(g.getTensor(t).dims).toEqual(m.graph.getTensor(t).dims);
    const diff = await maxOutputDiff(m.toBytes(), padded.toBytes(), X.shape);
    expect(diff.maxAbs).toBe(0);
  });

  it('is an --int8 rewrite (not --fp32), and the padded graph quantizes to what the unpadded one gives', async () => {
    expect(prepareFloatGraph(block(), FP32_REWRITES).padded).toEqual([]);
    expect(prepareFloatGraph(block(), { ...INT8_REWRITES, prelu: 'keep', padChannels: false }).padded).toEqual([]);
    const batches = Array.from({ length: 3 }, (_, i) => ({ data: seededFloats(800, 30 + i), dims: [1, 8, 10, 10] }));
    const quantized = async (pad: boolean) => {
      const m = block();
      expect(prepareFloatGraph(m, { ...INT8_REWRITES, prelu: 'keep', equalize: false, padChannels: pad }).padded).toHaveLength(pad ? 1 : 0);
      const stats = await collectActivationStats(m, batches, { method: 'minmax' });
      const q = quantizeModel(m, Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range] as const)));
      expect(q.result.quantizedNodes).toContain('depthwise');
      return q.model;
    };
    // the extra channels are zeros in int8 too: same ranges, same scales for the real channels
    const diff = await maxOutputDiff((await quantized(false)).toBytes(), (await quantized(true)).toBytes(), X.shape);
    expect(diff.maxAbs).toBeLessThan(1e-5);
  });
});
