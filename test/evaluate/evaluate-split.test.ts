/**
 * What an evaluation may use, on synthetic folders and graphs (always runs): evaluation photos are never
 * calibration photos (list or held-apart split, pairs filtered, explicit photos checked), the report
 * labels, the precision read from a graph, and the speed-run dims both graphs accept.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { splitCalibration } from '../../pipeline/calibrate/sources.js';
import { variantLabel } from '../../pipeline/evaluate/evaluate-models.js';
import { floatComputeLayers, precisionOf, speedDims, type ModelFacts } from '../../pipeline/evaluate/model-facts.js';
import { countIdentities, evaluationSet, evaluationSetWith, identityOf, spread, withoutCalibrationFiles } from '../../pipeline/evaluate/split.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { DataType, makeNode } from '../../pipeline/onnx/proto.js';
import { oneInt8OneFloatConv, tinyModel } from '../onnx/tiny.js';

const root = mkdtempSync(path.join(tmpdir(), 'faceopt-evalsplit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A faces folder with `ids` people of `per` photos each (empty files: nothing is decoded here). */
function facesFolder(name: string, ids: number, per: number): string {
  const dir = path.join(root, name);
  for (let i = 0; i < ids; i++) {
    const id = `Person_${String(i).padStart(3, '0')}`;
    mkdirSync(path.join(dir, id), { recursive: true });
    for (let k = 1; k <= per; k++) writeFileSync(path.join(dir, id, `${id}_${String(k).padStart(4, '0')}.jpg`), '');
  }
  return dir;
}
const img = (i: number, k: number) => `Person_${String(i).padStart(3, '0')}/Person_${String(i).padStart(3, '0')}_${String(k).padStart(4, '0')}.jpg`;

