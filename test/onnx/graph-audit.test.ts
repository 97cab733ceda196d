/**
 * Graph façade edits and indexes, case by case: the behaviours the passes rely on (consumers, renames,
 * node insertion, naming, Constant folding into initializers, subgraph captures, stable toposort,
 * pruning) pinned on tiny graphs built in code.
 */
import { describe, expect, it } from 'vitest';
import { makeNode, onnx, DataType } from '../../pipeline/onnx/index.js';
import { Graph, makeValueInfo } from '../../pipeline/onnx/graph.js';
import type { GraphProto, NodeProto } from '../../pipeline/onnx/proto.js';
import { makeTensor } from '../../pipeline/onnx/tensor.js';
import { tinyModel } from './tiny.js';

/** A graph over input x with the given nodes, outputs and float initializers of one value each. */
function graph(nodes: NodeProto[], outputs: string[], inits: string[] = []): Graph {
  return tinyModel({
    opset: 13, input: { name: 'x', shape: [1] }, outputs, nodes,
    initializers: inits.map((name) => ({ name, dims: [1], data: [1] })),
  }).graph;
}

/** A subgraph (If branch / Loop body) with the given nodes, inputs and one output. */
function subgraph(nodes: NodeProto[], output: string, inputs: string[] = []): GraphProto {
  return { name: 'sub', node: nodes, input: inputs.map((i) => makeValueInfo(i, DataType.FLOAT, [1])), output: [makeValueInfo(output, DataType.FLOAT, [1])] };
}

const names = (ns: NodeProto[]) => ns.map((n) => n.name);

describe('Graph indexes', () => {
  it('a node reading one tensor twice is listed once among its consumers', () => {
    const g = graph([makeNode('Mul', ['x', 'x'], ['y'], 'sq')], ['y']);
    expect(names(g.consumers('x'))).toEqual(['sq']);
  });

  it('subgraphs in a GRAPHS attribute capture outer tensors too', () => {
    const g = graph([makeNode('Relu', ['x'], ['r'], 'relu')], ['y']);
    const custom: NodeProto = { opType: 'Branches', domain: 'test', name: 'br', input: [], output: ['y'], attribute: [
      { name: 'branches', type: onnx.AttributeProto.AttributeType.GRAPHS, graphs: [subgraph([makeNode('Neg', ['r'], ['o'], 'neg')], 'o')] },
    ] };
    g.addNode(custom);
    expect(names(g.consumers('r'))).toEqual(['br']);
    expect(g.isRead('r')).toBe(true);
  });

  it('after toposort consumers come in the new node order', () => {
    const g = graph([makeNode('Add', ['a', 'x'], ['y'], 'late'), makeNode('Relu', ['x'], ['a'], 'first'), makeNode('Abs', ['x'], ['c'], 'other')], ['y', 'c']);
    expect(names(g.consumers('x'))).toEqual(['late', 'first', 'other']);
    g.toposort();
    expect(names(g.nodes)).toEqual(['first', 'other', 'late']);
    expect(names(g.consumers('x'))).toEqual(['first', 'other', 'late']);
  });
});

describe('Graph: constants and value infos', () => {
  it('constantValue only reads Constant nodes (a ConstantOfShape fill value is not its output)', () => {
    const fill = makeTensor('v', DataType.FLOAT, [1], [5]);
    const g = graph([makeNode('Shape', ['x'], ['s'], 'shape'), makeNode('ConstantOfShape', ['s'], ['y'], 'cos', { value: fill })], ['y']);
    expect(g.constantValue('y')).toBeUndefined();
    expect(() => g.getTensor('y')).toThrow(/no initializer or constant named y/);
  });

  it('constantsToInitializers: moves ai.onnx Constants, keeps graph outputs, never duplicates an initializer', () => {
    const v = (x: number) => makeTensor('', DataType.FLOAT, [1], [x]);
    const g = graph([
      { ...makeNode('Constant', [], ['k1'], 'c1', { value: v(2) }), domain: 'ai.onnx' },
      makeNode('Constant', [], ['out'], 'c2', { value: v(3) }),
      makeNode('Constant', [], ['w'], 'c3', { value: v(4) }),
      makeNode('Add', ['x', 'k1'], ['a'], 'add'), makeNode('Mul', ['a', 'w'], ['m'], 'mul'),
    ], ['m', 'out'], ['w']);
    expect(g.constantsToInitializers()).toEqual(['k1']);
    expect(Array.from(g.getFloat('k1'))).toEqual([2]);
    expect(names(g.nodes)).toEqual(['c2', 'c3', 'add', 'mul']);
    expect(g.proto.initializer!.filter((t) => t.name === 'w')).toHaveLength(1);
    expect(Array.from(g.getFloat('w'))).toEqual([1]);
  });

  it('dropValueInfo forgets only the named tensors', () => {
    const g = graph([makeNode('Relu', ['x'], ['a'], 'r'), makeNode('Neg', ['a'], ['y'], 'n')], ['y']);
    g.proto.valueInfo = [makeValueInfo('a', DataType.FLOAT, [1]), makeValueInfo('b', DataType.FLOAT, [2])];
    g.dropValueInfo(['a']);
    expect(g.proto.valueInfo.map((v) => v.name)).toEqual(['b']);
  });
});

