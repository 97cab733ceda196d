/**
 * Mutation-audit tests of resolveModelArg / resolveModelRef (pipeline/zoo/resolve.ts): argument trimming,
 * what counts as a file, PACK/FILE with exactly two parts, bundle folders, pipes, and the message for a
 * path that came from an environment variable.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ErrorCode, isFaceoptError } from '../../pipeline/errors.js';
import { resolveModelArg, type ResolveOptions } from '../../pipeline/zoo/resolve.js';
import { loadZoo } from '../../pipeline/zoo/zoo.js';
import { tempDir } from './helpers.js';

const zoo = loadZoo(path.resolve('models/zoo.json'));

function failure(arg: string, opts: ResolveOptions): { code: ErrorCode; message: string } {
  try {
    resolveModelArg(arg, opts);
  } catch (e) {
    if (isFaceoptError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error(`"${arg}" resolved without error`);
}

describe('resolveModelArg (audit)', () => {
  let cwd: string;
  let modelsDir: string;
  const opts = (extra: Partial<ResolveOptions> = {}): ResolveOptions => ({ cwd, modelsDir, zoo, ...extra });

  beforeAll(() => {
    cwd = tempDir('faceopt-resolve-audit-');
    modelsDir = path.join(cwd, 'models');
    mkdirSync(path.join(modelsDir, 'buffalo_sc', 'det_500m.onnx'), { recursive: true }); // a folder where the file should be
    writeFileSync(path.join(cwd, 'm.onnx'), 'x');
    mkdirSync(path.join(cwd, 'graphs'));
    writeFileSync(path.join(cwd, 'graphs', 'model.onnx'), 'x'); // a bundle's graph, but no plan.json: a plain folder
    execFileSync('mkfifo', [path.join(cwd, 'pipe.onnx')]);
  });

  it('surrounding spaces are trimmed', () => {
    expect(resolveModelArg('  m.onnx\t', opts())).toBe(path.join(cwd, 'm.onnx'));
  });

  it('a folder where a pack file should be is not the model: it is missing', () => {
    const got = failure('buffalo_sc/det_500m', opts());
    expect(got.code).toBe('FACEOPT_ERR_MODEL_MISSING');
  });

  it('PACK/FILE has exactly two parts: a deeper path under a pack name is a path', () => {
    const got = failure('buffalo_sc/sub/det_500m.onnx', opts());
    expect(got.code).toBe('FACEOPT_ERR_FILE_NOT_FOUND');
    expect(got.message).toContain(path.join(cwd, 'buffalo_sc', 'sub', 'det_500m.onnx'));
  });

  it('a folder with graphs but no plan.json is just a folder', () => {
    const got = failure('graphs', opts());
    expect(got.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(got.message).toContain('graphs (a folder)');
  });

  it('a named pipe is refused as not a regular file', () => {
    const got = failure('pipe.onnx', opts());
    expect(got.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(got.message).toContain('not a regular file: a device, pipe or socket');
  });

  it('a missing path from an environment variable says so; one from a flag does not', () => {
    expect(failure('nope.onnx', opts({ flag: 'FACEOPT_DETECTOR' })).message).toContain("the FACEOPT_DETECTOR environment variable's");
    expect(failure('nope.onnx', opts({ flag: '--model' })).message).not.toContain('environment variable');
  });
});
