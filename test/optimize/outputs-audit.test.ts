/**
 * What `optimize` checks before any long work, called directly (mutation audit; the CLI tests reach the
 * same checks through dist/): output paths (checkOutputs, checkNotSource, checkBundleOut) and the locks
 * released however a run ends (withReleases); the source model (loadFloatSource); the detector found next
 * to a recognizer (findDetectorFor); and the words the report gives a float prefix or suffix.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { loadModel, makeNode } from '../../pipeline/onnx/index.js';
import { checkBundleOut, checkNotSource, checkOutputs, withReleases } from '../../pipeline/optimize/outputs.js';
import { loadFloatSource } from '../../pipeline/optimize/source.js';
import { findDetectorFor } from '../../pipeline/optimize/detector-for.js';
import { describePart, floatPart, partConfig, partLayers } from '../../pipeline/optimize/float-parts.js';
import type { Int8Options } from '../../pipeline/optimize/int8.js';
import type { PrefixCandidate } from '../../pipeline/quantize/prefix.js';
import { quantizeModel } from '../../pipeline/quantize/index.js';
import { seededFloats } from '../onnx/compare.js';
import { externalModel, oneInt8OneFloatConv, tinyModel } from '../onnx/tiny.js';
import { describeShared, shared } from '../helpers/shared.js';

const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-outputs-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error code `f` throws (synchronously or not). */
async function codeOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    if (isFaceoptError(e)) return e.code;
    throw e;
  }
  return 'none';
}

const relu = () => tinyModel({ opset: 13, input: { name: 'x', shape: ['N', 4] }, outputs: ['y'], nodes: [makeNode('Relu', ['x'], ['y'], 'relu')] });
function saved(name: string, bytes: Uint8Array = relu().toBytes()): string {
  const f = path.join(dir, name);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, bytes);
  return f;
}

describe('withReleases', () => {
  it('runs every release when the run throws, and when it ends', async () => {
    const ran: string[] = [];
    await expect(withReleases(async (r) => { r.push(() => ran.push('a'), () => ran.push('b')); throw new Error('stop'); })).rejects.toThrow('stop');
    expect(ran).toEqual(['a', 'b']);
    expect(await withReleases(async (r) => { r.push(() => ran.push('c')); return 7; })).toBe(7);
    expect(ran).toEqual(['a', 'b', 'c']);
  });
});

describe('checkOutputs', () => {
  const out = path.join(dir, 'co', 'm.int8.onnx');
  const reports = path.join(dir, 'co-reports');

  it('accepts a new model path with its own report folder', () => {
    expect(() => checkOutputs(out, reports, path.join(dir, 'co', 'stats.json'))).not.toThrow();
  });

  it('refuses an existing folder, a device, a report folder inside the model path, and --stats naming the model (BAD_ARGUMENT naming the flag)', async () => {
    mkdirSync(path.join(dir, 'co-folder'), { recursive: true });
    const refusal = async (f: () => unknown) => {
      try { await f(); } catch (e) { return isFaceoptError(e, 'FACEOPT_ERR_BAD_ARGUMENT') ? (e as Error).message : String(e); }
      return 'none';
    };
    expect(await refusal(() => checkOutputs(path.join(dir, 'co-folder'), reports))).toMatch(/--out.*a folder/);
    symlinkSync(path.join(dir, 'co-folder'), path.join(dir, 'co-folder-link'));
    expect(await refusal(() => checkOutputs(path.join(dir, 'co-folder-link'), reports))).toMatch(/--out.*a folder/);
    expect(await refusal(() => checkOutputs('/dev/null', reports))).toMatch(/--out/);
    expect(await refusal(() => checkOutputs(out, path.join(out, 'report')))).toMatch(/--report-dir/);
    expect(await refusal(() => checkOutputs(out, reports, out))).toMatch(/--stats/);
  });

  it('checkNotSource: a new --out is not the source; the source itself, a link to it and its external data are', async () => {
    const src = saved('src/model.onnx');
    expect(await codeOf(() => checkNotSource(path.join(dir, 'src', 'new.int8.onnx'), src))).toBe('none');
    expect(await codeOf(() => checkNotSource(src, src))).toBe('FACEOPT_ERR_OVERWRITE_SOURCE');
    symlinkSync(src, path.join(dir, 'src', 'link.onnx'));
    expect(await codeOf(() => checkNotSource(path.join(dir, 'src', 'link.onnx'), src))).toBe('FACEOPT_ERR_OVERWRITE_SOURCE');
    mkdirSync(path.join(dir, 'ext'));
    const ext = externalModel(path.join(dir, 'ext'));
    expect(await codeOf(() => checkNotSource(path.join(dir, 'ext', 'weights.bin'), ext))).toBe('FACEOPT_ERR_OVERWRITE_SOURCE');
  });
});

