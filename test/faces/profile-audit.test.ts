/**
 * Profile detection at its edges (routing bounds, first-node normalisation window, non-square and
 * fixed-batch inputs, anchors from shapes at sizes that are not multiples of the stride, role
 * overrides), graph summaries of a real encoded ModelProto, and the detector-size rules of det-size.ts.
 */
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { checkOptimizeDetSize, resolveDetSize } from '../../pipeline/faces/det-size.js';
import { summarizeModel, type GraphSummary } from '../../pipeline/faces/graph-summary.js';
import { detectorProfile, detectProfile, guessRole, recognizerProfile } from '../../pipeline/faces/profile.js';

type Node = { name: string; opType: string };
const conv = (k: number): Node => ({ name: `Conv_${k}`, opType: 'Conv' });
const rec = (shape: (number | string)[], opts: { outputs?: number; first?: Node[] } = {}): GraphSummary => ({
  inputs: [{ name: 'data', shape }],
  outputs: Array.from({ length: opts.outputs ?? 1 }, (_, k) => ({ name: `fc${k}`, shape: ['N', 512] })),
  firstNodes: opts.first ?? [conv(0)],
});
/** A 3-stride SCRFD with keypoints at a fixed size (stride-8 map ceil(size/8)^2 cells) or dynamic. */
function scrfd(size: number | null, anchors: number, rank: 2 | 3 | 0 = 3): GraphSummary {
  const outputs = [];
  for (const [kind, c] of [['score', 1], ['bbox', 4], ['kps', 10]] as const) {
    for (const s of [8, 16, 32]) {
      const n = Math.ceil((size ?? 640) / s) ** 2 * anchors;
      outputs.push({ name: `${kind}_${s}`, shape: rank === 3 ? [1, n, c] : rank === 2 ? [n, c] : [] });
    }
  }
  return { inputs: [{ name: 'input.1', shape: [1, 3, size ?? '?', size ?? '?'] }], outputs, firstNodes: [conv(0)] };
}
const code = (f: () => unknown) => { try { f(); return 'ok'; } catch (e) { return (e as { code?: string }).code; } };

describe('routing bounds', () => {
  it('recognizer crops from 96 to 128 on each side, exactly one output; five outputs is a detector', () => {
    for (const s of [96, 128]) {
      expect(guessRole(rec([1, 3, s, 112]))).toBe('recognizer');
      expect(guessRole(rec([1, 3, 112, s]))).toBe('recognizer');
    }
    for (const s of [95, 129]) {
      expect(guessRole(rec([1, 3, s, 112]))).toBeNull();
      expect(guessRole(rec([1, 3, 112, s]))).toBeNull();
    }
    expect(guessRole(rec([1, 3, 112, 112], { outputs: 2 }))).toBeNull();
    expect(guessRole(rec([1, 3, 112, 112], { outputs: 5 }))).toBe('detector');
    expect(guessRole(rec([1, 3, 112, 112], { outputs: 4 }))).toBeNull();
  });

  it('a five-output graph is routed to the detector, whose layout table refuses it', () => {
    expect(code(() => detectProfile(rec([1, 3, 640, 640], { outputs: 5 })))).toBe('FACEOPT_ERR_GRAPH');
    expect(code(() => detectProfile(rec([1, 3, 112, 112], { outputs: 2 })))).toBe('FACEOPT_ERR_MODEL_ROLE');
  });

  it('a role override is stronger than the guess, also against `expected`', () => {
    // forced to be a detector where a detector is expected: no role error, the detector's own refusal
    expect(code(() => detectProfile(rec([1, 3, 112, 112]), { role: 'detector' }, 'detector'))).toBe('FACEOPT_ERR_GRAPH');
    expect(code(() => detectProfile(rec([1, 3, 112, 112]), {}, 'detector'))).toBe('FACEOPT_ERR_MODEL_ROLE');
  });
});

describe('recognizer profiles', () => {
  it('inputSize is [width, height]; a fixed batch is recorded', () => {
    const p = recognizerProfile(rec([1, 3, 112, 96]));
    expect(p.inputSize).toEqual([96, 112]);
    expect(p.batch).toBe(1);
  });

  it('Sub then Div among the first 8 nodes is built-in normalisation; the 9th node is too late', () => {
    const subDiv = [{ name: 'a', opType: 'Sub' }, { name: 'b', opType: 'Div' }];
    expect(recognizerProfile(rec([1, 3, 112, 112], { first: subDiv })).mean).toEqual([0, 0, 0]);
    const late = [...Array.from({ length: 8 }, (_, k) => conv(k)), { name: 'Sub_8', opType: 'Sub' }, { name: 'Mul_9', opType: 'Mul' }];
    expect(recognizerProfile(rec([1, 3, 112, 112], { first: late })).mean).toEqual([127.5, 127.5, 127.5]);
    const edge = [...Array.from({ length: 6 }, (_, k) => conv(k)), { name: 'Sub_6', opType: 'Sub' }, { name: 'Mul_7', opType: 'Mul' }];
    expect(recognizerProfile(rec([1, 3, 112, 112], { first: edge })).std).toEqual([1, 1, 1]);
  });

  it('refuses two outputs, a dynamic crop size, and a one-channel input (FACEOPT_ERR_GRAPH)', () => {
    expect(code(() => recognizerProfile(rec([1, 3, 112, 112], { outputs: 2 })))).toBe('FACEOPT_ERR_GRAPH');
    expect(code(() => recognizerProfile(rec([1, 3, 'h', 'w'])))).toBe('FACEOPT_ERR_GRAPH');
    expect(recognizerProfile(rec([1, 3, 'h', 'w']), { inputSize: [112, 112] }).inputSize).toEqual([112, 112]);
    expect(code(() => recognizerProfile(rec([1, 1, 112, 112])))).toBe('FACEOPT_ERR_GRAPH');
  });
});

