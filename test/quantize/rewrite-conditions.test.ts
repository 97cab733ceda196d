/**
 * Mutation audit of the float graph rewrites (pipeline/quantize/rewrites/*): cases the existing tests
 * left open, each one a hand-made mutation survived. Every rewrite is checked by running the rewritten
 * tiny graph in onnxruntime against the original (max |diff| within 1e-4 unless stated) and by the
 * structure it must (or must not) produce.
 */
import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { batchNormsToDepthwise, foldBatchNorms } from '../../pipeline/quantize/rewrites/batchnorm.js';
import { equalizeGraph, findEqualizablePairs } from '../../pipeline/quantize/rewrites/equalize.js';
import { rewritePrelus } from '../../pipeline/quantize/rewrites/prelu.js';
import { mergeSiblingConvs, normalizeSiblingRanges } from '../../pipeline/quantize/rewrites/siblings.js';
import { padChannels } from '../../pipeline/quantize/rewrites/pad-channels.js';
import { maxOutputDiff, seededFloats } from '../onnx/compare.js';
import { tinyModel, type TinySpec } from '../onnx/tiny.js';

type Model = ReturnType<typeof tinyModel>;

/** Per-channel BN parameters with a mean and beta far from 0, so a wrong shift shows. */
const bnInits = (p: string, c: number, seed: number) => [
  { name: `${p}_g`, dims: [c], data: Array.from(seededFloats(c, seed), (v) => 1 + 0.5 * v) },
  { name: `${p}_b`, dims: [c], data: Array.from(seededFloats(c, seed + 1), (v) => 0.5 + v) },
  { name: `${p}_m`, dims: [c], data: Array.from(seededFloats(c, seed + 2), (v) => 0.3 + 0.5 * v) },
  { name: `${p}_v`, dims: [c], data: Array.from(seededFloats(c, seed + 3), (v) => 0.5 + 0.5 * Math.abs(v)) },
];
const bnNode = (x: string, y: string, p: string, name = p) => makeNode('BatchNormalization', [x, `${p}_g`, `${p}_b`, `${p}_m`, `${p}_v`], [y], name);

/** The rewritten copy's outputs against the original's, on one seeded input of the original's shape. */
async function diff(original: Model, rewritten: Model, dims: number[]): Promise<number> {
  return (await maxOutputDiff(original.toBytes(), rewritten.toBytes(), dims)).maxAbs;
}

function model(spec: Omit<TinySpec, 'opset'>): Model {
  return tinyModel({ opset: 13, ...spec });
}

