/**
 * Mutation audit of the command-line layer, part 2: commands run in this process (register + runCli, as
 * main.ts wires them) on tiny graphs built here, for what each checks before any real work starts, and
 * what it prints.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as compare from '../../pipeline/cli/compare.js';
import * as embed from '../../pipeline/cli/embed.js';
import * as evaluate from '../../pipeline/cli/evaluate.js';
import * as inspect from '../../pipeline/cli/inspect.js';
import * as optimize from '../../pipeline/cli/optimize.js';
import { reportCommand, statsNote } from '../../pipeline/cli/report.js';
import * as serve from '../../pipeline/cli/serve.js';
import type { ModelProfile } from '../../pipeline/faces/profile.js';
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import { runInProcess } from '../helpers/cli-inproc.js';
import { tinyModel } from '../onnx/tiny.js';
import { exampleRecognizerReport } from '../report/example.js';

let work: string;
let model: string; // one Conv on a 1-channel input with dynamic N, H and W: not a face model
beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'faceopt-cli-audit-'));
  model = path.join(work, 'conv.onnx');
  await saveModel(tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 1, 'H', 'W'] }, outputs: ['y'],
    nodes: [makeNode('Conv', ['x', 'w'], ['y'], 'conv')],
    initializers: [{ name: 'w', dims: [2, 1, 1, 1], data: [0.5, -0.5] }],
  }), model);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The one stderr line of a coded error, split into code and message. */
function coded(err: string): { code: string; message: string } {
  const m = /^faceopt: (FACEOPT_ERR_\w+): (.*)$/m.exec(err);
  return m ? { code: m[1]!, message: m[2]! } : { code: '(none)', message: err };
}

describe('runCli', () => {
  it('returns the exit code a command set without throwing (detect/embed past an unreadable photo)', async () => {
    const r = await runInProcess((p: Command) => { p.command('partial').action(() => { process.exitCode = 65; }); }, ['partial']);
    expect(r.code).toBe(65);
  });
});

