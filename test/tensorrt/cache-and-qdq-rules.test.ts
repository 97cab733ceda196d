/**
 * Edges of the legacy calibration cache text (CRLF files, trailing blank lines) and each rule of
 * checkSymmetricQdq taken one at a time: a Q/DQ graph that passes, then one defect per case, each
 * expected to be reported by itself.
 */
import { describe, expect, it } from 'vitest';
import { DataType, makeNode, setAttr } from '../../pipeline/onnx/index.js';
import { parseCalibrationCache, withCacheVersion } from '../../pipeline/tensorrt/calibration-cache.js';
import { checkSymmetricQdq, exportSymmetricQdq } from '../../pipeline/tensorrt/qdq-export.js';
import { probeModel } from '../../pipeline/tensorrt/probe.js';
import { tinyModel } from '../onnx/tiny.js';
import { rangesOf, syntheticStats } from './helpers.js';

describe('calibration cache text edges', () => {
  it('withCacheVersion keeps CRLF line ends (the header line too)', () => {
    const crlf = 'TRT-8601-EntropyCalibration2\r\ndata: 3c008912\r\nconv1: 3c88edfc\r\n';
    expect(withCacheVersion(crlf, '10.3.0')).toBe('TRT-100300-EntropyCalibration2\r\ndata: 3c008912\r\nconv1: 3c88edfc\r\n');
    expect(withCacheVersion('TRT-8601-MinMaxCalibration', 100300)).toBe('TRT-100300-MinMaxCalibration\n');
  });

  it('accepts several trailing blank lines (LF and CRLF)', () => {
    for (const text of ['TRT-8601-EntropyCalibration2\ndata: 3c008912\n\n\n', 'TRT-8601-EntropyCalibration2\r\ndata: 3c008912\r\n\r\n\r\n']) {
      const c = parseCalibrationCache(text);
      expect(c.entries).toEqual([{ name: 'data', scale: c.entries[0]!.scale, bits: 0x3c008912 }]);
    }
  });
});

/**
 * x -> Q(s, zp) -> DQ(s, zp) -> Conv(DQ(wq, ws, zp_w, axis 0)) -> y, all TensorRT-conforming: int8 zero
 * points of 0, scales > 0, per-tensor activation scale, per-channel weight scales on axis 0.
 */
function qdqConv() {
  return tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 2, 4, 4] }, outputs: ['y'],
    nodes: [
      makeNode('QuantizeLinear', ['x', 's', 'zp'], ['xq'], 'q'),
      makeNode('DequantizeLinear', ['xq', 's', 'zp'], ['xd'], 'dq'),
      makeNode('DequantizeLinear', ['wq', 'ws', 'wzp'], ['wd'], 'wdq', { axis: 0 }),
      makeNode('Conv', ['xd', 'wd'], ['y'], 'conv'),
    ],
    initializers: [
      { name: 's', dims: [], data: [0.02] },
      { name: 'zp', dataType: DataType.INT8, dims: [], data: [0] },
      { name: 'wq', dataType: DataType.INT8, dims: [3, 2, 1, 1], data: [1, -2, 3, -4, 5, -6] },
      { name: 'ws', dims: [3], data: [0.1, 0.2, 0.3] },
      { name: 'wzp', dataType: DataType.INT8, dims: [3], data: [0, 0, 0] },
    ],
  });
}

