/**
 * Mutation audit of the command-line layer, part 1: the functions pipeline/cli exports, called directly
 * (no process, no model loaded): per-photo error handling, face JSON, TensorRT flag parsing, the error
 * line and exit code of runCli.
 */
import { Command, CommanderError } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { drawTargets, eachPhoto, faceJson } from '../../pipeline/cli/detect.js';
import { addTensorrtOptions, parseBatch, parseDetSize, runTensorrtFromCli } from '../../pipeline/cli/optimize-tensorrt.js';
import { checkError } from '../../pipeline/cli/models.js';
import { reportError } from '../../pipeline/cli/run.js';
import { FaceoptError } from '../../pipeline/errors.js';

/** stderr written while `fn` runs. */
async function stderrOf<T>(fn: () => Promise<T> | T): Promise<{ value: T; err: string }> {
  let err = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  try {
    return { value: await fn(), err };
  } finally {
    spy.mockRestore();
  }
}

const savedExit = process.exitCode;
afterEach(() => { process.exitCode = savedExit; });

describe('eachPhoto', () => {
  it('lists each unreadable photo in place, goes on, and exits with the FIRST such error\'s code', async () => {
    process.exitCode = undefined;
    const errors: Record<string, FaceoptError> = {
      'a.jpg': new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: 'a.jpg' }), // exit 66
      'c.jpg': new FaceoptError('FACEOPT_ERR_BAD_IMAGE', { source: 'c.jpg', reason: 'truncated' }), // exit 65
      'd.jpg': new FaceoptError('FACEOPT_ERR_IMAGE_TOO_LARGE', { source: 'd.jpg', pixels: 9, limit: 4 }),
    };
    const { value, err } = await stderrOf(() => eachPhoto(['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'], async (image, i) => {
      if (errors[image]) throw errors[image];
      return { image, i };
    }));
    expect(value).toEqual([
      { image: 'a.jpg', error: { code: 'FACEOPT_ERR_FILE_NOT_FOUND', message: errors['a.jpg']!.message } },
      { image: 'b.jpg', i: 1 },
      { image: 'c.jpg', error: { code: 'FACEOPT_ERR_BAD_IMAGE', message: errors['c.jpg']!.message } },
      { image: 'd.jpg', error: { code: 'FACEOPT_ERR_IMAGE_TOO_LARGE', message: errors['d.jpg']!.message } },
    ]);
    expect(process.exitCode).toBe(66);
    expect(err.split('\n').filter(Boolean)).toHaveLength(3);
  });

  it('an error that is not about one photo ends the run (a missing model, an internal error)', async () => {
    const missing = new FaceoptError('FACEOPT_ERR_MODEL_MISSING', { path: 'm.onnx', pack: 'buffalo_l' });
    await expect(stderrOf(() => eachPhoto(['a.jpg', 'b.jpg'], async () => { throw missing; }))).rejects.toBe(missing);
    const internal = new Error('boom');
    await expect(stderrOf(() => eachPhoto(['a.jpg'], async () => { throw internal; }))).rejects.toBe(internal);
  });
});

describe('drawTargets', () => {
  it('several photos and a .webp file name is refused like a .jpg one (it was taken as a folder of that name)', () => {
    expect(() => drawTargets('/nonexistent/faceopt-audit/out.webp', ['a.jpg', 'b.jpg'])).toThrow(/a folder with 2 photos/);
  });
});

describe('faceJson', () => {
  it('boxes and keypoints to 2 decimals, the score to 4; no keypoints is null', () => {
    expect(faceJson({ box: [1.23456, 2.5, 3.999, 4], score: 0.987654, kps: [[1.005, 2.3333], [3, 4], [5, 6], [7, 8], [9, 10.126]] }))
      .toEqual({ box: [1.23, 2.5, 4, 4], score: 0.9877, kps: [[1, 2.33], [3, 4], [5, 6], [7, 8], [9, 10.13]] });
    expect(faceJson({ box: [0, 0, 1, 1], score: 0.5, kps: null }).kps).toBeNull();
  });
});