describe('faceopt inspect', () => {
  it('MACs at 640x640 for dynamic H/W unless told otherwise; --batch must be at least 1', async () => {
    expect((await inspect.inspectModel(model)).macs).toMatchObject({ inputShapes: { x: [1, 1, 640, 640] } });
    const json = await runInProcess(inspect.register, ['inspect', model, '--json']);
    expect(JSON.parse(json.out).macs.inputShapes.x).toEqual([1, 1, 640, 640]);
    const r = await runInProcess(inspect.register, ['inspect', model, '--batch', '0']);
    expect(r.code).toBe(64);
    expect(coded(r.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringMatching(/--batch/) });
  });

  it('--json gives the MAC total and the number of layers, not every layer', async () => {
    const r = await runInProcess(inspect.register, ['inspect', model, '--json', '--det-size', '64']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { macs: { total: number; layers: unknown; inputShapes: Record<string, number[]> } };
    expect(j.macs.inputShapes.x).toEqual([1, 1, 64, 64]);
    expect(j.macs.layers).toBe(1);
    expect(j.macs.total).toBe(2 * 64 * 64);
  });

  it('text: per-channel preprocessing numbers, and at most three float layers named', async () => {
    const r = await inspect.inspectModel(model);
    const profile = { channelOrder: 'RGB', layout: 'NCHW', mean: [127.5, 127.5, 127.5], std: [128, 64, 128], inputSize: [112, 112], notes: [] } as unknown as ModelProfile;
    expect(inspect.renderInspect({ ...r, profile })).toContain('preprocessing: RGB NCHW, (x - 127.5) / 128/64/128, input 112x112');
    const layers = (n: number) => Array.from({ length: n }, (_, i) => ({ layer: `c${i}`, op: 'Conv' }));
    expect(inspect.renderInspect({ ...r, floatLayers: layers(3) })).toMatch(/^ {2}float layers: 3 weighted layer\(s\) compute in float \(c0, c1, c2\)$/m);
    expect(inspect.renderInspect({ ...r, floatLayers: layers(4) })).toContain('float layers: 4 weighted layer(s) compute in float (c0, c1, c2, ...)');
  });
});

describe('faceopt evaluate: flags checked before anything is evaluated', () => {
  it.each([
    [['--name', '../elsewhere'], '--name'],
    [['--name', 'a/b'], '--name'],
    [['--role', 'face'], '--role'],
    [['--threads', '0'], '--threads'],
    [['--format', 'pdf'], '--format'],
    [['--calibration-size', '0'], '--calibration-size'],
  ])('%j is refused naming %s', async (args, flag) => {
    const r = await runInProcess(evaluate.register, ['evaluate', '--model', model, '--reference', model, ...args]);
    expect(r.code).toBe(64);
    expect(coded(r.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining(flag) });
  });
});

describe('faceopt evaluate --provider tensorrt', () => {
  it('is refused before the variant is even looked at (onnxruntime-node has no TensorRT provider)', async () => {
    const gone = path.join(work, 'gone.onnx');
    const r = await runInProcess(evaluate.register, ['evaluate', '--provider', 'tensorrt', '--model', gone, '--reference', gone]);
    expect(coded(r.err).code).toBe('FACEOPT_ERR_PROVIDER_UNAVAILABLE');
  });
});

describe('faceopt optimize: flag checks', () => {
  const run = (...args: string[]) => runInProcess(optimize.register, ['optimize', '--model', model, ...args]);

  it('an option of another mode is refused, naming the form given and the modes that read it', async () => {
    const one = await run('--int8', '--precision', 'fp16');
    expect(coded(one.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('--precision, which only --tensorrt reads;') });
    const pair = await run('--tensorrt', '--no-merge-convs');
    expect(coded(pair.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('--no-merge-convs, which only --int8 and --fp32 read;') });
  });

  it('--calibration-list needs --faces; --prelu takes only its forms', async () => {
    const list = await run('--int8', '--calibration-list', path.join(work, 'list.txt'));
    expect(coded(list.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('for --faces') });
    const prelu = await run('--fp32', '--prelu', 'sigmoid');
    expect(coded(prelu.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('for --prelu') });
  });

  it('--tensorrt takes --det-size as WxH (it is not read as one number)', async () => {
    const r = await run('--tensorrt', '--det-size', '640x480', '--no-evaluate', '--out', path.join(work, 'conv.trt'));
    expect(r.code).not.toBe(0);
    // the tiny graph is no face model: that, not the size, is what stops it
    expect(coded(r.err)).toMatchObject({ code: 'FACEOPT_ERR_MODEL_ROLE' });
  });
});

describe('faceopt embed --aligned / compare: flag checks', () => {
  it('embed --aligned refuses every detector setting, naming each', async () => {
    const r = await runInProcess(embed.register, ['embed', '--aligned', path.join(work, 'a.jpg'), '--det-size', '320', '--nms', '0.3', '--max-faces', '2', '--min-face-size', '20']);
    expect(r.code).toBe(64);
    expect(coded(r.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('received --det-size, --nms, --max-faces, --min-face-size.') });
  });

  it('compare --manifest: --det-size is checked (a whole number) before the manifest is read', async () => {
    const r = await runInProcess(compare.register, ['compare', 'a.jpg', 'b.jpg', '--manifest', path.join(work, 'none.json'), '--det-size', '320.5']);
    expect(coded(r.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('--det-size') });
  });

  it('compare --threshold takes any cosine, -1 to 1', async () => {
    const args = (t: string) => ['compare', 'a.jpg', 'b.jpg', `--threshold=${t}`, '--detector', path.join(work, 'no-det.onnx'), '--recognizer', path.join(work, 'no-rec.onnx')];
    for (const t of ['-0.5', '-1', '1']) {
      const r = await runInProcess(compare.register, args(t));
      expect(coded(r.err).code, t).toBe('FACEOPT_ERR_FILE_NOT_FOUND'); // past the threshold: the missing model is what fails
    }
    const over = await runInProcess(compare.register, args('1.5'));
    expect(coded(over.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('--threshold') });
  });
});

describe('faceopt serve: settings refused before anything loads or listens', () => {
  const none = { FACEOPT_API_KEY: undefined, REDIS_URL: undefined };
  const run = (args: string[], env: Record<string, string | undefined> = {}) => runInProcess(serve.register, ['serve', '--manifest', path.join(work, 'none.json'), ...args], { ...none, ...env });

  it('a numeric flag must be decimal text (0x10 was port 16)', async () => {
    const r = await run(['--port', '0x10']);
    expect(coded(r.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: 'Expected a number for --port but received "0x10".' });
  });

  it('an unknown --provider is a usage error naming the providers (not "provider unavailable")', async () => {
    const r = await run(['--provider', 'gpu']);
    expect(r.code).toBe(64);
    expect(coded(r.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: 'Expected one of cpu, cuda, tensorrt for --provider but received gpu.' });
  });

  it('FACEOPT_API_KEY and REDIS_URL from the environment are checked like the flags', async () => {
    const key = await run([], { FACEOPT_API_KEY: 'short' });
    expect(coded(key.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('api key') });
    const redis = await run([], { REDIS_URL: 'http://localhost:6379' });
    expect(coded(redis.err)).toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('Redis URL') });
  });
});

describe('faceopt report', () => {
  it('--compare takes exactly two folders and no DIR', async () => {
    await expect(reportCommand(undefined, { compare: ['a', 'b', 'c'] })).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('exactly two') });
    await expect(reportCommand('x', { compare: ['a', 'b'] })).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT', message: expect.stringContaining('no DIR argument') });
  });

  it('a stats file the report names that cannot be read now is noted', async () => {
    const file = path.join(work, 'broken.stats.json');
    writeFileSync(file, '{ not json');
    const report = exampleRecognizerReport();
    report.provenance.calibration!.statsPath = file;
    expect(await statsNote(report, work)).toMatch(/broken\.stats\.json is not a readable stats file now; this report used calibration stats c{12}$/);
  });
});
