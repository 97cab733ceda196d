/**
 * Profile detection on hand-written graph summaries (table-driven, like InsightFace's model zoo
 * routing): SCRFD layouts by output count and shape, recognizers with and without built-in
 * normalisation, overrides, and the coded errors for graphs that are neither.
 */
import { describe, expect, it } from 'vitest';
import type { GraphSummary } from '../../pipeline/faces/graph-summary.js';
import { detectProfile, detectorProfile, guessRole, recognizerProfile } from '../../pipeline/faces/profile.js';

function scrfd(opts: { strides: number[]; anchors: number; kps: boolean; batched: boolean; names: 'named' | 'numeric'; size: number | null; interleave?: boolean }): GraphSummary {
  const outs: { name: string; shape: (number | string | null)[] }[] = [];
  const kinds: [string, number][] = [['score', 1], ['bbox', 4], ...(opts.kps ? [['kps', 10] as [string, number]] : [])];
  let id = 400;
  for (const [kind, c] of kinds) {
    for (const s of opts.strides) {
      const n = opts.size ? (opts.size / s) ** 2 * opts.anchors : (640 / s) ** 2 * opts.anchors;
      outs.push({ name: opts.names === 'named' ? `${kind}_${s}` : String(id++), shape: opts.batched ? [1, n, c] : [n, c] });
    }
  }
  if (opts.interleave) outs.reverse();
  return {
    inputs: [{ name: 'input.1', shape: [1, 3, opts.size ?? '?', opts.size ?? '?'] }],
    outputs: outs,
    firstNodes: [{ name: 'Conv_0', opType: 'Conv' }, { name: 'Relu_1', opType: 'Relu' }],
  };
}

describe('detector profiles', () => {
  it.each([
    { outputs: 6, strides: [8, 16, 32], anchors: 2, kps: false },
    { outputs: 9, strides: [8, 16, 32], anchors: 2, kps: true },
    { outputs: 10, strides: [8, 16, 32, 64, 128], anchors: 1, kps: false },
    { outputs: 15, strides: [8, 16, 32, 64, 128], anchors: 1, kps: true },
  ])('$outputs outputs: strides $strides, $anchors anchor(s), kps $kps', ({ outputs, strides, anchors, kps }) => {
    for (const batched of [true, false]) {
      for (const names of ['named', 'numeric'] as const) {
        for (const size of [640, null]) {
          const g = scrfd({ strides, anchors, kps, batched, names, size });
          expect(g.outputs).toHaveLength(outputs);
          const p = detectorProfile(g);
          expect(p.role).toBe('detector');
          expect(p.strides).toEqual(strides);
          expect(p.numAnchors).toBe(anchors);
          expect(p.outputs.scores).toHaveLength(strides.length);
          expect(p.outputs.kps === null).toBe(!kps);
          expect(p.batchedOutputs).toBe(batched);
          expect(p.inputSize).toEqual(size ? [size, size] : null);
          expect(p.mean).toEqual([127.5, 127.5, 127.5]);
          expect(p.std).toEqual([128, 128, 128]);
          expect(p.channelOrder).toBe('RGB');
          expect(p.layout).toBe('NCHW');
          expect(JSON.parse(JSON.stringify(p))).toEqual(p); // recorded as JSON
        }
      }
    }
  });

  it('matches outputs by shape when an exporter lists them in another order', () => {
    const p = detectorProfile(scrfd({ strides: [8, 16, 32], anchors: 2, kps: true, batched: true, names: 'named', size: 640, interleave: true }));
    expect(p.outputs).toEqual({
      scores: ['score_8', 'score_16', 'score_32'],
      boxes: ['bbox_8', 'bbox_16', 'bbox_32'],
      kps: ['kps_8', 'kps_16', 'kps_32'],
    });
  });

  it('derives anchors from shapes when the input size is fixed (3 strides, 1 anchor)', () => {
    expect(detectorProfile(scrfd({ strides: [8, 16, 32], anchors: 1, kps: true, batched: true, names: 'named', size: 640 })).numAnchors).toBe(1);
  });

  it('refuses an unknown output count with FACEOPT_ERR_GRAPH', () => {
    const g = scrfd({ strides: [8, 16, 32, 64], anchors: 1, kps: false, batched: true, names: 'named', size: 640 });
    expect(() => detectorProfile(g)).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_GRAPH' }));
  });
});