describe('foldBatchNorms: folds only where exact, and exactly', () => {
  it('BN read by two Convs is not folded into one of them (the other would lose its input)', async () => {
    const m = model({
      input: { name: 'x', shape: [1, 4, 5, 5] }, outputs: ['y1', 'y2'],
      nodes: [
        bnNode('x', 'n', 'bn'),
        makeNode('Conv', ['n', 'w1'], ['y1'], 'c1', { kernel_shape: [1, 1] }),
        makeNode('Conv', ['n', 'w2'], ['y2'], 'c2', { kernel_shape: [1, 1] }),
      ],
      initializers: [...bnInits('bn', 4, 1), { name: 'w1', dims: [3, 4, 1, 1], data: seededFloats(12, 5) }, { name: 'w2', dims: [2, 4, 1, 1], data: seededFloats(8, 6) }],
    });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toEqual([]);
    expect(await diff(m, f, [1, 4, 5, 5])).toBeLessThan(1e-4);
  });

  it('BN whose output is also a graph output is not folded into the Conv after it (the output must stay)', async () => {
    const m = model({
      input: { name: 'x', shape: [1, 4, 5, 5] }, outputs: ['n', 'y'],
      nodes: [bnNode('x', 'n', 'bn'), makeNode('Conv', ['n', 'w'], ['y'], 'c', { kernel_shape: [1, 1] })],
      initializers: [...bnInits('bn', 4, 1), { name: 'w', dims: [3, 4, 1, 1], data: seededFloats(12, 5) }],
    });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toEqual([]);
    expect(await diff(m, f, [1, 4, 5, 5])).toBeLessThan(1e-4);
  });

  it('Conv -> BN is not folded when the Conv shares its weights with another Conv', async () => {
    const m = model({
      input: { name: 'x', shape: [1, 3, 5, 5] }, outputs: ['y', 'z'],
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], 'c1', { kernel_shape: [1, 1] }),
        bnNode('c', 'y', 'bn'),
        makeNode('Conv', ['x', 'w', 'b'], ['z'], 'c2', { kernel_shape: [1, 1] }),
      ],
      initializers: [...bnInits('bn', 4, 1), { name: 'w', dims: [4, 3, 1, 1], data: seededFloats(12, 5) }, { name: 'b', dims: [4], data: seededFloats(4, 6) }],
    });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toEqual([]);
    expect(await diff(m, f, [1, 3, 5, 5])).toBeLessThan(1e-4);
  });

  for (const transB of [0, 1]) {
    it(`Gemm (transB ${transB}, alpha 0.5, beta 1.5, C of one value) -> BN folds exactly, B not square`, async () => {
      const m = model({
        input: { name: 'x', shape: [2, 6] }, outputs: ['y'],
        nodes: [makeNode('Gemm', ['x', 'B', 'C'], ['g'], 'fc', { transB, alpha: 0.5, beta: 1.5 }), bnNode('g', 'y', 'bn')],
        initializers: [...bnInits('bn', 4, 1), { name: 'B', dims: transB ? [4, 6] : [6, 4], data: seededFloats(24, 7) }, { name: 'C', dims: [1], data: [0.75] }],
      });
      const f = m.clone();
      expect(foldBatchNorms(f.graph).folded).toEqual([{ bn: 'bn', into: 'fc', how: 'after-gemm' }]);
      expect(f.graph.opHistogram()).toEqual({ Gemm: 1 });
      expect(await diff(m, f, [2, 6])).toBeLessThan(1e-4);
    });
  }

  it('Gemm with a full [M, N] bias -> BN keeps the function (the per-feature fold does not fit it)', async () => {
    const m = model({
      input: { name: 'x', shape: [2, 6] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'B', 'C'], ['g'], 'fc'), bnNode('g', 'y', 'bn')],
      initializers: [...bnInits('bn', 4, 1), { name: 'B', dims: [6, 4], data: seededFloats(24, 7) }, { name: 'C', dims: [2, 4], data: seededFloats(8, 8) }],
    });
    const f = m.clone();
    foldBatchNorms(f.graph);
    expect(await diff(m, f, [2, 6])).toBeLessThan(1e-4);
  });

  it('BN -> Flatten -> Gemm (transB 0, alpha 0.5, beta 1.5) folds exactly', async () => {
    const m = model({
      input: { name: 'x', shape: [2, 4, 3, 3] }, outputs: ['y'],
      nodes: [bnNode('x', 'n', 'bn'), makeNode('Flatten', ['n'], ['fl'], 'flatten', { axis: 1 }), makeNode('Gemm', ['fl', 'B', 'C'], ['y'], 'fc', { alpha: 0.5, beta: 1.5 })],
      initializers: [...bnInits('bn', 4, 1), { name: 'B', dims: [36, 5], data: seededFloats(180, 7) }, { name: 'C', dims: [5], data: seededFloats(5, 8) }],
    });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toEqual([{ bn: 'bn', into: 'fc', how: 'before-gemm' }]);
    expect(await diff(m, f, [2, 4, 3, 3])).toBeLessThan(1e-4);
  });

  it('BN -> Gemm with transA (its K runs over the batch, not the channels) keeps the function', async () => {
    const m = model({
      input: { name: 'x', shape: [3, 3] }, outputs: ['y'],
      nodes: [bnNode('x', 'n', 'bn'), makeNode('Gemm', ['n', 'B', 'C'], ['y'], 'fc', { transA: 1 })],
      initializers: [...bnInits('bn', 3, 1), { name: 'B', dims: [3, 5], data: seededFloats(15, 7) }, { name: 'C', dims: [5], data: seededFloats(5, 8) }],
    });
    const f = m.clone();
    foldBatchNorms(f.graph);
    expect(await diff(m, f, [3, 3])).toBeLessThan(1e-4);
  });

  it('BN -> Flatten(axis 2) -> Gemm (features are not channel-major) keeps the function', async () => {
    const m = model({
      input: { name: 'x', shape: [2, 4, 2, 2] }, outputs: ['y'],
      nodes: [bnNode('x', 'n', 'bn'), makeNode('Flatten', ['n'], ['fl'], 'flatten', { axis: 2 }), makeNode('Gemm', ['fl', 'B', 'C'], ['y'], 'fc')],
      initializers: [...bnInits('bn', 4, 1), { name: 'B', dims: [4, 5], data: seededFloats(20, 7) }, { name: 'C', dims: [5], data: seededFloats(5, 8) }],
    });
    const f = m.clone();
    foldBatchNorms(f.graph);
    expect(await diff(m, f, [2, 4, 2, 2])).toBeLessThan(1e-4);
  });

  const beforeConv = (attrs: Record<string, number | number[] | string>, w: { dims: number[] }) => model({
    input: { name: 'x', shape: [1, 4, 6, 6] }, outputs: ['y'],
    nodes: [bnNode('x', 'n', 'bn'), makeNode('Conv', ['n', 'w'], ['y'], 'conv', attrs)],
    initializers: [...bnInits('bn', 4, 1), { name: 'w', dims: w.dims, data: seededFloats(w.dims.reduce((a, b) => a * b, 1), 9) }],
  });

  it('BN -> Conv with auto_pad VALID (no padding) folds exactly', async () => {
    const m = beforeConv({ kernel_shape: [3, 3], auto_pad: 'VALID' }, { dims: [5, 4, 3, 3] });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toEqual([{ bn: 'bn', into: 'conv', how: 'before-conv' }]);
    expect(await diff(m, f, [1, 4, 6, 6])).toBeLessThan(1e-4);
  });

  it('BN -> Conv with auto_pad SAME_UPPER (padded) is not folded unless asked', async () => {
    const m = beforeConv({ kernel_shape: [3, 3], auto_pad: 'SAME_UPPER' }, { dims: [5, 4, 3, 3] });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toEqual([]);
    expect(await diff(m, f, [1, 4, 6, 6])).toBeLessThan(1e-4);
    // asked for, the fold is approximate at the borders only: the centre taps match
    const p = m.clone();
    expect(foldBatchNorms(p.graph, { preConvPadded: true }).folded.map((x) => x.into)).toEqual(['conv']);
  });

  it('BN -> padded Conv folded on request is reported as before-conv-padded', () => {
    const m = beforeConv({ kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { dims: [5, 4, 3, 3] });
    expect(foldBatchNorms(m.graph, { preConvPadded: true }).folded).toEqual([{ bn: 'bn', into: 'conv', how: 'before-conv-padded' }]);
  });

  it('BN -> grouped Conv (2 groups) without padding folds exactly: each group reads its own channels', async () => {
    const m = beforeConv({ kernel_shape: [1, 1], group: 2 }, { dims: [6, 2, 1, 1] });
    const f = m.clone();
    expect(foldBatchNorms(f.graph).folded).toEqual([{ bn: 'bn', into: 'conv', how: 'before-conv' }]);
    expect(await diff(m, f, [1, 4, 6, 6])).toBeLessThan(1e-4);
  });
});

