/**
 * Mutation audit of pipeline/quantize/exclusions.ts: `--exclude` entries carried over the float rewrites,
 * on graphs built by hand so that each rule decides the answer.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { carryExclusions, checkExclusions } from '../../pipeline/quantize/exclusions.js';
import { tinyModel } from '../onnx/tiny.js';

/** A graph of Relu nodes with the given names (one chain), for name-only checks. */
const named = (...names: string[]) => tinyModel({
  opset: 13, input: { name: 'x', shape: [1, 2] }, outputs: [`t${names.length}`],
  nodes: names.map((n, i) => makeNode('Relu', [i ? `t${i}` : 'x'], [`t${i + 1}`], n)),
}).graph;
/** Same, each node with its op type: [name, op]. */
const typed = (...nodes: [string, string][]) => tinyModel({
  opset: 13, input: { name: 'x', shape: [1, 2] }, outputs: [`t${nodes.length}`],
  nodes: nodes.map(([n, op], i) => makeNode(op, [i ? `t${i}` : 'x'], [`t${i + 1}`], n)),
}).graph;

describe('checkExclusions hint', () => {
  it('names at most three node names containing the entry', () => {
    const g = named('conv_a', 'conv_b', 'conv_c', 'conv_d');
    expect(() => checkExclusions(g, ['CONV_'], 'm.onnx')).toThrow(/node names containing it: conv_a, conv_b, conv_c\.$/);
  });
});

describe('carryExclusions', () => {
  it('an entry kept and another carried onto the same node are listed once', () => {
    const source = named('conv1', 'bn1');
    const rewritten = named('conv1');
    const r = carryExclusions(source, rewritten, ['conv1', 'bn1'], [{ from: 'bn1', into: 'conv1', how: 'folded it into' }]);
    expect(r.exclude).toEqual(['conv1']);
  });

  it('a replacement whose node is gone too does not count: the nodes made for the entry do', () => {
    const source = named('bn1', 'conv1');
    const rewritten = named('bn1_dw', 'conv1_x');
    const r = carryExclusions(source, rewritten, ['bn1'], [{ from: 'bn1', into: 'conv1', how: 'folded it into' }]);
    expect(r.exclude).toEqual(['bn1_dw']);
    expect(r.notes).toEqual(['--exclude bn1: the float rewrites replaced it; kept float as bn1_dw']);
  });

  it('nodes made for an entry start with `<entry>_` and were not in the source graph', () => {
    // prelu1_old was there before the rewrite; prelu10 is another node, not one made for prelu1
    const source = named('prelu1', 'prelu1_old', 'prelu10');
    const rewritten = named('prelu1_old', 'prelu1_relu', 'prelu10', 'prelu10_add');
    expect(carryExclusions(source, rewritten, ['prelu1']).exclude).toEqual(['prelu1_relu']);
  });

  it('an entry that is a node name of the source is carried as that node, not as every node of an op type of that name', () => {
    // a node named PRelu (itself a PRelu) beside another PRelu, p2; both rewritten
    const source = typed(['PRelu', 'PRelu'], ['p2', 'PRelu']);
    const rewritten = typed(['PRelu_relu', 'Relu'], ['p2_relu', 'Relu']);
    expect(carryExclusions(source, rewritten, ['PRelu']).exclude).toEqual(['PRelu_relu']);
  });

  it('an op type whose nodes are unnamed is reported lost, not carried onto unrelated nodes', () => {
    const source = typed(['', 'PRelu'], ['a', 'Relu']);
    const rewritten = typed(['_made', 'Relu'], ['a', 'Relu']);
    const r = carryExclusions(source, rewritten, ['PRelu']);
    expect(r.exclude).toEqual([]);
    expect(r.notes).toEqual([expect.stringMatching(/^--exclude PRelu: the float rewrites removed it/)]);
  });
});