describe('evaluationSet: evaluation photos are never calibration photos', () => {
  const faces = facesFolder('lfw', 20, 3); // 60 photos

  it('with a calibration list: its identities are excluded from photos and pairs, and the report says so', () => {
    const listFile = path.join(root, 'cal.txt');
    writeFileSync(listFile, `${[img(0, 1), img(0, 2), img(1, 1), img(2, 3)].join('\n')}\n`);
    const pairs = [
      { left: img(3, 1), right: img(3, 2), same: true },
      { left: img(0, 3), right: img(4, 1), same: false }, // Person_000 calibrated: dropped
      { left: img(5, 1), right: img(6, 1), same: false },
      { left: img(2, 1), right: img(2, 2), same: true }, // Person_002 calibrated (other photo): dropped
    ];
    const s = evaluationSet({ facesDir: faces, calibrationList: listFile, pairs: { file: '/x/pairs.tsv', pairs }, maxImages: 500 });
    expect(s.calibration).toHaveLength(4);
    expect(s.droppedPairs).toBe(2);
    expect(s.pairs!.pairs.map((p) => p.left)).toEqual([img(3, 1), img(5, 1)]);
    expect(s.evalImages).toHaveLength(51); // 17 other people x 3
    expect(s.evalImages.some((p) => ['Person_000', 'Person_001', 'Person_002'].includes(identityOf(p)))).toBe(false);
    expect(s.split).toMatchObject({ method: 'list', calibrationImages: 4, calibrationIdentities: 3, evaluationImages: 4, evaluationIdentities: 3, sharedIdentities: 0 });
    expect(s.split.description).toMatch(/identities of cal\.txt excluded; evaluation on 2 pairs of pairs\.tsv \(2 touching calibration identities left out\)/);
    expect(s.warnings).toEqual(['2 of 4 pairs in pairs.tsv involve calibration identities and were left out']);
  });

  it('with only a faces folder: the held-apart split optimize makes (same size), capped and evenly spread', () => {
    const ref = splitCalibration(faces, { size: 9 });
    const s = evaluationSet({ facesDir: faces, calibrationSize: 9, maxImages: 10 });
    expect(s.calibration).toEqual(ref.calibration);
    expect(s.evalImages).toEqual(spread(ref.heldApart, 10));
    expect(s.evalImages).toHaveLength(10);
    const calIds = new Set(ref.calibration.map(identityOf));
    expect(s.evalImages.every((p) => !calIds.has(identityOf(p)))).toBe(true);
    expect(s.split).toMatchObject({ method: 'by-identity', calibrationImages: 9, calibrationIdentities: 3, evaluationImages: 10, sharedIdentities: 0 });
    expect(s.split.description).toMatch(/held-apart split by identity hash.*evaluation on 10 of 51 held-apart photos \(evenly spread\)/);
  });

  it('says when --calibration-size asks for more images than the list or the folder has', () => {
    const listFile = path.join(root, 'short.txt');
    writeFileSync(listFile, `${[img(0, 1), img(1, 1)].join('\n')}\n`);
    expect(splitCalibration(faces, { listFile, size: 50 }).description).toMatch(/^2 images from short\.txt \(--calibration-size 50 asked; the list has 2\);/);
    expect(splitCalibration(faces, { listFile, size: 1 }).description).toMatch(/^1 images from short\.txt; /);
    expect(splitCalibration(faces, { size: 100 }).description).toMatch(/^60 images chosen by identity hash from .* \(--calibration-size 100 asked; the folder has 60\); 0 images/);
    expect(splitCalibration(faces, { size: 9 }).description).not.toContain('asked');
  });

  it('refuses a pairs file whose every pair touches a calibration identity, naming --pairs', () => {
    const ref = splitCalibration(faces, { size: 3 });
    const only = ref.calibration[0]!;
    let err: unknown;
    try { evaluationSet({ facesDir: faces, calibrationSize: 3, pairs: { file: 'p.tsv', pairs: [{ left: only, right: img(19, 1), same: false }] }, maxImages: 5 }); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(/--pairs.*all 1 pairs involve calibration identities/);
  });

  it('a detector\'s given photos: the description and count name those compared, after calibration ones are left out', () => {
    const ref = splitCalibration(faces, { size: 6 });
    const cal = path.join(faces, ref.calibration[0]!);
    const held = path.join(faces, ref.heldApart[0]!);
    const r = evaluationSetWith({
      facesDir: faces, calibrationSize: 6, maxImages: 1000, role: 'detector',
      boxFiles: ['/x/boxes.xml'], annotated: [{ file: cal }, { file: held }, { file: '/elsewhere/a.jpg' }], faceFree: [path.relative(process.cwd(), cal)],
    });
    expect(r.annotated.map((a) => a.file)).toEqual([held, '/elsewhere/a.jpg']);
    expect(r.faceFree).toEqual([]);
    expect(r.warnings).toContain('2 explicitly given photo(s) are calibration photos and were left out');
    // it said "plus 3 annotated photos ... and 1 face-free photo(s)" while 2 and 0 were compared
    expect(r.set.split.description).toMatch(/; plus 2 annotated photos of boxes\.xml and 0 face-free photo\(s\) \(2 given photo\(s\) left out as calibration photos\)$/);
    expect(r.set.split.evaluationImages).toBe(r.set.evalImages.length + 2);
  });

  it('photos given explicitly: calibration ones are left out, held-apart duplicates are counted once', () => {
    const ref = splitCalibration(faces, { size: 6 });
    const cal = path.join(faces, ref.calibration[0]!);
    const held = path.join(faces, ref.heldApart[0]!);
    expect(withoutCalibrationFiles([cal, held, '/elsewhere/dogs.jpg'], faces, ref.calibration)).toEqual({ kept: [held, '/elsewhere/dogs.jpg'], removed: [cal] });
    expect(withoutCalibrationFiles([cal], undefined, ref.calibration)).toEqual({ kept: [cal], removed: [] });
    const s = evaluationSet({ facesDir: faces, calibrationSize: 6, maxImages: 1000, explicitFiles: [held] });
    expect(s.evalImages).toHaveLength(ref.heldApart.length - 1);
    expect(s.evalImages).not.toContain(ref.heldApart[0]);
    expect(s.split.description).toMatch(/1 more are among the photos given explicitly/);
  });

  it('without a faces folder: explicit photos, split method separate-sources', () => {
    const s = evaluationSet({ maxImages: 5, explicitSources: '9 annotated photos of training.xml' });
    expect(s.evalImages).toEqual([]);
    expect(s.split.method).toBe('separate-sources');
    expect(s.split.description).toMatch(/^evaluation on 9 annotated photos of training\.xml; no faces folder/);
  });

  it('identities and spreading', () => {
    expect(identityOf('A_B/A_B_0001.jpg')).toBe('A_B');
    expect(identityOf('flat.jpg')).toBe('flat.jpg');
    expect(countIdentities([img(1, 1), img(1, 2), img(2, 1)])).toBe(2);
    expect(spread([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 4)).toEqual([0, 2, 5, 7]);
    expect(spread([1, 2], 4)).toEqual([1, 2]);
  });
});

describe('report labels, precision and speed dims', () => {
  it('variantLabel: suffix after the reference name, self, or the file name', () => {
    const ref = path.join(root, 'lfw', 'Person_000', 'Person_000_0001.jpg');
    expect(variantLabel('/m/w600k_r50.onnx', '/m/w600k_r50.int8.onnx')).toBe('int8');
    expect(variantLabel(ref, ref)).toBe('self');
    expect(variantLabel('/m/w600k_r50.onnx', '/tmp/other model.onnx')).toBe('other_model');
    expect(variantLabel('/m/x.onnx', '/out/v2/x.onnx')).toBe('v2-x');
  });

  const conv = (extra: Parameters<typeof tinyModel>[0]['nodes'], inits: NonNullable<Parameters<typeof tinyModel>[0]['initializers']>, x = 'x') => tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 1, 4, 4] }, outputs: ['y'],
    nodes: [...extra, makeNode('Conv', [x, 'w'], ['y'], 'n1')], initializers: [{ name: 'w', dims: [1, 1, 1, 1], data: [0.5] }, ...inits],
  });

  it('precisionOf reads Q/DQ (symmetric or not), QOperator and float16 from the graph', () => {
    expect(precisionOf(conv([], []))).toBe('fp32');
    const qdq = (zpType: number) => conv([
      makeNode('QuantizeLinear', ['x', 's', 'zp'], ['xq'], 'n2'), makeNode('DequantizeLinear', ['xq', 's', 'zp'], ['xd'], 'n3'),
    ], [{ name: 's', dims: [], data: [0.1] }, { name: 'zp', dataType: zpType, dims: [], data: [0] }], 'xd');
    expect(precisionOf(qdq(DataType.INT8))).toBe('int8-qdq-symmetric');
    expect(precisionOf(qdq(DataType.UINT8))).toBe('int8-qdq');
    const qop = conv([makeNode('DynamicQuantizeLinear', ['x'], ['a', 'b', 'c'], 'n4')], []);
    expect(precisionOf(qop)).toBe('int8-qoperator');
    const half = tinyModel({ opset: 13, input: { name: 'x', shape: [1, 2] }, outputs: ['y'], nodes: [makeNode('Add', ['x', 'b'], ['y'], 'n5')], initializers: [{ name: 'b', dataType: DataType.FLOAT16, dims: [2], data: new Uint16Array([0x3c00, 0x3c00]) }] });
    expect(precisionOf(half)).toBe('fp16');
  });

  it('floatComputeLayers: weighted layers a quantized graph computes in float, none listed for a float graph', () => {
    const two = oneInt8OneFloatConv();
    const fl = floatComputeLayers(two, precisionOf(two));
    expect(fl!.map((l) => [l.layer, l.op])).toEqual([['n0', 'Conv']]);
    expect(fl![0]!.reason).toMatch(/computes in float in the variant graph/);
    // QOperator: every float weighted layer left
    const qop = conv([makeNode('DynamicQuantizeLinear', ['x'], ['a', 'b', 'c'], 'n4')], []);
    expect(floatComputeLayers(qop, precisionOf(qop))!.map((l) => l.layer)).toEqual(['n1']);
    expect(floatComputeLayers(conv([], []), 'fp32')).toBeNull();
  });

  it('floatComputeLayers: a conv onnxruntime cannot fuse computes in float even where it reads a DequantizeLinear', () => {
    const layer = (opts: { channelScale?: boolean; weights: 'dq' | 'float' | 'cast'; quantizedOut: boolean }) => {
      const s = opts.channelScale ? 'sc' : 's';
      const w = opts.weights === 'dq' ? 'wd' : opts.weights === 'cast' ? 'wc' : 'w';
      return tinyModel({
        opset: 13, input: { name: 'x', shape: [1, 2, 4, 4] }, outputs: ['y'],
        nodes: [
          makeNode('QuantizeLinear', ['x', 's', 'zp'], ['xq'], 'q'),
          makeNode('DequantizeLinear', ['xq', s, opts.channelScale ? 'zpc' : 'zp'], ['xd'], 'dq', opts.channelScale ? { axis: 1 } : {}),
          makeNode('DequantizeLinear', ['wq', 'ws'], ['wd'], 'wdq'),
          makeNode('Cast', ['wq'], ['wc'], 'cast', { to: DataType.FLOAT }),
          makeNode('Conv', ['xd', w], ['c'], 'layer'),
          ...(opts.quantizedOut ? [makeNode('QuantizeLinear', ['c', 's', 'zp'], ['cq'], 'cq'), makeNode('DequantizeLinear', ['cq', 's', 'zp'], ['y'], 'cdq')] : [makeNode('Relu', ['c'], ['y'], 'relu')]),
        ],
        initializers: [
          { name: 's', dims: [], data: [0.1] }, { name: 'zp', dataType: DataType.UINT8, dims: [], data: [0] },
          { name: 'sc', dims: [2], data: [0.1, 0.1] }, { name: 'zpc', dataType: DataType.UINT8, dims: [2], data: [0, 0] },
          { name: 'w', dims: [1, 2, 1, 1], data: [0.5, 0.25] }, { name: 'wq', dataType: DataType.INT8, dims: [1, 2, 1, 1], data: [64, 32] }, { name: 'ws', dims: [], data: [0.5 / 64] },
        ],
      });
    };
    const floatOnes = (m: ReturnType<typeof layer>) => floatComputeLayers(m, 'int8-qdq')!.map((l) => l.layer);
    expect(floatOnes(layer({ weights: 'dq', quantizedOut: true }))).toEqual([]);
    // float weights between Q/DQ pairs: onnxruntime (1.20+) quantizes them itself
    expect(floatOnes(layer({ weights: 'float', quantizedOut: true }))).toEqual([]);
    // the per-channel "shield" --int8 puts before a layer it keeps float
    expect(floatOnes(layer({ channelScale: true, weights: 'float', quantizedOut: true }))).toEqual(['layer']);
    // int8 weights cast back to float (--int8's weight-only layers): onnxruntime folds the Cast and, between
    // Q/DQ pairs, quantizes the weights again; --int8 only writes them where the input is float
    expect(floatOnes(layer({ weights: 'cast', quantizedOut: true }))).toEqual([]);
    expect(floatOnes(layer({ weights: 'cast', quantizedOut: false }))).toEqual(['layer']);
    // a conv whose output is not quantized (e.g. into a float Relu) is not fused
    expect(floatOnes(layer({ weights: 'dq', quantizedOut: false }))).toEqual(['layer']);
    expect(floatOnes(layer({ weights: 'float', quantizedOut: false }))).toEqual(['layer']);
  });

  it('speedDims: fixed sizes from either graph, batch 8 only when both batches are dynamic', () => {
    const facts = (shape: (number | string | null)[]): ModelFacts => ({ role: 'detector', precision: 'fp32', floatLayers: null, inputShape: shape, batchDynamic: typeof shape[0] !== 'number' });
    expect(speedDims(facts([1, 3, '?', '?']), facts([1, 3, 640, 480]))).toEqual({ dims: [1, 3, 640, 480], dynamicBatch: false });
    expect(speedDims(facts([1, 3, '?', '?']), facts([1, 3, null, null]), 320)).toEqual({ dims: [1, 3, 320, 320], dynamicBatch: false });
    expect(speedDims(facts(['N', 3, 112, 112]), facts(['batch', 3, 112, 112]))).toEqual({ dims: [1, 3, 112, 112], dynamicBatch: true });
    expect(speedDims(facts(['N', 3, 112, 112]), facts([1, 3, 112, 112])).dynamicBatch).toBe(false);
  });
});