describe('batchNormsToDepthwise', () => {
  it('leaves a BN alone when a reader is not a Conv (here a 2-D tensor, where a Conv cannot run)', async () => {
    const m = model({
      input: { name: 'x', shape: [2, 4] }, outputs: ['y'],
      nodes: [makeNode('Relu', ['x'], ['r'], 'relu'), bnNode('r', 'n', 'bn'), makeNode('Gemm', ['n', 'B'], ['y'], 'fc')],
      initializers: [...bnInits('bn', 4, 1), { name: 'B', dims: [4, 3], data: seededFloats(12, 7) }],
    });
    const f = m.clone();
    expect(batchNormsToDepthwise(f.graph)).toEqual([]);
    expect(f.graph.opHistogram().BatchNormalization).toBe(1);
    expect(await diff(m, f, [2, 4])).toBeLessThan(1e-4);
  });
  it('leaves a BN alone when its reader is a Relu, whose input rank nothing records (a 2-D tensor here)', async () => {
    const m = model({
      input: { name: 'x', shape: [2, 4] }, outputs: ['y'],
      nodes: [makeNode('Relu', ['x'], ['r'], 'relu'), bnNode('r', 'n', 'bn'), makeNode('Relu', ['n'], ['y'], 'relu2')],
      initializers: bnInits('bn', 4, 1),
    });
    const f = m.clone();
    expect(batchNormsToDepthwise(f.graph)).toEqual([]);
    expect(await diff(m, f, [2, 4])).toBeLessThan(1e-4);
  });
});

describe('cross-layer equalization: the scales it picks, and where it must not scale', () => {
  // conv1 (3 -> 2 channels, 1x1, bias) -> Relu -> the given readers of its 2 channels
  const chain = (readers: { name: string; dims: number[]; data: number[]; attrs?: Record<string, number | number[]> }[], extra: { outputs?: string[]; nodes?: ReturnType<typeof makeNode>[] } = {}) => model({
    input: { name: 'x', shape: [1, 3, 4, 4] }, outputs: extra.outputs ?? readers.map((r) => `${r.name}_out`),
    nodes: [
      makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }),
      makeNode('Relu', ['c1'], ['r1'], 'relu'),
      ...readers.map((r) => makeNode('Conv', ['r1', `${r.name}_w`], [`${r.name}_out`], r.name, { kernel_shape: [1, 1], ...r.attrs })),
      ...(extra.nodes ?? []),
    ],
    initializers: [
      { name: 'w1', dims: [2, 3, 1, 1], data: [0.5, -1, 0.25, 2, 0.75, -0.5] }, { name: 'b1', dims: [2], data: [0.125, -0.25] },
      ...readers.map((r) => ({ name: `${r.name}_w`, dims: r.dims, data: r.data })),
    ],
  });
  const amax = (pre: number[], post: number[]) => new Map([['c1', Float32Array.from(pre)], ['r1', Float32Array.from(post)]]);

  it('dense readers: s_i = sqrt(a_i / w_i) over the largest |w| of every reader, normalized to a geometric mean of 1', async () => {
    // a = sqrt(pre * post) = [4, 1]; |w| columns: max(|-1|, 0.5) = 1 and max(1, 4) = 4; s = sqrt([4/1, 1/4]) = [2, 0.5]
    const m = chain([{ name: 'p', dims: [1, 2, 1, 1], data: [-1, 1] }, { name: 'q', dims: [1, 2, 1, 1], data: [0.5, 4] }]);
    const e = m.clone();
    const r = equalizeGraph(e.graph, amax([16, 1], [1, 1]));
    expect(r.pairs).toBe(1);
    expect(r.spreadBefore).toBeCloseTo(4, 5);
    expect(r.spreadAfter).toBeCloseTo(1, 5);
    const close = (t: string, want: number[]) => Array.from(e.graph.getFloat(t)).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    close('w1', [0.25, -0.5, 0.125, 4, 1.5, -1]);
    close('b1', [0.0625, -0.5]);
    close('p_w', [-2, 0.5]);
    close('q_w', [1, 2]);
    expect(await diff(m, e, [1, 3, 4, 4])).toBeLessThan(1e-5);
  });

  it('a depthwise reader absorbs the scales fully: every channel ends on the geometric mean (spread 1)', async () => {
    const m = chain([{ name: 'dw', dims: [2, 1, 1, 1], data: [1, 1], attrs: { group: 2 } }]);
    const e = m.clone();
    const r = equalizeGraph(e.graph, amax([4, 1], [4, 1]));
    expect(r.spreadBefore).toBeCloseTo(4, 5);
    expect(r.spreadAfter).toBeCloseTo(1, 5);
    // s = a / geomean(a) = [2, 0.5]
    Array.from(e.graph.getFloat('dw_w')).forEach((v, i) => expect(v).toBeCloseTo([2, 0.5][i]!, 6));
    expect(await diff(m, e, [1, 3, 4, 4])).toBeLessThan(1e-5);
  });

  it('channel ranges are floored at 1/64 of the largest before the scales are chosen', () => {
    const e = chain([{ name: 'dw', dims: [2, 1, 1, 1], data: [1, 1], attrs: { group: 2 } }]);
    expect(equalizeGraph(e.graph, amax([128, 1e-3], [128, 1e-3])).spreadBefore).toBeCloseTo(64, 3);
  });

  it('scales are clamped to [1e-4, 1e4] where a reader weight column is all but zero', () => {
    // column 1 of the reader is 1e-20: sqrt(a / w) would scale channel 1 by ~7e4 and channel 0 by ~1.4e-5
    const e = chain([{ name: 'p', dims: [1, 2, 1, 1], data: [1, 1e-20] }]);
    equalizeGraph(e.graph, amax([4, 1], [4, 1]));
    const w1 = e.graph.getFloat('w1');
    expect(w1[0]! / 0.5).toBeCloseTo(1e4, 0); // channel 0 divided by s = 1e-4
    expect(w1[3]! / 2).toBeCloseTo(1e-4, 8); // channel 1 divided by s = 1e4
  });

  it('does not scale across a Sigmoid (not positively homogeneous)', async () => {
    const m = model({
      input: { name: 'x', shape: [1, 3, 4, 4] }, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }),
        makeNode('Sigmoid', ['c1'], ['r1'], 'sig'),
        makeNode('Conv', ['r1', 'w2'], ['y'], 'conv2', { kernel_shape: [1, 1] }),
      ],
      initializers: [{ name: 'w1', dims: [2, 3, 1, 1], data: seededFloats(6, 1) }, { name: 'w2', dims: [1, 2, 1, 1], data: [1, 1] }],
    });
    expect(findEqualizablePairs(m.graph)).toEqual([]);
    const e = m.clone();
    expect(equalizeGraph(e.graph, amax([4, 1], [4, 1])).pairs).toBe(0);
    expect(await diff(m, e, [1, 3, 4, 4])).toBeLessThan(1e-6);
  });

  it('does not scale a tensor that is a graph output, before or after the activation', async () => {
    for (const out of ['c1', 'r1']) {
      const m = chain([{ name: 'p', dims: [1, 2, 1, 1], data: [1, 1] }], { outputs: ['p_out', out] });
      const e = m.clone();
      expect(equalizeGraph(e.graph, amax([16, 1], [16, 1])).pairs).toBe(0);
      expect(await diff(m, e, [1, 3, 4, 4])).toBeLessThan(1e-6);
    }
  });

  it('does not scale a Conv output that another node reads beside the activation', async () => {
    const m = chain([{ name: 'p', dims: [1, 2, 1, 1], data: [1, 1] }], {
      outputs: ['p_out', 'side'],
      nodes: [makeNode('Conv', ['c1', 'side_w'], ['side'], 'side', { kernel_shape: [1, 1] })],
    });
    m.graph.setTensor('side_w', 1, [1, 2, 1, 1], [1, -1]);
    const e = m.clone();
    expect(equalizeGraph(e.graph, amax([16, 1], [16, 1])).pairs).toBe(0);
    expect(await diff(m, e, [1, 3, 4, 4])).toBeLessThan(1e-6);
  });

  it('does not scale a Conv whose weights another Conv shares', async () => {
    const m = chain([{ name: 'p', dims: [1, 2, 1, 1], data: [1, 1] }], {
      outputs: ['p_out', 'twin'],
      nodes: [makeNode('Conv', ['x', 'w1'], ['twin'], 'twin', { kernel_shape: [1, 1] })],
    });
    const e = m.clone();
    expect(equalizeGraph(e.graph, amax([16, 1], [16, 1])).pairs).toBe(0);
    expect(await diff(m, e, [1, 3, 4, 4])).toBeLessThan(1e-6);
  });
});

