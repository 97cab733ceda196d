import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { makeNode } from '../../pipeline/onnx/index.js';
import { carryExclusions, checkExclusions, replacementsOf } from '../../pipeline/quantize/exclusions.js';
import { mergeSiblingConvs } from '../../pipeline/quantize/rewrites/siblings.js';
import { foldBatchNorms } from '../../pipeline/quantize/rewrites/batchnorm.js';
import { rewritePrelus } from '../../pipeline/quantize/rewrites/prelu.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

/** Conv(2->4) -> BN -> PRelu -> Conv(4->2, 1x1) */
function block() {
  return tinyModel({
    opset: 13, input: { name: 'x', shape: [1, 2, 4, 4] }, outputs: ['out'],
    nodes: [
      makeNode('Conv', ['x', 'w1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }),
      makeNode('BatchNormalization', ['c1', 'g', 'b', 'm', 'v'], ['n1'], 'bn1', { epsilon: 1e-5 }),
      makeNode('PRelu', ['n1', 'a'], ['p1'], 'prelu1'),
      makeNode('Conv', ['p1', 'w2'], ['out'], 'project', { kernel_shape: [1, 1] }),
    ],
    initializers: [
      { name: 'w1', dims: [4, 2, 1, 1], data: seededFloats(8, 1) },
      { name: 'g', dims: [4], data: [1, 1.5, 0.5, 2] }, { name: 'b', dims: [4], data: [0, 0.1, -0.1, 0.2] },
      { name: 'm', dims: [4], data: [0, 0.2, 0.1, -0.3] }, { name: 'v', dims: [4], data: [1, 2, 0.5, 1] },
      { name: 'a', dims: [4, 1, 1], data: [0.25, -0.5, 1.5, 0] },
      { name: 'w2', dims: [2, 4, 1, 1], data: seededFloats(8, 2) },
    ],
  });
}

function refusal(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    expect(isFaceoptError(e, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected FACEOPT_ERR_BAD_ARGUMENT');
}

describe('--exclude entries', () => {
  it('accept node names and op types of the model as given', () => {
    const g = block().graph;
    expect(() => checkExclusions(g, ['conv1', 'PRelu', 'BatchNormalization', 'project'], 'm.onnx')).not.toThrow();
  });

  it('refuse a name that is neither, naming the op types and near node names', () => {
    const g = block().graph;
    const typo = refusal(() => checkExclusions(g, ['conv1', 'prelu'], 'models/m.onnx'));
    expect(typo).toBe('Expected node names or op types of m.onnx (its op types: BatchNormalization, Conv, PRelu) for --exclude but received prelu, which names no node and no op type of it; op types are case-sensitive: PRelu.');
    const near = refusal(() => checkExclusions(g, ['PROJ'], 'm.onnx'));
    expect(near).toContain('received PROJ, which names no node and no op type of it; node names containing it: project.');
    expect(refusal(() => checkExclusions(g, ['nothing_like_it'], 'm.onnx'))).toMatch(/received nothing_like_it, which names no node and no op type of it\.$/);
  });

  it('carry a rewritten PRelu over to the nodes made in its place, and a folded BatchNormalization to its conv', () => {
    const source = block();
    const prepared = source.clone();
    const { folded } = foldBatchNorms(prepared.graph);
    rewritePrelus(prepared.graph, 'residual-dw');
    const made = prepared.graph.nodes.map((n) => n.name ?? '').filter((n) => n.startsWith('prelu1_'));
    expect(made.length).toBeGreaterThan(0);
    expect(folded).toEqual([expect.objectContaining({ bn: 'bn1', into: 'conv1' })]);
    const r = carryExclusions(source.graph, prepared.graph, ['prelu1', 'bn1', 'Conv'], replacementsOf({ batchNorm: folded, siblings: [] }));
    expect(r.exclude).toEqual([...made, 'conv1', 'Conv']);
    expect(r.notes).toEqual([
      `--exclude prelu1: the float rewrites replaced it; kept float as ${made.join(', ')}`,
      '--exclude bn1: the float rewrites folded it into conv1; kept float as conv1',
    ]);
    // sibling convolutions merged into one: excluding one keeps the merged conv float
    const heads = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 2, 4, 4] }, outputs: ['s', 'b'],
      nodes: [makeNode('Conv', ['x', 'ws'], ['s'], 'score', { kernel_shape: [1, 1] }), makeNode('Conv', ['x', 'wb'], ['b'], 'box', { kernel_shape: [1, 1] })],
      initializers: [{ name: 'ws', dims: [1, 2, 1, 1], data: [1, 2] }, { name: 'wb', dims: [2, 2, 1, 1], data: [3, 4, 5, 6] }],
    });
    const merged = heads.clone();
    const siblings = mergeSiblingConvs(merged.graph);
    expect(siblings).toHaveLength(1);
    const m = carryExclusions(heads.graph, merged.graph, ['box'], replacementsOf({ batchNorm: [], siblings }));
    expect(m.exclude).toEqual([siblings[0]!.node]);
    expect(m.notes).toEqual([`--exclude box: the float rewrites merged it with its siblings into ${siblings[0]!.node}; kept float as ${siblings[0]!.node}`]);
    // without the replacement record there is nothing to hand it to
    expect(carryExclusions(source.graph, prepared.graph, ['bn1']).notes).toEqual([expect.stringMatching(/^--exclude bn1: the float rewrites removed it .* so it excludes nothing/)]);
    // an op type the rewrites removed altogether is carried node by node
    const byType = carryExclusions(source.graph, prepared.graph, ['PRelu']);
    expect(byType.exclude).toEqual(made);
    expect(byType.notes).toEqual([`--exclude PRelu: the float rewrites replaced its 1 node(s); kept float the ${made.length} node(s) made in their place (${made.slice(0, 3).join(', ')}${made.length > 3 ? ', ...' : ''})`]);
    // and BatchNormalization, folded, through the fold record
    expect(carryExclusions(source.graph, prepared.graph, ['BatchNormalization'], replacementsOf({ batchNorm: folded, siblings: [] })).exclude).toEqual(['conv1']);
    expect(carryExclusions(source.graph, prepared.graph, ['BatchNormalization']).notes).toEqual([expect.stringMatching(/^--exclude BatchNormalization: the float rewrites removed it/)]);
  });
});