describe('checkSymmetricQdq, one rule at a time', () => {
  it('the conforming graph has no violations', () => {
    expect(checkSymmetricQdq(qdqConv())).toEqual({ quantizeNodes: 1, dequantizeNodes: 2, weightDequantizers: 1, violations: [] });
  });

  it('a non-zero zero point', () => {
    const m = qdqConv();
    m.graph.setTensor('zp', DataType.INT8, [], [3]);
    expect(checkSymmetricQdq(m).violations).toEqual(['QuantizeLinear q: zero point zp is not 0', 'DequantizeLinear dq: zero point zp is not 0']);
  });

  it('a zero, negative or infinite scale', () => {
    for (const bad of [0, -0.5, Infinity]) {
      const m = qdqConv();
      m.graph.setTensor('s', DataType.FLOAT, [], [bad]);
      expect(checkSymmetricQdq(m).violations, String(bad)).toEqual([
        'QuantizeLinear q: scale s has a value that is not a finite number > 0',
        'DequantizeLinear dq: scale s has a value that is not a finite number > 0',
      ]);
    }
  });

  it('a weight DequantizeLinear without axis (ONNX default 1) or on axis 1', () => {
    const m = qdqConv();
    const wdq = m.graph.node('wdq')!;
    wdq.attribute = [];
    expect(checkSymmetricQdq(m).violations).toEqual(['DequantizeLinear wdq: weight wq is quantized on axis 1, not 0']);
    setAttr(wdq, 'axis', 1, 'int');
    expect(checkSymmetricQdq(m).violations).toEqual(['DequantizeLinear wdq: weight wq is quantized on axis 1, not 0']);
  });

  it('a weight with a scale count that is neither 1 nor its output channels', () => {
    const m = qdqConv();
    m.graph.setTensor('ws', DataType.FLOAT, [2], [0.1, 0.2]);
    m.graph.setTensor('wzp', DataType.INT8, [2], [0, 0]);
    expect(checkSymmetricQdq(m).violations).toEqual(['DequantizeLinear wdq: weight wq has 2 scales for 3 output channels']);
  });

  it('a weight that is not int8', () => {
    const m = qdqConv();
    m.graph.setTensor('wq', DataType.UINT8, [3, 2, 1, 1], [1, 2, 3, 4, 5, 6]);
    expect(checkSymmetricQdq(m).violations).toEqual(['DequantizeLinear wdq: weight wq is not int8']);
  });

  it('a weight zero point whose shape differs from its scale', () => {
    const m = qdqConv();
    m.graph.setTensor('wzp', DataType.INT8, [], [0]);
    expect(checkSymmetricQdq(m).violations).toEqual(['DequantizeLinear wdq: zero point and scale of wq have different shapes']);
  });

  it('a per-channel activation scale', () => {
    const m = qdqConv();
    m.graph.setTensor('s', DataType.FLOAT, [2], [0.02, 0.03]);
    m.graph.setTensor('zp', DataType.INT8, [2], [0, 0]);
    for (const n of ['q', 'dq']) setAttr(m.graph.node(n)!, 'axis', 1, 'int');
    expect(checkSymmetricQdq(m).violations).toEqual([
      'QuantizeLinear q: activation scale s has 2 values; TensorRT takes per-tensor activation scales',
      'DequantizeLinear dq: activation scale s has 2 values; TensorRT takes per-tensor activation scales',
    ]);
  });

  it('a DequantizeLinear feeding a graph output', () => {
    const m = qdqConv();
    m.graph.proto.output!.push({ ...m.graph.proto.output![0]!, name: 'xd' });
    m.graph.invalidate();
    expect(checkSymmetricQdq(m).violations).toEqual(['DequantizeLinear dq: feeds a graph output (TensorRT placement keeps outputs float)']);
  });
});

describe('exportSymmetricQdq from an opset-11 float graph', () => {
  it('upgrades to opset 13 first (per-channel DequantizeLinear needs it) and the result runs', async () => {
    const float = tinyModel({
      opset: 11, input: { name: 'x', shape: [1, 3, 8, 8] }, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'conv1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Relu', ['c1'], ['r1'], 'relu1'),
        makeNode('Conv', ['r1', 'w2'], ['y'], 'conv2', { kernel_shape: [1, 1] }),
      ],
      initializers: [
        { name: 'w1', dims: [4, 3, 3, 3], data: Array.from({ length: 108 }, (_, i) => ((i * 37) % 17) / 17 - 0.5) },
        { name: 'b1', dims: [4], data: [0.1, -0.1, 0.2, 0] },
        { name: 'w2', dims: [2, 4, 1, 1], data: [0.5, -0.25, 0.125, 1, -1, 0.75, 0.3, -0.6] },
      ],
    });
    const { model, check } = exportSymmetricQdq(float, rangesOf(await syntheticStats(float, [1, 3, 8, 8])));
    expect(float.opset()).toBe(11); // the input is not modified
    expect(model.opset()).toBe(13);
    expect(check.violations).toEqual([]);
    expect(check.weightDequantizers).toBe(2);
    expect((await probeModel(model, [1, 3, 8, 8])).dims.y).toEqual([1, 2, 8, 8]);
  });
});