const recognizer = (first: { name: string; opType: string }[], out = 512): GraphSummary => ({
  inputs: [{ name: 'data', shape: ['N', 3, 112, 112] }],
  outputs: [{ name: 'fc1', shape: ['N', out] }],
  firstNodes: first,
});

describe('recognizer profiles', () => {
  it('defaults to (x - 127.5) / 127.5 RGB and records input, output and embedding size', () => {
    const p = recognizerProfile(recognizer([{ name: 'Conv_0', opType: 'Conv' }, { name: 'PRelu_1', opType: 'PRelu' }], 128));
    expect(p).toMatchObject({ role: 'recognizer', inputName: 'data', inputSize: [112, 112], batch: null, output: 'fc1', embeddingSize: 128 });
    expect(p.mean).toEqual([127.5, 127.5, 127.5]);
    expect(p.std).toEqual([127.5, 127.5, 127.5]);
  });

  it.each([
    [[{ name: '_minusscalar0', opType: 'Sub' }, { name: '_mulscalar0', opType: 'Mul' }], 'mxnet names'],
    [[{ name: 'Sub_0', opType: 'Sub' }, { name: 'Mul_1', opType: 'Mul' }], 'Sub/Mul names'],
    [[{ name: '', opType: 'Sub' }, { name: '', opType: 'Mul' }], 'unnamed Sub/Mul ops'],
  ])('graphs that normalise their input get mean 0 / std 1 (%#: %s)', (first) => {
    const p = recognizerProfile(recognizer(first as { name: string; opType: string }[]));
    expect(p.mean).toEqual([0, 0, 0]);
    expect(p.std).toEqual([1, 1, 1]);
  });

  it('only Sub (no Mul) is not built-in normalisation', () => {
    expect(recognizerProfile(recognizer([{ name: 'Sub_0', opType: 'Sub' }, { name: 'Conv_1', opType: 'Conv' }])).mean).toEqual([127.5, 127.5, 127.5]);
  });

  it('overrides win and are noted', () => {
    const p = recognizerProfile(recognizer([]), { mean: [1, 2, 3], std: 2, channelOrder: 'BGR' });
    expect(p.mean).toEqual([1, 2, 3]);
    expect(p.std).toEqual([2, 2, 2]);
    expect(p.channelOrder).toBe('BGR');
    expect(p.notes.join(' ')).toMatch(/overrid/);
  });
});

describe('routing (InsightFace ModelRouter)', () => {
  it('guesses detector, recognizer or nothing', () => {
    expect(guessRole(scrfd({ strides: [8, 16, 32], anchors: 2, kps: true, batched: true, names: 'named', size: 640 }))).toBe('detector');
    expect(guessRole(recognizer([]))).toBe('recognizer');
    expect(guessRole({ inputs: [{ name: 'x', shape: [1, 3, 192, 192] }], outputs: [{ name: 'y', shape: [1, 212] }], firstNodes: [] })).toBeNull();
  });

  it('a recognizer where a detector is expected gives FACEOPT_ERR_MODEL_ROLE naming both', () => {
    expect(() => detectProfile(recognizer([]), {}, 'detector', 'r.onnx')).toThrow(
      expect.objectContaining({ code: 'FACEOPT_ERR_MODEL_ROLE', params: { path: 'r.onnx', expected: 'detector', actual: 'recognizer' } }),
    );
  });

  it('a graph that is neither gives FACEOPT_ERR_MODEL_ROLE; role override forces a role', () => {
    const landmark: GraphSummary = { inputs: [{ name: 'x', shape: [1, 3, 192, 192] }], outputs: [{ name: 'y', shape: [1, 212] }], firstNodes: [] };
    expect(() => detectProfile(landmark)).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_MODEL_ROLE' }));
    expect(detectProfile(landmark, { role: 'recognizer' }).role).toBe('recognizer');
  });

  it('a non-image input gives FACEOPT_ERR_GRAPH', () => {
    const g: GraphSummary = { inputs: [{ name: 'x', shape: [1, 512] }], outputs: [{ name: 'y', shape: [1, 512] }], firstNodes: [] };
    expect(() => recognizerProfile(g)).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_GRAPH' }));
  });
});
