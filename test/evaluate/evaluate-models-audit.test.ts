/**
 * evaluateModels in-process (the CLI tests only reach it through dist/): its option checks refuse what an
 * evaluation cannot use before any long work, and a whole run on tiny Gemm graphs (role `generic`: speed
 * and size only) writes the report folder with what the caller asked for: the label, the speed-run
 * batch, threads, the amend hook, the self-comparison note, and what an earlier report of the same file
 * knew about its making.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateModels, variantLabel, type EvaluateModelsOptions } from '../../pipeline/evaluate/evaluate-models.js';
import { DEFAULT_GATES } from '../../pipeline/evaluate/gates.js';
import { pairFacts, precisionOf, speedDims, type ModelFacts } from '../../pipeline/evaluate/model-facts.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { describeShared, shared } from '../helpers/shared.js';
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import type { Report } from '../../pipeline/report/types.js';
import { oneInt8OneFloatConv, tinyModel } from '../onnx/tiny.js';
import { tinyGemm } from './tiny-gemm.js';

const root = mkdtempSync(path.join(tmpdir(), 'faceopt-evalmodels-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let ref = '';
let variant = '';
let fixed4 = '';
beforeAll(async () => {
  ref = await tinyGemm(path.join(root, 'm.onnx'), 'N', 1);
  variant = await tinyGemm(path.join(root, 'm.v2.onnx'), 'N', 2, true); // a bias: a larger file than the reference
  fixed4 = await tinyGemm(path.join(root, 'f4.onnx'), 4, 3);
});

/** The coded error evaluateModels rejects with, or null when it resolves. */
async function refusal(o: Partial<EvaluateModelsOptions>): Promise<{ code: string | null; message: string } | null> {
  try {
    await evaluateModels({ model: variant, reference: ref, speedRuns: 1, log: () => undefined, reportDir: path.join(root, 'never'), ...o });
  } catch (e) {
    return { code: isFaceoptError(e) ? e.code : null, message: (e as Error).message };
  }
  return null;
}

const readJson = (dir: string): Report => JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as Report;

