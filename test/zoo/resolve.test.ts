import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ErrorCode, isFaceoptError } from '../../pipeline/errors.js';
import { resolveModelArg, resolveModelRef } from '../../pipeline/zoo/resolve.js';
import { loadZoo } from '../../pipeline/zoo/zoo.js';
import { tempDir } from './helpers.js';

const zoo = loadZoo(path.resolve('models/zoo.json'));

describe('resolveModelArg', () => {
  let cwd: string;
  let modelsDir: string;

  beforeAll(() => {
    cwd = tempDir('faceopt-resolve-cwd-');
    modelsDir = path.join(cwd, 'some-models');
    mkdirSync(path.join(modelsDir, 'buffalo_sc'), { recursive: true });
    writeFileSync(path.join(modelsDir, 'buffalo_sc', 'w600k_mbf.onnx'), 'not really a model');
    writeFileSync(path.join(cwd, 'local.onnx'), 'x');
    mkdirSync(path.join(cwd, 'mine'));
    mkdirSync(path.join(cwd, 'mbf.trt'));
    for (const f of ['plan.json', 'model.onnx', 'model.qdq.onnx']) writeFileSync(path.join(cwd, 'mbf.trt', f), 'x');
    mkdirSync(path.join(cwd, 'buffalo_l'));
    writeFileSync(path.join(cwd, 'buffalo_l', 'w600k_r50.onnx'), 'a local file that shadows the zoo');
  });

  const opts = () => ({ cwd, modelsDir, zoo });

  function codeOf(arg: string): { code: ErrorCode; message: string } {
    try {
      resolveModelArg(arg, opts());
    } catch (e) {
      if (isFaceoptError(e)) return { code: e.code, message: e.message };
      throw e;
    }
    throw new Error(`"${arg}" resolved without error`);
  }

  // Table-driven: argument -> expected absolute path (relative to the temp cwd) or error code.
  const ok: [string, string][] = [
    ['local.onnx', 'local.onnx'],
    ['./local.onnx', 'local.onnx'],
    ['buffalo_sc/w600k_mbf.onnx', 'some-models/buffalo_sc/w600k_mbf.onnx'],
    ['buffalo_sc/w600k_mbf', 'some-models/buffalo_sc/w600k_mbf.onnx'],
    ['buffalo_l/w600k_r50.onnx', 'buffalo_l/w600k_r50.onnx'], // an existing path wins over the zoo
  ];
  for (const [arg, rel] of ok) {
    it(`resolves ${arg}`, () => expect(resolveModelArg(arg, opts())).toBe(path.join(cwd, rel)));
  }

  it('accepts an absolute path', () => {
    const abs = path.join(cwd, 'local.onnx');
    expect(resolveModelArg(abs, opts())).toBe(abs);
  });

  it('returns the manifest entry for zoo references', () => {
    const r = resolveModelRef('buffalo_sc/w600k_mbf', opts());
    expect([r.pack?.name, r.file?.role, r.file?.embeddingSize]).toEqual(['buffalo_sc', 'recognizer', 512]);
    expect(resolveModelRef('local.onnx', opts()).pack).toBeNull();
  });

  const errors: [string, ErrorCode, string][] = [
    ['buffalo_sc/det_500m.onnx', 'FACEOPT_ERR_MODEL_MISSING', 'faceopt models fetch buffalo_sc'],
    ['antelopev2/glintr100', 'FACEOPT_ERR_MODEL_MISSING', path.join('some-models', 'antelopev2', 'glintr100.onnx')],
    ['bufalo_l/w600k_r50.onnx', 'FACEOPT_ERR_UNKNOWN_PACK', 'buffalo_l, buffalo_m, buffalo_s, buffalo_sc, antelopev2'],
    ['buffalo_sc/w600k_r50.onnx', 'FACEOPT_ERR_UNKNOWN_MODEL_FILE', 'det_500m.onnx, w600k_mbf.onnx'],
    ['mine/model.onnx', 'FACEOPT_ERR_FILE_NOT_FOUND', path.join('mine', 'model.onnx')],
    ['missing.onnx', 'FACEOPT_ERR_FILE_NOT_FOUND', 'missing.onnx'],
    ['a/b/c.onnx', 'FACEOPT_ERR_FILE_NOT_FOUND', path.join('a', 'b', 'c.onnx')],
    ['mine', 'FACEOPT_ERR_BAD_ARGUMENT', 'a folder'],
    ['mbf.trt', 'FACEOPT_ERR_BAD_ARGUMENT', `received mbf.trt (a TensorRT bundle folder; pass one of its graphs: ${path.join('mbf.trt', 'model.qdq.onnx')}, ${path.join('mbf.trt', 'model.onnx')}).`],
    ['  ', 'FACEOPT_ERR_BAD_ARGUMENT', 'for the model argument'],
  ];
  for (const [arg, code, fragment] of errors) {
    it(`"${arg}" -> ${code}`, () => {
      const got = codeOf(arg);
      expect(got.code).toBe(code);
      expect(got.message).toContain(fragment);
    });
  }

  it('uses FACEOPT_MODELS when no models folder is given', () => {
    const before = process.env.FACEOPT_MODELS;
    process.env.FACEOPT_MODELS = modelsDir;
    try {
      expect(resolveModelArg('buffalo_sc/w600k_mbf', { cwd, zoo })).toBe(path.join(modelsDir, 'buffalo_sc', 'w600k_mbf.onnx'));
    } finally {
      if (before === undefined) delete process.env.FACEOPT_MODELS;
      else process.env.FACEOPT_MODELS = before;
    }
  });
});
