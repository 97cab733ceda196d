/**
 * Mutation audit of pipeline/quantize/cuts.ts: what counts as a path back to the graph input.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { makeValueInfo } from '../../pipeline/onnx/graph.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { nodesAfter } from '../../pipeline/quantize/cuts.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const chain = (extra: ReturnType<typeof makeNode>[] = [], outputs = ['y']) => tinyModel({
  opset: 13, input: { name: 'x', shape: [1, 4, 4, 4] }, outputs,
  nodes: [
    makeNode('Conv', ['x', 'w1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }),
    makeNode('Relu', ['c1'], ['r1'], 'relu'),
    makeNode('Conv', ['r1', 'w2'], ['y'], 'conv2', { kernel_shape: [1, 1] }),
    ...extra,
  ],
  initializers: [{ name: 'w1', dims: [4, 4, 1, 1], data: seededFloats(16, 1) }, { name: 'w2', dims: [4, 4, 1, 1], data: seededFloats(16, 2) }],
});
const names = (s: Set<{ name?: string | null }> | null) => (s ? [...s].map((n) => n.name).sort() : null);

describe('nodesAfter', () => {
  it('weights listed among the graph inputs (IR < 4 style) are not a path around the cut', () => {
    const m = chain();
    for (const w of ['w1', 'w2']) m.graph.proto.input!.push(makeValueInfo(w, DataType.FLOAT, [4, 4, 1, 1]));
    m.graph.invalidate();
    expect(names(nodesAfter(m.graph, 'r1'))).toEqual(['conv2']);
  });
  it('a graph with a subgraph after the tensor has no cut there', () => {
    const branch = (name: string) => ({ name, node: [makeNode('Identity', ['y'], [`${name}_out`], `${name}_id`)], output: [makeValueInfo(`${name}_out`, DataType.FLOAT, null)] });
    const m = chain([makeNode('If', ['cond'], ['z'], 'if', { then_branch: branch('then'), else_branch: branch('else') })], ['z']);
    m.graph.setTensor('cond', DataType.BOOL, [], [1]);
    m.graph.invalidate();
    expect(nodesAfter(m.graph, 'r1')).toBeNull();
  });
});