describe('checkBundleOut', () => {
  it('takes a new or empty folder or an earlier bundle; refuses a file, the source\'s folder, and a folder of other files', async () => {
    const src = saved('bundle-src/model.onnx');
    expect(await codeOf(() => checkBundleOut(path.join(dir, 'bundle-new'), src))).toBe('none');
    mkdirSync(path.join(dir, 'bundle-empty'));
    expect(await codeOf(() => checkBundleOut(path.join(dir, 'bundle-empty'), src))).toBe('none');
    const earlier = path.join(dir, 'bundle-earlier');
    mkdirSync(earlier);
    writeFileSync(path.join(earlier, 'plan.json'), '{}');
    writeFileSync(path.join(earlier, 'model.engine'), '');
    expect(await codeOf(() => checkBundleOut(earlier, src))).toBe('none');
    expect(await codeOf(() => checkBundleOut(saved('bundle-file.txt'), src))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(await codeOf(() => checkBundleOut(path.dirname(src), src))).toBe('FACEOPT_ERR_OVERWRITE_SOURCE');
    // a source whose name starts with two dots is in its folder too (taken for outside before)
    const dotted = saved('bundle-dotted/..model.onnx');
    expect(await codeOf(() => checkBundleOut(path.dirname(dotted), dotted))).toBe('FACEOPT_ERR_OVERWRITE_SOURCE');
    const other = path.join(dir, 'bundle-other');
    mkdirSync(other);
    writeFileSync(path.join(other, 'notes.txt'), '');
    expect(await codeOf(() => checkBundleOut(other, src))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });
});

describe('loadFloatSource', () => {
  it('refuses an already quantized model and one onnxruntime cannot load, naming the file', async () => {
    expect(await codeOf(() => loadFloatSource(saved('src-qdq.onnx', oneInt8OneFloatConv().toBytes())))).toBe('FACEOPT_ERR_ALREADY_QUANTIZED');
    const bad = tinyModel({ opset: 13, input: { name: 'x', shape: ['N', 4] }, outputs: ['y'], nodes: [makeNode('NoSuchOp', ['x'], ['y'], 'bad')] });
    const file = saved('src-bad.onnx', bad.toBytes());
    const err = await loadFloatSource(file).catch((e: unknown) => e);
    expect(isFaceoptError(err), String(err)).toBe(true);
    expect((err as Error).message).toContain(file);
    expect((await loadFloatSource(saved('src-ok.onnx'))).graph.inputs[0]!.name).toBe('x');
  });
});

describe('float prefix and suffix in words', () => {
  const cand = (strided: number, border: string | null, layers: string[] = []): PrefixCandidate => ({ strided, border, floatTensors: [], layers });

  it('describePart and partConfig', () => {
    expect(describePart('prefix', cand(0, null))).toBe('none');
    expect(describePart('prefix', cand(1, 'Conv_3'))).toBe("through 1 strided conv (int8 from Conv_3's output on)");
    expect(describePart('prefix', cand(2, 'Conv_7'))).toBe("through 2 strided convs (int8 from Conv_7's output on)");
    expect(describePart('suffix', cand(1, 'Conv_40'))).toBe("after the last strided conv (float from Conv_40's output on)");
    expect(describePart('suffix', cand(2, 'Conv_30'))).toBe("after strided conv 2 from the end (float from Conv_30's output on)");
    expect(partConfig(undefined, cand(3, 'Conv_14'), 'through')).toBe('auto: 3 (through Conv_14)');
    expect(partConfig(2, cand(2, 'Conv_9'), 'after')).toBe('2 (after Conv_9)');
    expect(partConfig(0, cand(0, null), 'after')).toBe('0');
  });

  it('floatPart: a given N past the candidates takes the last; one candidate is taken untimed', async () => {
    const cands = [cand(0, null), cand(1, 'c1', ['c1'])];
    const lines: string[] = [];
    const o = { floatPrefix: 5 } as Int8Options;
    const given = await floatPart('prefix', cands, relu(), {}, {}, [1, 4], o, (l) => lines.push(l));
    expect(given).toMatchObject({ strided: 1, border: 'c1', why: "float prefix through 1 strided conv (int8 from c1's output on), as given (--float-prefix 5)" });
    const one = await floatPart('prefix', [cand(0, null)], relu(), {}, {}, [1, 4], {} as Int8Options, (l) => lines.push(l));
    expect(one).toEqual({ ...cand(0, null), why: '' });
    expect(lines).toEqual(["float prefix: through 1 strided conv (int8 from c1's output on), as given"]);
  });

  it('partLayers lists the weighted layers of the part that stay float, not the other ops', () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 2, 4, 4] }, outputs: ['y'],
      nodes: [makeNode('Conv', ['x', 'w'], ['a'], 'c1', { kernel_shape: [1, 1] }), makeNode('Relu', ['a'], ['r'], 'r1'), makeNode('Conv', ['r', 'w'], ['y'], 'c2', { kernel_shape: [1, 1] })],
      initializers: [{ name: 'w', dims: [2, 2, 1, 1], data: seededFloats(4, 1) }],
    });
    const q = quantizeModel(m, { x: [-1, 1], a: [-2, 2], r: [0, 2], y: [-2, 2] }, { exclude: ['c1', 'r1'] });
    expect(q.result.floatNodes.map((f) => f.name)).toEqual(expect.arrayContaining(['c1', 'r1']));
    const rows = partLayers(q.result, { ...cand(1, 'c1', ['c1', 'r1']), why: 'the prefix' });
    expect(rows).toEqual([{ layer: 'c1', op: 'Conv', reason: 'the prefix' }]);
  });
});

