/**
 * summarizeModel / quantizationEvidence, case by case: the whole summary of a small graph, quantization
 * ops in another domain, uint8 weights, and one line of weight evidence however many layers have it.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { quantizationEvidence, summarizeModel } from '../../pipeline/onnx/summary.js';
import { tinyModel } from './tiny.js';

const X = { name: 'x', shape: ['N', 1, 4, 4] as (string | number)[] };

describe('summarizeModel', () => {
  it('a float graph: versions, producer, graph name, inputs, outputs, ops, parameters (int64 shapes excluded) and bytes', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('Conv', ['x', 'w'], ['c'], 'conv'), makeNode('Reshape', ['c', 'shape'], ['y'], 'reshape')],
      initializers: [{ name: 'w', dims: [2, 1, 1, 1], data: [0.5, 2] }, { name: 'shape', dataType: DataType.INT64, dims: [2], data: [-1, 32] }],
    });
    m.proto.opsetImport!.push({ domain: 'com.microsoft', version: 1 });
    expect(summarizeModel(m)).toEqual({
      irVersion: 7,
      opsets: { 'ai.onnx': 13, 'com.microsoft': 1 },
      producer: 'faceopt-test',
      graphName: 'tiny',
      inputs: [{ name: 'x', type: 'float32', shape: ['N', 1, 4, 4] }],
      outputs: [{ name: 'y', type: 'float32', shape: null }],
      nodes: 2,
      ops: { Conv: 1, Reshape: 1 },
      parameters: 2,
      parameterBytes: 2 * 4 + 2 * 8,
      quantized: { isQuantized: false, evidence: [] },
    });
    m.proto.producerVersion = '1.2';
    expect(summarizeModel(m).producer).toBe('faceopt-test 1.2');
  });

  it('one piece of evidence is enough to call a graph quantized; weight evidence is one line however many layers', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [makeNode('Conv', ['x', 'w1'], ['a'], 'c1'), makeNode('Conv', ['a', 'w2'], ['y'], 'c2')],
      initializers: [{ name: 'w1', dataType: DataType.UINT8, dims: [1, 1, 1, 1], data: [3] }, { name: 'w2', dataType: DataType.INT8, dims: [1, 1, 1, 1], data: [3] }],
    });
    const s = summarizeModel(m);
    expect(s.quantized).toEqual({ isQuantized: true, evidence: ['uint8 weights in c1'] });
  });
});

describe('quantizationEvidence', () => {
  it('finds quantization ops in another domain and DynamicQuantizeMatMul', () => {
    const m = tinyModel({
      opset: 13, input: X, outputs: ['y', 'z'],
      nodes: [
        makeNode('QLinearConv', ['x', 's', 'zp', 'w', 's', 'zp', 's', 'zp'], ['y'], 'qc', {}, 'com.microsoft'),
        makeNode('DynamicQuantizeMatMul', ['x', 'w', 's'], ['z'], 'dq', {}, 'com.microsoft'),
      ],
      initializers: [{ name: 'w', dims: [1, 1, 1, 1], data: [1] }, { name: 's', dims: [], data: [1] }, { name: 'zp', dataType: DataType.UINT8, dims: [], data: [0] }],
    });
    expect(quantizationEvidence(m)).toEqual(['1 com.microsoft.DynamicQuantizeMatMul', '1 com.microsoft.QLinearConv']);
  });
});