describe('Graph edits', () => {
  const chain = () => graph([makeNode('Relu', ['x'], ['a'], 'r'), makeNode('Neg', ['a'], ['y'], 'n')], ['y']);

  it('addNode inserts right before `before`, and at the end when `before` is not in the graph', () => {
    const g = chain();
    g.addNode(makeNode('Abs', ['x'], ['b'], 'abs'), g.node('n'));
    expect(names(g.nodes)).toEqual(['r', 'abs', 'n']);
    g.addNode(makeNode('Sqrt', ['x'], ['c'], 'sqrt'), makeNode('Elsewhere', [], [], 'gone'));
    expect(names(g.nodes)).toEqual(['r', 'abs', 'n', 'sqrt']);
  });

  it('removeNodes forgets the removed producer', () => {
    const g = chain();
    expect(g.producer('a')?.name).toBe('r');
    g.removeNodes([g.node('r')!]);
    expect(g.producer('a')).toBeUndefined();
    expect(g.consumers('x')).toEqual([]);
  });

  it('replaceAllUses touches graph outputs only when asked; replaceInput updates the index', () => {
    const g = chain();
    g.addNode(makeNode('Abs', ['x'], ['b'], 'abs'));
    g.replaceAllUses('y', 'b');
    expect(g.proto.output!.map((o) => o.name)).toEqual(['y']);
    g.replaceAllUses('y', 'b', { graphOutputs: true });
    expect(g.proto.output!.map((o) => o.name)).toEqual(['b']);
    expect(names(g.consumers('a'))).toEqual(['n']);
    g.replaceInput(g.node('n')!, 'a', 'x');
    expect(g.consumers('a')).toEqual([]);
    expect(names(g.consumers('x'))).toEqual(['r', 'n', 'abs']);
  });

  it('renameTensor renames initializers, graph inputs and value infos too', () => {
    const g = graph([makeNode('Mul', ['x', 'w'], ['a'], 'mul'), makeNode('Neg', ['a'], ['y'], 'n')], ['y'], ['w']);
    g.proto.valueInfo = [makeValueInfo('a', DataType.FLOAT, [1])];
    g.renameTensor('w', 'weight');
    g.renameTensor('a', 'mid');
    g.renameTensor('x', 'image');
    expect(g.hasInitializer('weight')).toBe(true);
    expect(g.hasInitializer('w')).toBe(false);
    expect(g.valueInfo('mid')?.shape).toEqual([1]);
    expect(g.inputs.map((i) => i.name)).toEqual(['image']);
    expect(g.node('mul')!.input).toEqual(['image', 'weight']);
  });

  it('removeInitializer drops its graph-input entry (IR < 4 exports)', () => {
    const g = graph([makeNode('Mul', ['x', 'w'], ['y'], 'mul')], ['y'], ['w']);
    g.proto.input!.push(makeValueInfo('w', DataType.FLOAT, [1]));
    g.removeInitializer('w');
    expect(g.proto.input!.map((i) => i.name)).toEqual(['x']);
  });
});

describe('Graph naming', () => {
  it('nameNodes names unnamed and repeated nodes <op>_<index>, node_<index> without an op', () => {
    const g = graph([
      makeNode('Relu', ['x'], ['a'], 'dup'), makeNode('Neg', ['a'], ['b'], 'dup'), makeNode('Abs', ['b'], ['c'], ''),
      { input: ['c'], output: ['y'], name: '' },
    ], ['y']);
    expect(g.nameNodes()).toEqual(['Neg_1', 'Abs_2', 'node_3']);
    expect(names(g.nodes)).toEqual(['dup', 'Neg_1', 'Abs_2', 'node_3']);
  });

  it('uniqueName avoids names used only in value infos or inside subgraphs', () => {
    const g = graph([makeNode('If', ['x'], ['y'], 'if', {
      then_branch: subgraph([makeNode('Neg', ['x'], ['inner'], 'neg')], 'inner'),
      else_branch: subgraph([makeNode('Abs', ['x'], ['inner2'], 'abs')], 'inner2'),
    })], ['y']);
    g.proto.valueInfo = [makeValueInfo('shape_only', DataType.FLOAT, [1])];
    expect(g.uniqueName('inner')).not.toBe('inner');
    expect(g.uniqueName('neg')).not.toBe('neg');
    expect(g.uniqueName('shape_only')).not.toBe('shape_only');
    expect(g.nameScope().fresh('inner2')).toBe('inner2_1');
  });
});