describe('TensorRT flags', () => {
  it('--batch: one number N is 1:N:N; MIN:OPT:MAX as given; two parts are refused', () => {
    expect(parseBatch('16')).toEqual({ min: 1, opt: 16, max: 16 });
    expect(parseBatch('2:8:32')).toEqual({ min: 2, opt: 8, max: 32 });
    expect(() => parseBatch('1:8')).toThrow(/MIN:OPT:MAX/);
  });

  it('--det-size: one number is square, WxH is W then H', () => {
    expect(parseDetSize('320')).toEqual([320, 320]);
    expect(parseDetSize(480)).toEqual([480, 480]);
    expect(parseDetSize('640x480')).toEqual([640, 480]);
    expect(() => parseDetSize('640x')).toThrow(/WxH/);
  });

  it('addTensorrtOptions keeps a flag the command already has and adds the rest with their defaults', () => {
    const cmd = new Command('x').exitOverride().option('--role <role>', 'already here');
    addTensorrtOptions(cmd);
    expect(cmd.options.filter((o) => o.long === '--role')).toHaveLength(1);
    expect(cmd.options.find((o) => o.long === '--role')!.description).toBe('already here');
    cmd.parse([], { from: 'user' });
    expect(cmd.opts()).toMatchObject({ precision: 'int8', workspace: '4096', optLevel: '3', instances: '1', queueDelayUs: '2000' });
  });

  it('runTensorrtFromCli checks --role and the numeric flags before it looks at the model', async () => {
    const missing = '/nonexistent/faceopt-audit/m.onnx';
    await expect(runTensorrtFromCli(missing, { role: 'face' })).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringMatching(/--role/) });
    await expect(runTensorrtFromCli(missing, { workspace: '63' })).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringMatching(/--workspace/) });
    // the lowest accepted values pass the flag checks: the model is what fails
    for (const flags of [{ queueDelayUs: '0' }, { optLevel: '0' }, { workspace: '64' }, { role: 'detector' }, { role: 'recognizer' }]) {
      await expect(runTensorrtFromCli(missing, flags)).rejects.toMatchObject({ code: 'FACEOPT_ERR_FILE_NOT_FOUND' });
    }
  });
});

describe('reportError', () => {
  const saved = process.env.FACEOPT_DEBUG;
  afterEach(() => { if (saved === undefined) delete process.env.FACEOPT_DEBUG; else process.env.FACEOPT_DEBUG = saved; });

  it('a coded error: one line and its exit code; the cause\'s stack only with FACEOPT_DEBUG=1', async () => {
    delete process.env.FACEOPT_DEBUG;
    const e = new FaceoptError('FACEOPT_ERR_BAD_IMAGE', { source: 'x.jpg', reason: 'bad' }, { cause: new Error('inner cause') });
    const quiet = await stderrOf(() => reportError(e));
    expect(quiet.value).toBe(65);
    expect(quiet.err).toBe(`faceopt: FACEOPT_ERR_BAD_IMAGE: ${e.message}\n`);
    process.env.FACEOPT_DEBUG = '1';
    expect((await stderrOf(() => reportError(e))).err).toMatch(/inner cause\n\s+at /);
  });

  it('an internal error: its first line, exit 70, and how to see the stack', async () => {
    delete process.env.FACEOPT_DEBUG;
    const r = await stderrOf(() => reportError(new Error('first line\nsecond line')));
    expect(r.value).toBe(70);
    expect(r.err).toBe('faceopt: FACEOPT_ERR_INTERNAL: first line\n(set FACEOPT_DEBUG=1 for the stack trace)\n');
  });

  it('a commander error: 0 for help/version, 64 otherwise, nothing printed again', async () => {
    const r = await stderrOf(() => [reportError(new CommanderError(1, 'commander.unknownOption', 'x')), reportError(new CommanderError(0, 'commander.helpDisplayed', 'x'))]);
    expect(r.value).toEqual([64, 0]);
    expect(r.err).toBe('');
  });
});

describe('models verify: the error a failed check stops with', () => {
  it('a damaged file: checksum error whose remedy names the --models-dir the user gave', () => {
    const bad = { pack: 'buffalo_l', file: 'det_10g.onnx', path: '/m/buffalo_l/det_10g.onnx', status: 'sha256-mismatch', expectedSize: 10, actualSize: 10, expectedSha256: 'a'.repeat(64), actualSha256: 'b'.repeat(64) } as const;
    const e = checkError(bad, '/m');
    expect(e.code).toBe('FACEOPT_ERR_CHECKSUM');
    expect(e.message).toContain('Fetch it again: `faceopt models fetch buffalo_l --force --models-dir /m`.');
    expect(checkError(bad).message).toContain('Fetch it again: `faceopt models fetch buffalo_l --force`.');
    expect(checkError({ ...bad, status: 'missing' }).code).toBe('FACEOPT_ERR_MODEL_MISSING');
  });
});