describeShared('findDetectorFor', () => {
  const scrfd = shared('models', 'scrfd_500m_bnkps.onnx');
  /** A folder holding a recognizer file and the given names (links to scrfd_500m, or text). */
  function pack(name: string, files: Record<string, 'scrfd' | 'text'>): string {
    const p = path.join(dir, name);
    mkdirSync(p);
    writeFileSync(path.join(p, 'w600k.onnx'), relu().toBytes());
    for (const [f, what] of Object.entries(files)) {
      if (what === 'scrfd') symlinkSync(scrfd, path.join(p, f));
      else writeFileSync(path.join(p, f), 'not a model');
    }
    return path.join(p, 'w600k.onnx');
  }

  it('prefers the larger detector by name over the alphabetical order, skips quantized copies and unreadable files', () => {
    expect(findDetectorFor(pack('pref', { 'det_500m.onnx': 'scrfd', 'scrfd_10g_bnkps.onnx': 'scrfd' }))).toBe(path.join(dir, 'pref', 'scrfd_10g_bnkps.onnx'));
    expect(findDetectorFor(pack('quantized', { 'det_10g.int8.onnx': 'scrfd', 'scrfd_500m_bnkps.onnx': 'scrfd' }))).toBe(path.join(dir, 'quantized', 'scrfd_500m_bnkps.onnx'));
    expect(findDetectorFor(pack('broken', { 'det_10g.onnx': 'text', 'scrfd_500m_bnkps.onnx': 'scrfd' }))).toBe(path.join(dir, 'broken', 'scrfd_500m_bnkps.onnx'));
    expect(findDetectorFor(pack('none', { 'det_10g.onnx': 'text' }))).toBeUndefined();
  });

  it('passes over a detector without keypoints (it cannot align faces)', () => {
    const rec = pack('no-kps', { 'scrfd_500m_bnkps.onnx': 'scrfd' });
    const m = loadModel(scrfd);
    m.graph.proto.output = m.graph.proto.output!.filter((o) => o.type?.tensorType?.shape?.dim?.at(-1)?.dimValue?.toString() !== '10');
    expect(m.graph.proto.output).toHaveLength(6);
    writeFileSync(path.join(dir, 'no-kps', 'det_10g.onnx'), m.toBytes());
    expect(findDetectorFor(rec)).toBe(path.join(dir, 'no-kps', 'scrfd_500m_bnkps.onnx'));
  });
});