describe('evaluateModels: options refused before any long work', () => {
  it('a calibration list or a pairs file without --faces (their paths are relative to it)', async () => {
    expect(await refusal({ calibrationList: path.join(root, 'cal.txt') })).toEqual({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringMatching(/paths in --calibration-list are relative to it\) for --faces but received nothing/) });
    expect(await refusal({ role: 'recognizer', pairsFile: path.join(root, 'p.tsv') })).toEqual({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringMatching(/paths in --pairs are relative to it\) for --faces but received nothing/) });
  });

  it('--det-size for a recognizer, naming the flag and value', async () => {
    const r = await refusal({ role: 'recognizer', detSize: 320, facesDir: root });
    expect(r?.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(r?.message).toMatch(/for --det-size but received 320/);
  });

  it('the other role\'s flags, before asking for what the role needs', async () => {
    const r = await refusal({ role: 'detector', roleFlags: [{ flag: '--pairs', role: 'recognizer' }] });
    expect(r?.message).toMatch(/only detector settings .* received --pairs \(recognizers only\)/);
  });

  it('a faces folder that does not exist; a recognizer or detector with no photos at all', async () => {
    const missing = path.join(root, 'no-such-faces');
    expect(await refusal({ facesDir: missing })).toMatchObject({ code: 'FACEOPT_ERR_FILE_NOT_FOUND' });
    expect((await refusal({ role: 'recognizer' }))?.message).toMatch(/a folder of face photos for a recognizer evaluation .* for --faces but received nothing/);
    expect((await refusal({ role: 'detector' }))?.message).toMatch(/photos for a detector evaluation: --faces DIR, --boxes XML or --face-free IMAGE for --faces but received nothing/);
  });

  it('a recognizer with no aligning detector named or found next to either model', async () => {
    const faces = path.join(root, 'faces-rec');
    mkdirSync(path.join(faces, 'A'), { recursive: true });
    const r = await refusal({ role: 'recognizer', facesDir: faces });
    expect(r?.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(r?.message).toMatch(/a face detector to align evaluation faces .* for --detector but received nothing/);
  });

  it('a faces folder whose every photo goes into calibration, when nothing else is given', async () => {
    const faces = path.join(root, 'faces-all-cal');
    mkdirSync(path.join(faces, 'A'), { recursive: true });
    for (const k of [1, 2]) writeFileSync(path.join(faces, 'A', `A_${k}.jpg`), '');
    const r = await refusal({ role: 'detector', facesDir: faces, calibrationSize: 10 });
    expect(r?.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(r?.message).toMatch(/whose 2 photo\(s\) all go into calibration/);
  });

  it('a missing face-free photo or a report folder that cannot be written, before the evaluation runs', async () => {
    const logged: string[] = [];
    const gone = path.join(root, 'gone.jpg');
    expect(await refusal({ role: 'detector', faceFree: [gone], log: (l) => logged.push(l) })).toMatchObject({ code: 'FACEOPT_ERR_FILE_NOT_FOUND' });
    const file = path.join(root, 'a-file');
    writeFileSync(file, '');
    const r = await refusal({ reportDir: path.join(file, 'report'), log: (l) => logged.push(l) });
    expect(r).not.toBeNull();
    expect(logged).toEqual([]); // nothing was evaluated
  });

  it('an int8 reference (it would hide the variant\'s loss)', async () => {
    const q = path.join(root, 'q.onnx');
    await saveModel(oneInt8OneFloatConv(), q);
    expect(await refusal({ reference: q })).toMatchObject({ code: 'FACEOPT_ERR_ALREADY_QUANTIZED' });
  });
});

describe('evaluateModels: a whole run on tiny graphs', () => {
  it('writes the report under FACEOPT_REPORTS as <reference>.<label>, with the amend hook\'s change and threads', async () => {
    const reports = path.join(root, 'reports');
    const before = process.env.FACEOPT_REPORTS;
    process.env.FACEOPT_REPORTS = reports;
    try {
      const logged: string[] = [];
      const gates = { ...DEFAULT_GATES, detector: { minRecall: 0.9, maxKeypointError: 0.1 } };
      const r = await evaluateModels({ model: variant, reference: ref, speedRuns: 1, threads: 1, command: 'faceopt evaluate --model m.v2.onnx', gates, log: (l) => logged.push(l), amend: (rep) => { rep.warnings.push('amended by the caller'); } });
      expect(r.reportDir).toBe(path.join(reports, 'm.v2'));
      const written = readJson(r.reportDir);
      expect(written.variantName).toBe('v2');
      expect(written.role).toBe('generic');
      expect(written.warnings).toContain('amended by the caller');
      expect(written.warnings.some((w) => /evaluating the model with itself|reference file itself/.test(w))).toBe(false);
      expect(written.warnings).toContain('not a face model faceopt recognises: face-specific evaluation unavailable (speed and size only)');
      expect(written.gates.thresholds).toEqual(gates);
      expect(written.provenance.command).toBe('faceopt evaluate --model m.v2.onnx');
      expect(written.reference.sizeBytes).toBe(statSync(ref).size);
      expect(written.variant.sizeBytes).toBe(statSync(variant).size);
      expect(written.variant.sizeBytes).toBeGreaterThan(written.reference.sizeBytes);
      expect(written.sizeRatio).toBe(statSync(variant).size / statSync(ref).size);
      expect(written.speed!.threads).toBe(1);
      expect(written.speed!.executionProvider).toBe('cpu');
      // both graphs take any batch: batch 8 is timed too
      expect(written.speed!.reference.batch8?.samples).toBe(1);
      expect(written.speed!.batch1TimedAt).toBeUndefined();
      expect(logged[0]).toMatch(/^faceopt evaluate: m\.v2 \(fp32\) vs m \(fp32\), generic; /);
    } finally {
      if (before === undefined) delete process.env.FACEOPT_REPORTS; else process.env.FACEOPT_REPORTS = before;
    }
  });

  it('a model against itself: label self, a note saying so; a fixed batch of 4 is timed at batch 4 only', async () => {
    const dir = path.join(root, 'r-self');
    const r = await evaluateModels({ model: fixed4, reference: fixed4, speedRuns: 1, reportDir: dir, log: () => undefined });
    expect(r.report.variantName).toBe('self');
    expect(r.report.warnings).toContain('the variant is the reference file itself: every number compares the model with itself');
    expect(r.report.speed!.batch1TimedAt).toBe(4);
    expect(r.report.speed!.reference.batch8).toBeNull();
    expect(r.report.speed!.note).toMatch(/^both models fix a batch of 4, so the batch-1 row is timed at batch 4; /);
    expect(existsSync(path.join(dir, 'report.json'))).toBe(true);
  });

  it('re-evaluating the same file keeps what the run that made it knew; given provenance or another file replaces it', async () => {
    const dir = path.join(root, 'r-again');
    const calibration: EvaluateModelsOptions['calibration'] = { method: 'minmax', images: 12, config: { size: 12 }, statsPath: null, statsSha256: 'ab'.repeat(32) };
    const first = await evaluateModels({ model: variant, reference: ref, speedRuns: 1, reportDir: dir, log: () => undefined, calibration, floatLayers: [], amend: (rep) => { rep.provenance.madeBy = { command: 'faceopt optimize --int8', warnings: ['3 photos had no face'] }; } });
    expect(first.report.provenance.calibration).toEqual(calibration);
    const again = await evaluateModels({ model: variant, reference: ref, speedRuns: 1, reportDir: dir, log: () => undefined });
    expect(again.report.provenance.calibration).toEqual(calibration);
    expect(again.report.provenance.madeBy).toEqual({ command: 'faceopt optimize --int8', warnings: ['3 photos had no face'] });
    expect(again.report.warnings).toContain('when the variant was made: 3 photos had no face');
    expect(readJson(dir).provenance.calibration).toEqual(calibration);
    // the caller's own provenance wins over the earlier report's
    const given = await evaluateModels({ model: variant, reference: ref, speedRuns: 1, reportDir: dir, log: () => undefined, sensitivity: null });
    expect(given.report.provenance.calibration).toBeNull();
    // another file in the same folder: nothing kept
    const other = path.join(root, 'm.v3.onnx');
    copyFileSync(ref, other);
    const replaced = await evaluateModels({ model: other, reference: ref, speedRuns: 1, reportDir: path.join(root, 'r-again'), log: () => undefined });
    expect(replaced.report.provenance.calibration).toBeNull();
  });

  it('a quantized variant: its precision and float-computing layers read from its graph, unless the caller names them', async () => {
    const floatRef = path.join(root, 'conv.onnx');
    await saveModel(tinyModel({ opset: 13, input: { name: 'x', shape: ['N', 1, 4, 4] }, outputs: ['z'], nodes: [makeNode('Conv', ['x', 'w'], ['z'], 'n0')], initializers: [{ name: 'w', dims: [1, 1, 1, 1], data: [0.5] }] }), floatRef);
    const q = path.join(root, 'conv.int8.onnx');
    await saveModel(oneInt8OneFloatConv(), q);
    const read = await evaluateModels({ model: q, reference: floatRef, speedRuns: 1, reportDir: path.join(root, 'r-q'), log: () => undefined });
    expect(read.report.variantName).toBe('int8');
    expect(read.report.variant.precision).toBe('int8-qdq');
    expect(read.report.provenance.floatLayers.map((l) => l.layer)).toEqual(['n0']);
    const named = await evaluateModels({ model: q, reference: floatRef, variantPrecision: 'int8-custom', floatLayers: [], speedRuns: 1, reportDir: path.join(root, 'r-q2'), log: () => undefined });
    expect(named.report.variant.precision).toBe('int8-custom');
    expect(named.report.provenance.floatLayers).toEqual([]);
  });

  it('a detector\'s held-apart photos are capped at 200 by default; given photos count when calibration takes the whole folder', async () => {
    // the role is forced on a Gemm graph: the evaluation stops at loading it as a detector, after the
    // first log line has said what the split gave
    const many = path.join(root, 'faces-many');
    for (let i = 0; i < 26; i++) {
      mkdirSync(path.join(many, `P${i}`), { recursive: true });
      for (let k = 1; k <= 10; k++) writeFileSync(path.join(many, `P${i}`, `P${i}_${k}.jpg`), '');
    }
    const logged: string[] = [];
    expect(await refusal({ role: 'detector', facesDir: many, calibrationSize: 10, log: (l) => logged.push(l) })).not.toBeNull();
    expect(logged[0]).toMatch(/; evaluation on 200 of 250 held-apart photos \(evenly spread\)$/);
    const allCal = path.join(root, 'faces-all-cal2');
    mkdirSync(path.join(allCal, 'A'), { recursive: true });
    writeFileSync(path.join(allCal, 'A', 'A_1.jpg'), '');
    const ff = path.join(root, 'ff.jpg');
    writeFileSync(ff, '');
    const seen: string[] = [];
    const r = await refusal({ role: 'detector', facesDir: allCal, calibrationSize: 10, faceFree: [ff], log: (l) => seen.push(l) });
    expect(r?.message).not.toMatch(/all go into calibration/);
    expect(seen[0]).toMatch(/; plus 1 face-free photo\(s\)$/);
  });

  it('variantLabel of a file whose name is only the extension: "variant", never an empty folder suffix', () => {
    expect(variantLabel('/m/x.onnx', '/m/.onnx')).toBe('variant');
  });
});

describe('model facts at their edges', () => {
  const facts = (shape: (number | string | null)[]): ModelFacts => ({ role: 'generic', precision: 'fp32', floatLayers: null, inputShape: shape, batchDynamic: typeof shape[0] !== 'number' });
  it('speedDims: a dynamic channel axis is 3, dynamic height and width the detector size', () => {
    expect(speedDims(facts(['N', 'C', 'H', 'W']), facts(['N', 'C', 'H', 'W']), 320).dims).toEqual([1, 3, 320, 320]);
  });
  it('precisionOf: fp16 only when most float weights are float16 (half of them is not)', () => {
    const inits = [{ name: 'h', dataType: DataType.FLOAT16, dims: [1], data: new Uint16Array([0x3c00]) }, { name: 'f', dims: [1], data: [1] }];
    const m = tinyModel({ opset: 13, input: { name: 'x', shape: [1, 1] }, outputs: ['y'], nodes: [makeNode('Mul', ['x', 'f'], ['y'], 'mul')], initializers: inits });
    expect(precisionOf(m)).toBe('fp32');
  });
});

describeShared('pairFacts on real models', () => {
  it('refuses a detector compared with a recognizer, naming the variant', () => {
    let err: unknown;
    try { pairFacts(shared('models', 'scrfd_500m_bnkps.onnx'), shared('models', 'mobileface_paddle_128d.onnx')); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_MODEL_ROLE')).toBe(true);
    expect((err as Error).message).toContain('mobileface_paddle_128d.onnx');
  });
});