describe('PRelu rewrites: where they may not apply, the function must stay', () => {
  type Form = Parameters<typeof rewritePrelus>[1];
  const X4 = [1, 3, 4, 4];
  /**
   * conv1 (3 -> 4, 1x1, bias) -> PRelu(slope [4, 1, 1]) -> conv2 (4 -> 2, 1x1), plus `extra` nodes and
   * initializers; slopes below 0, in [0, 1] and above 1 by default.
   */
  const block = (o: { slope?: number[]; outputs?: string[]; nodes?: ReturnType<typeof makeNode>[]; inits?: { name: string; dims: number[]; data: number[] | Float32Array }[]; conv2?: { dims: number[]; group?: number } } = {}) => {
    const c2 = o.conv2 ?? { dims: [2, 4, 1, 1] };
    return model({
      input: { name: 'x', shape: X4 }, outputs: o.outputs ?? ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }),
        makeNode('PRelu', ['c1', 'a'], ['p'], 'prelu'),
        makeNode('Conv', ['p', 'w2'], ['y'], 'conv2', { kernel_shape: [1, 1], ...(c2.group ? { group: c2.group } : {}) }),
        ...(o.nodes ?? []),
      ],
      initializers: [
        { name: 'w1', dims: [4, 3, 1, 1], data: seededFloats(12, 1) }, { name: 'b1', dims: [4], data: seededFloats(4, 2) },
        { name: 'a', dims: [4, 1, 1], data: o.slope ?? [-2, 0.25, 1.7, 3] },
        { name: 'w2', dims: c2.dims, data: seededFloats(c2.dims.reduce((p, q) => p * q, 1), 3) },
        ...(o.inits ?? []),
      ],
    });
  };
  const keeps = async (m: Model, form: Form, dims = X4) => {
    const f = m.clone();
    const res = rewritePrelus(f.graph, form);
    expect(await diff(m, f, dims)).toBeLessThan(1e-4);
    return res;
  };

  it('split-relu: not where the Conv output has another reader, a graph output reads the PRelu, or conv1 shares its weights', async () => {
    const cases = [
      block({ outputs: ['y', 'side'], nodes: [makeNode('Relu', ['c1'], ['side'], 'side')] }),
      block({ outputs: ['y', 'p'] }),
      block({ outputs: ['y', 'twin'], nodes: [makeNode('Conv', ['x', 'w1'], ['twin'], 'twin', { kernel_shape: [1, 1] })] }),
    ];
    for (const m of cases) expect((await keeps(m, 'split-relu')).rewritten).toEqual([]);
  });

  for (const form of ['split-relu', 'sign-concat'] as const) {
    it(`${form}: not into a consuming Conv whose weights another Conv shares`, async () => {
      // z reads conv3's 4 channels with conv2's weights
      const m = block({
        outputs: ['y', 'z'],
        nodes: [makeNode('Conv', ['x', 'w3'], ['c3'], 'conv3', { kernel_shape: [1, 1] }), makeNode('Conv', ['c3', 'w2'], ['z'], 'z', { kernel_shape: [1, 1] })],
        inits: [{ name: 'w3', dims: [4, 3, 1, 1], data: seededFloats(12, 9) }],
      });
      const f = m.clone();
      rewritePrelus(f.graph, form);
      expect(f.graph.getTensor('w2').dims).toEqual([2, 4, 1, 1]);
      expect(await diff(m, f, X4)).toBeLessThan(1e-4);
    });
  }

  it('sign-concat: a grouped reader (2 groups) with a scalar slope gets no Concat (its groups would read the wrong halves)', async () => {
    const m = model({
      input: { name: 'x', shape: X4 }, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }),
        makeNode('PRelu', ['c1', 'a'], ['p'], 'prelu'),
        makeNode('Conv', ['p', 'w2'], ['y'], 'conv2', { kernel_shape: [1, 1], group: 2 }),
      ],
      initializers: [{ name: 'w1', dims: [4, 3, 1, 1], data: seededFloats(12, 1) }, { name: 'a', dims: [1], data: [-1.5] }, { name: 'w2', dims: [4, 2, 1, 1], data: seededFloats(8, 3) }],
    });
    const f = m.clone();
    rewritePrelus(f.graph, 'sign-concat');
    expect(f.graph.opHistogram().Concat).toBeUndefined();
    expect(await diff(m, f, X4)).toBeLessThan(1e-4);
  });

  it('sign-concat: a PRelu that is a graph output is written as sign-dw (no Concat), exactly', async () => {
    const m = block({ outputs: ['y', 'p'] });
    const f = m.clone();
    expect(rewritePrelus(f.graph, 'sign-concat').rewritten).toEqual(['prelu']);
    expect(f.graph.opHistogram().Concat).toBeUndefined();
    expect(await diff(m, f, X4)).toBeLessThan(1e-4);
  });

  it('max: Max(x, a*x) is taken for slopes up to 1 (1 included), refused above 1', async () => {
    const ok = block({ slope: [-2, 0.25, 1, 0] });
    expect((await keeps(ok, 'max')).rewritten).toEqual(['prelu']);
    const above = block({ slope: [-2, 0.25, 1.5, 0] });
    const r = await keeps(above, 'max');
    expect(r.rewritten).toEqual([]);
    expect(r.skipped[0]?.reason).toMatch(/above 1/);
  });

  describe('residual-dw with slopes above 1 (channels 2 and 3 negated around it)', () => {
    it('falls back to sign-dw when the Conv output has another reader', async () => {
      const r = await keeps(block({ outputs: ['y', 'side'], nodes: [makeNode('Relu', ['c1'], ['side'], 'side')] }), 'residual-dw');
      expect(r.fallback?.map((f) => f.name)).toEqual(['prelu']);
    });
    it('falls back when the PRelu output is a graph output', async () => {
      expect((await keeps(block({ outputs: ['y', 'p'] }), 'residual-dw')).fallback?.map((f) => f.name)).toEqual(['prelu']);
    });
    it('falls back when a reader of the PRelu is not a Conv', async () => {
      expect((await keeps(block({ outputs: ['y', 's'], nodes: [makeNode('Sigmoid', ['p'], ['s'], 'sig')] }), 'residual-dw')).fallback?.map((f) => f.name)).toEqual(['prelu']);
    });
    it('falls back when a reader of the PRelu is an Add of a per-channel constant (negating both sides would negate the sum)', async () => {
      const m = block({ outputs: ['y', 's'], nodes: [makeNode('Add', ['p', 'k'], ['s'], 'add')], inits: [{ name: 'k', dims: [1, 4, 1, 1], data: [0.5, -1, 2, 3] }] });
      expect((await keeps(m, 'residual-dw')).fallback?.map((f) => f.name)).toEqual(['prelu']);
    });
    it('falls back when the producing Conv shares its bias', async () => {
      const m = block({ outputs: ['y', 'twin'], nodes: [makeNode('Conv', ['x', 'w3', 'b1'], ['twin'], 'twin', { kernel_shape: [1, 1] })], inits: [{ name: 'w3', dims: [4, 3, 1, 1], data: seededFloats(12, 9) }] });
      expect((await keeps(m, 'residual-dw')).fallback?.map((f) => f.name)).toEqual(['prelu']);
    });
    it('negates the right weights of a grouped reader (2 groups of 2 channels), exactly', async () => {
      const r = await keeps(block({ conv2: { dims: [4, 2, 1, 1], group: 2 } }), 'residual-dw');
      expect(r.fallback).toEqual([]);
      expect(r.rewritten).toEqual(['prelu']);
    });
  });

  it('a slope tensor another PRelu still reads is kept when one of them is rewritten', async () => {
    // prelu2 reads the graph input (no Conv before it): split-relu skips it, and it still needs `a`
    const m = model({
      input: { name: 'x', shape: [1, 4, 4, 4] }, outputs: ['y', 'q'],
      nodes: [
        makeNode('Conv', ['x', 'w1'], ['c1'], 'conv1', { kernel_shape: [1, 1] }),
        makeNode('PRelu', ['c1', 'a'], ['p'], 'prelu'),
        makeNode('Conv', ['p', 'w2'], ['y'], 'conv2', { kernel_shape: [1, 1] }),
        makeNode('PRelu', ['x', 'a'], ['q'], 'prelu2'),
      ],
      initializers: [
        { name: 'w1', dims: [4, 4, 1, 1], data: seededFloats(16, 1) }, { name: 'a', dims: [4, 1, 1], data: [-2, 0.25, 1.7, 3] },
        { name: 'w2', dims: [2, 4, 1, 1], data: seededFloats(8, 3) },
      ],
    });
    const r = await keeps(m, 'split-relu', [1, 4, 4, 4]);
    expect(r.rewritten).toEqual(['prelu']);
    expect(r.skipped.map((s) => s.name)).toEqual(['prelu2']);
  });

  for (const form of ['sign-dw', 'affine-dw', 'residual-dw'] as const) {
    it(`${form}: a scalar slope shaped [1, 1, 1] on 4 channels stays a PRelu (a depthwise conv needs one weight per channel)`, async () => {
      const m = model({
        input: { name: 'x', shape: [1, 4, 3, 3] }, outputs: ['y'],
        nodes: [makeNode('PRelu', ['x', 'a'], ['y'], 'prelu')],
        initializers: [{ name: 'a', dims: [1, 1, 1], data: [0.25] }],
      });
      const r = await keeps(m, form, [1, 4, 3, 3]);
      expect(r.rewritten).toEqual([]);
      expect(r.skipped[0]?.reason).toMatch(/scalar/);
    });
  }

  for (const form of ['sign-dw', 'affine-dw', 'residual-dw'] as const) {
    it(`${form}: a [C, 1, 1] slope on a 5-D input (it broadcasts along D, not the channels) stays a PRelu`, async () => {
      const m = model({
        input: { name: 'x', shape: [1, 3, 2, 4, 4] }, outputs: ['y'],
        nodes: [makeNode('PRelu', ['x', 'a'], ['y'], 'prelu')],
        initializers: [{ name: 'a', dims: [2, 1, 1], data: [-2, 0.5] }],
      });
      const r = await keeps(m, form, [1, 3, 2, 4, 4]);
      expect(r.rewritten).toEqual([]);
      expect(r.skipped[0]?.reason).toMatch(/rank 5/);
    });
  }
});