describe('detector profiles', () => {
  it('anchors from shapes count partial stride-8 cells (a size that is not a multiple of 8)', () => {
    expect(detectorProfile(scrfd(100, 1)).numAnchors).toBe(1);
    expect(detectorProfile(scrfd(100, 2)).numAnchors).toBe(2);
  });

  it('batchedOutputs: rank 3 true, rank 2 false, undeclared null', () => {
    expect(detectorProfile(scrfd(640, 2, 3)).batchedOutputs).toBe(true);
    expect(detectorProfile(scrfd(640, 2, 2)).batchedOutputs).toBe(false);
    expect(detectorProfile(scrfd(640, 2, 0)).batchedOutputs).toBeNull();
  });
});

describe('summarizeModel on an encoded ModelProto', () => {
  it('symbolic, fixed and unknown dims; initializers are not inputs; the first 16 nodes', () => {
    const { onnx } = onnxProto;
    const vi = (name: string, dims: onnxProto.onnx.TensorShapeProto.IDimension[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims } } } });
    const model = onnx.ModelProto.create({
      graph: {
        input: [vi('x', [{ dimParam: 'N' }, { dimValue: 3 }, {}, { dimValue: 0 }]), vi('w', [{ dimValue: 4 }])],
        initializer: [{ name: 'w', dims: [4], dataType: 1, floatData: [1, 2, 3, 4] }],
        output: [vi('y', [{ dimParam: 'N' }, { dimValue: 512 }])],
        node: Array.from({ length: 20 }, (_, k) => ({ name: `n${k}`, opType: k === 0 ? 'Sub' : 'Relu', input: ['x'], output: [`o${k}`] })),
      },
    });
    const decoded = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
    const s = summarizeModel(decoded);
    expect(s.inputs).toEqual([{ name: 'x', shape: ['N', 3, null, null] }]);
    expect(s.outputs).toEqual([{ name: 'y', shape: ['N', 512] }]);
    expect(s.firstNodes).toHaveLength(16);
    expect(s.firstNodes[0]).toEqual({ name: 'n0', opType: 'Sub' });
    expect(s.firstNodes[15]!.name).toBe('n15');
  });
});

describe('detector sizes (det-size.ts)', () => {
  const dynamic = detectorProfile(scrfd(null, 2));
  const fixed = detectorProfile(scrfd(640, 2));

  it('a dynamic detector: 640 by default, any multiple of 32 from 32 to 4096, [width, height] kept in order', () => {
    expect(resolveDetSize(dynamic, undefined)).toEqual([640, 640]);
    expect(resolveDetSize(dynamic, 4096)).toEqual([4096, 4096]);
    expect(resolveDetSize(dynamic, 32)).toEqual([32, 32]);
    expect(resolveDetSize(dynamic, [640, 480])).toEqual([640, 480]);
    for (const bad of [4128, 48, 16, 650]) expect(code(() => resolveDetSize(dynamic, bad)), String(bad)).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });

  it('a fixed detector: its own size only, both sides compared', () => {
    expect(resolveDetSize(fixed, undefined)).toEqual([640, 640]);
    expect(resolveDetSize(fixed, 640)).toEqual([640, 640]);
    expect(code(() => resolveDetSize(fixed, [640, 480]))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => resolveDetSize(fixed, [480, 640]))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });

  it('checkOptimizeDetSize: a detector\'s rule, refused for a recognizer, free for a generic model', () => {
    expect(code(() => checkOptimizeDetSize(fixed, 320))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => checkOptimizeDetSize(dynamic, 320))).toBe('ok');
    expect(code(() => checkOptimizeDetSize(dynamic, 100))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => checkOptimizeDetSize(recognizerProfile(rec([1, 3, 112, 112])), 640))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => checkOptimizeDetSize(recognizerProfile(rec([1, 3, 112, 112])), undefined))).toBe('ok');
    expect(code(() => checkOptimizeDetSize(null, 100))).toBe('ok');
  });
});