describe('Graph.toposort with subgraphs, and stability', () => {
  it('keeps ready nodes in their stored order', () => {
    const g = graph([
      makeNode('Add', ['late', 'x'], ['y'], 'waits'), makeNode('Relu', ['x'], ['a'], 'n2'), makeNode('Neg', ['x'], ['b'], 'n3'),
      makeNode('Abs', ['x'], ['c'], 'n4'), makeNode('Sqrt', ['x'], ['late'], 'p'),
    ], ['y', 'a', 'b', 'c']);
    g.toposort();
    expect(names(g.nodes)).toEqual(['n2', 'n3', 'n4', 'p', 'waits']);
  });

  it('orders a node after the producers its subgraphs capture; a subgraph\'s own inputs and initializers are local', () => {
    const body: GraphProto = {
      ...subgraph([makeNode('Add', ['i', 'k'], ['s'], 'add'), makeNode('Mul', ['s', 'outer'], ['o'], 'mul')], 'o', ['i']),
      initializer: [makeTensor('k', DataType.FLOAT, [1], [1])],
    };
    const g = graph([
      makeNode('Loop', ['', 'x'], ['y'], 'loop', { body }), makeNode('Relu', ['x'], ['outer'], 'prod'),
    ], ['y']);
    g.toposort();
    expect(names(g.nodes)).toEqual(['prod', 'loop']);
  });

  it('tensors read in nested subgraphs (an If inside a Loop body) are reads of the outer node', () => {
    const inner = makeNode('If', ['c'], ['io'], 'inner_if', {
      then_branch: subgraph([makeNode('Neg', ['outer'], ['t'], 'neg')], 't'),
      else_branch: subgraph([makeNode('Abs', ['i'], ['e'], 'abs')], 'e'), // 'i' is the Loop body's own input
    });
    const body = subgraph([makeNode('Greater', ['i', 'i'], ['c'], 'gt'), inner], 'io', ['i']);
    const g = graph([makeNode('Loop', ['', 'x'], ['y'], 'loop', { body }), makeNode('Relu', ['x'], ['outer'], 'prod')], ['y']);
    expect(names(g.consumers('outer'))).toEqual(['loop']);
    expect(g.consumers('i')).toEqual([]);
    g.toposort();
    expect(names(g.nodes)).toEqual(['prod', 'loop']);
    expect(g.pruneUnused()).toBe(0);
    expect(names(g.nodes)).toEqual(['prod', 'loop']);
  });

  it('pruneUnused keeps a producer read only inside a kept node\'s subgraph, and drops dead value infos', () => {
    const g = graph([
      makeNode('Relu', ['x'], ['outer'], 'prod'), makeNode('Neg', ['x'], ['dead'], 'dead'),
      makeNode('If', ['x'], ['y'], 'if', {
        then_branch: subgraph([makeNode('Abs', ['outer'], ['t'], 'abs')], 't'),
        else_branch: subgraph([makeNode('Abs', ['x'], ['e'], 'abs2')], 'e'),
      }),
    ], ['y']);
    g.proto.valueInfo = [makeValueInfo('outer', DataType.FLOAT, [1]), makeValueInfo('dead', DataType.FLOAT, [1])];
    expect(g.pruneUnused()).toBe(1);
    expect(names(g.nodes)).toEqual(['prod', 'if']);
    expect(g.proto.valueInfo.map((v) => v.name)).toEqual(['outer']);
  });
});

describe('Graph.opHistogram', () => {
  it('most frequent first, ties by name; ai.onnx is the default domain, others are prefixed', () => {
    const g = graph([
      makeNode('Relu', ['x'], ['a'], 'r1'), makeNode('Mul', ['a', 'a'], ['b'], 'm'), makeNode('Add', ['b', 'b'], ['c'], 'ad'),
      { ...makeNode('Relu', ['c'], ['d'], 'r2'), domain: 'ai.onnx' }, makeNode('Gelu', ['d'], ['y'], 'g', {}, 'com.microsoft'),
    ], ['y']);
    expect(Object.entries(g.opHistogram())).toEqual([['Relu', 2], ['Add', 1], ['com.microsoft.Gelu', 1], ['Mul', 1]]);
  });
});