describe('sibling convolutions: only true siblings merge, and normalizing keeps the function', () => {
  const X8 = [1, 4, 8, 8];
  /** Two convolutions over one Relu'd map, `a` and `b` with their own attributes and weights. */
  const pair = (a: Record<string, number | number[] | string>, b: Record<string, number | number[] | string>, o: { shareW?: boolean; shareB?: boolean; wdims?: number[] } = {}) => {
    const wd = o.wdims ?? [3, 4, 3, 3];
    const n = wd.reduce((p, q) => p * q, 1);
    return model({
      input: { name: 'x', shape: X8 }, outputs: ['ya', 'yb'],
      nodes: [
        makeNode('Relu', ['x'], ['f'], 'relu'),
        makeNode('Conv', ['f', 'wa', 'ba'], ['ya'], 'a', a),
        makeNode('Conv', ['f', o.shareW ? 'wa' : 'wb', o.shareB ? 'ba' : 'bb'], ['yb'], 'b', b),
      ],
      initializers: [
        { name: 'wa', dims: wd, data: seededFloats(n, 1) }, { name: 'ba', dims: [wd[0]!], data: seededFloats(wd[0]!, 2) },
        ...(o.shareW ? [] : [{ name: 'wb', dims: wd, data: seededFloats(n, 3) }]),
        ...(o.shareB ? [] : [{ name: 'bb', dims: [wd[0]!], data: seededFloats(wd[0]!, 4) }]),
      ],
    });
  };
  const k3 = { kernel_shape: [3, 3], pads: [1, 1, 1, 1] };
  const notMerged = async (m: Model) => {
    const f = m.clone();
    expect(mergeSiblingConvs(f.graph)).toEqual([]);
    f.graph.toposort();
    expect(await diff(m, f, X8)).toBeLessThan(1e-5);
  };

  it('merges two plain siblings exactly (the baseline of the cases below)', async () => {
    const m = pair(k3, k3);
    const f = m.clone();
    expect(mergeSiblingConvs(f.graph).map((x) => x.merged)).toEqual([['a', 'b']]);
    f.graph.toposort();
    expect(await diff(m, f, X8)).toBeLessThan(1e-5);
  });
  it('does not merge convolutions with other strides, dilations, pads or auto_pad', async () => {
    await notMerged(pair(k3, { ...k3, strides: [2, 2] }));
    await notMerged(pair({ ...k3, pads: [2, 2, 2, 2] }, { ...k3, dilations: [2, 2], pads: [2, 2, 2, 2] }));
    await notMerged(pair(k3, { kernel_shape: [3, 3], pads: [2, 2, 0, 0] }));
    await notMerged(pair({ kernel_shape: [2, 2], auto_pad: 'SAME_UPPER' }, { kernel_shape: [2, 2], auto_pad: 'SAME_LOWER' }, { wdims: [3, 4, 2, 2] }));
  });
  it('does not merge grouped convolutions (their output channels map to groups)', async () => {
    await notMerged(pair({ ...k3, group: 2 }, { ...k3, group: 2 }, { wdims: [4, 2, 3, 3] }));
  });
  it('does not merge a convolution whose weights or bias another node still reads', async () => {
    const shared = (o: { shareW?: boolean; shareB?: boolean }) => {
      const m = pair(k3, k3);
      // a third conv elsewhere reads a's weights or bias
      m.graph.addNode(makeNode('Conv', ['x', o.shareW ? 'wa' : 'wc', o.shareB ? 'ba' : ''].filter(Boolean), ['yc'], 'c', k3));
      if (!o.shareW) m.graph.setTensor('wc', 1, [3, 4, 3, 3], seededFloats(108, 9));
      m.graph.proto.output!.push({ ...m.graph.proto.output![0]!, name: 'yc' });
      m.graph.invalidate();
      return m;
    };
    for (const o of [{ shareW: true }, { shareB: true }]) {
      const m = shared(o);
      const f = m.clone();
      expect(mergeSiblingConvs(f.graph)).toEqual([]);
      expect(await diff(m, f, X8)).toBeLessThan(1e-5);
    }
  });

  const merged = (outputs: string[]) => {
    const m = model({
      input: { name: 'x', shape: X8 }, outputs,
      nodes: [
        makeNode('Relu', ['x'], ['f'], 'relu'),
        makeNode('Conv', ['f', 'w1', 'b1'], ['s'], 'cls', k3),
        makeNode('Conv', ['f', 'w2', 'b2'], ['box'], 'reg', k3),
        makeNode('Conv', ['f', 'w3', 'b3'], ['kps'], 'kps', k3),
      ],
      initializers: [
        { name: 'w1', dims: [2, 4, 3, 3], data: seededFloats(72, 1) }, { name: 'b1', dims: [2], data: [-4, -3] },
        { name: 'w2', dims: [3, 4, 3, 3], data: seededFloats(108, 2) }, { name: 'b2', dims: [3], data: [3, 4, 5] },
        { name: 'w3', dims: [2, 4, 3, 3], data: seededFloats(72, 3) }, { name: 'b3', dims: [2], data: [0.5, -0.5] },
      ],
    });
    const r = mergeSiblingConvs(m.graph);
    m.graph.toposort();
    return { m, r };
  };

  it('normalizing skips a part nothing reads in the middle and keeps the later parts on their own channels', async () => {
    const { m, r } = merged(['s', 'kps']); // reg's output is read by nothing
    const f = m.clone();
    const ranges: Record<string, readonly [number, number]> = { s: [-9, -1], kps: [-2, 3] };
    expect(normalizeSiblingRanges(f.graph, r, ranges)).toEqual(['s_rescaled', 's', 'kps_rescaled', 'kps']);
    expect(await diff(m, f, X8)).toBeLessThan(1e-4);
  });
  it('normalizing a part whose range is one value shifts it without dividing by zero', async () => {
    const { m, r } = merged(['s', 'box', 'kps']);
    const f = m.clone();
    normalizeSiblingRanges(f.graph, r, { s: [-9, -1], box: [2, 2], kps: [-2, 3] });
    for (const v of f.graph.getFloat(f.graph.producer(r[0]!.output)!.input![1]!)) expect(Number.isFinite(v)).toBe(true);
    expect(await diff(m, f, X8)).toBeLessThan(1e-4);
  });
  it('normalizing leaves a merge alone when a part that is read has no range', async () => {
    const { m, r } = merged(['s', 'box', 'kps']);
    const f = m.clone();
    const ranges: Record<string, readonly [number, number]> = { s: [-9, -1], kps: [-2, 3] };
    expect(normalizeSiblingRanges(f.graph, r, ranges)).toEqual([]);
    expect(ranges[r[0]!.output]).toBeUndefined();
    expect(await diff(m, f, X8)).toBe(0);
  });
});

describe('channel padding: only where every reader takes the zero channels', () => {
  const X8 = [1, 8, 6, 6];
  /** expand (8 -> 20, 3x3, `group` groups) -> Relu -> depthwise 3x3 -> project (20 -> 12), plus `extra`. */
  const chain = (o: { outputs?: string[]; nodes?: ReturnType<typeof makeNode>[]; inits?: { name: string; dims: number[]; data: number[] | Float32Array; dataType?: number }[]; group?: number; shareW?: boolean; shareB?: boolean } = {}) => {
    const g = o.group ?? 1;
    return model({
      input: { name: 'x', shape: X8 }, outputs: o.outputs ?? ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'expand', { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: g }),
        makeNode('Relu', ['c1'], ['r1'], 'relu'),
        makeNode('Conv', ['r1', 'wd', 'bd'], ['d1'], 'depthwise', { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 20 }),
        makeNode('Conv', ['d1', 'w2', 'b2'], ['y'], 'project', { kernel_shape: [1, 1] }),
        ...(o.nodes ?? []),
      ],
      initializers: [
        { name: 'w1', dims: [20, 8 / g, 3, 3], data: seededFloats(1440 / g, 1) }, { name: 'b1', dims: [20], data: seededFloats(20, 2) },
        { name: 'wd', dims: [20, 1, 3, 3], data: seededFloats(180, 3) }, { name: 'bd', dims: [20], data: seededFloats(20, 4) },
        { name: 'w2', dims: [12, 20, 1, 1], data: seededFloats(240, 5) }, { name: 'b2', dims: [12], data: seededFloats(12, 6) },
        ...(o.inits ?? []),
      ],
    });
  };
  const unpadded = async (m: Model) => {
    const f = m.clone();
    const r = padChannels(f.graph);
    expect(r.map((p) => p.producer)).not.toContain('expand');
    expect(await diff(m, f, X8)).toBe(0);
  };

  it('pads the plain chain (the baseline of the cases below)', async () => {
    const m = chain();
    const f = m.clone();
    expect(padChannels(f.graph).map((p) => [p.producer, p.to])).toEqual([['expand', 32]]);
    expect(await diff(m, f, X8)).toBe(0);
  });
  it('not when a tensor on the way is a graph output', async () => {
    await unpadded(chain({ outputs: ['y', 'r1'] }));
  });
  it('not a grouped producer (its output channels belong to groups)', async () => {
    await unpadded(chain({ group: 2 }));
  });
  it('not through a grouped convolution with two outputs per channel (a depth multiplier of 2 is not depthwise here)', async () => {
    const m = model({
      input: { name: 'x', shape: X8 }, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'expand', { kernel_shape: [1, 1] }),
        makeNode('Conv', ['c1', 'wd', 'bd'], ['d1'], 'depthwise', { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 20 }),
        makeNode('Conv', ['d1', 'w2'], ['y'], 'project', { kernel_shape: [1, 1] }),
      ],
      initializers: [
        { name: 'w1', dims: [20, 8, 1, 1], data: seededFloats(160, 1) }, { name: 'b1', dims: [20], data: seededFloats(20, 2) },
        { name: 'wd', dims: [40, 1, 3, 3], data: seededFloats(360, 3) }, { name: 'bd', dims: [40], data: seededFloats(40, 4) },
        { name: 'w2', dims: [12, 40, 1, 1], data: seededFloats(480, 5) },
      ],
    });
    await unpadded(m);
  });
  it('not when a convolution of the set shares its weights or its bias with one outside it', async () => {
    await unpadded(chain({ outputs: ['y', 'z'], nodes: [makeNode('Conv', ['d1', 'w2'], ['z'], 'twin', { kernel_shape: [1, 1] })] }));
    await unpadded(chain({ outputs: ['y', 'z'], nodes: [makeNode('Conv', ['x', 'w3', 'bd'], ['z'], 'twin', { kernel_shape: [1, 1] })], inits: [{ name: 'w3', dims: [20, 8, 1, 1], data: seededFloats(160, 9) }] }));
  });

  /** conv (8 -> 6) read by a Split of `axis` into [2, 4] (sizes `sizes`), each part through a Relu to an output. */
  const split = (axis: number, o: { outputs?: string[]; nodes?: ReturnType<typeof makeNode>[] } = {}) => model({
    input: { name: 'x', shape: X8 }, outputs: o.outputs ?? ['pa', 'pb'],
    nodes: [
      makeNode('Conv', ['x', 'w', 'b'], ['c'], 'heads', { kernel_shape: [1, 1] }),
      makeNode('Split', ['c', 'sizes'], ['sa', 'sb'], 'split', { axis }),
      makeNode('Relu', ['sa'], ['pa'], 'ra'), makeNode('Relu', ['sb'], ['pb'], 'rb'),
      ...(o.nodes ?? []),
    ],
    initializers: [
      { name: 'w', dims: [6, 8, 1, 1], data: seededFloats(48, 1) }, { name: 'b', dims: [6], data: seededFloats(6, 2) },
      { name: 'sizes', dataType: 7, dims: [2], data: [2, 4] },
    ],
  });
  it('a Split along the channels is padded with an extra part (the baseline)', async () => {
    const m = split(1);
    const f = m.clone();
    expect(padChannels(f.graph).map((p) => [p.producer, p.to])).toEqual([['heads', 16]]);
    expect(await diff(m, f, X8)).toBe(0);
  });
  it('not a Split along another axis, a Split whose sizes another Split reads, or a Split input that is a graph output', async () => {
    const notHeads = async (m: Model, dims = X8) => {
      const f = m.clone();
      expect(padChannels(f.graph)).toEqual([]);
      expect(await diff(m, f, dims)).toBe(0);
    };
    // along H: 6 rows split [2, 4]
    await notHeads(model({
      input: { name: 'x', shape: X8 }, outputs: ['pa', 'pb'],
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], 'heads', { kernel_shape: [1, 1] }),
        makeNode('Split', ['c', 'sizes'], ['pa', 'pb'], 'split', { axis: 2 }),
      ],
      initializers: [
        { name: 'w', dims: [6, 8, 1, 1], data: seededFloats(48, 1) }, { name: 'b', dims: [6], data: seededFloats(6, 2) },
        { name: 'sizes', dataType: 7, dims: [2], data: [2, 4] },
      ],
    }));
    // a second Split (of the input's first 6 channels) reads the same sizes initializer
    const shared = split(1, { outputs: ['pa', 'pb', 'qa'], nodes: [makeNode('Slice', ['x', 'st', 'en', 'ax'], ['x6'], 'slice'), makeNode('Split', ['x6', 'sizes'], ['qa', 'qb'], 'split2', { axis: 1 })] });
    shared.graph.setTensor('st', 7, [1], [0]);
    shared.graph.setTensor('en', 7, [1], [6]);
    shared.graph.setTensor('ax', 7, [1], [1]);
    await notHeads(shared);
    await notHeads(split(1, { outputs: ['pa', 'pb', 'c'] }));
  });
});
