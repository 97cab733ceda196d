/**
 * Two runs writing the same output: the second is refused while the first runs (they used to race, each
 * replacing the other's model during its evaluation, and the report left could describe one run's file
 * with the other's numbers); a lock left by a run that died does not block the next one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import { outputLockPath } from '../../pipeline/output-lock.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { faceopt } from '../helpers/cli.js';

const work = mkdtempSync(path.join(tmpdir(), 'faceopt-concurrent-'));
const env = { FACEOPT_MODELS: path.join(work, 'models'), FACEOPT_REPORTS: path.join(work, 'reports') };
let holder: ChildProcess | null = null;
afterAll(() => { holder?.kill('SIGKILL'); });

describe('optimize --int8 into an output another run is writing', () => {
  it('is refused with a coded error naming that run, and goes ahead once the lock is stale', async () => {
    const file = path.join(work, 'mlp.onnx');
    await saveModel(tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 16] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'w', 'b'], ['h'], 'fc1', { transB: 1 }), makeNode('Relu', ['h'], ['y'], 'relu')],
      initializers: [{ name: 'w', dims: [8, 16], data: seededFloats(128, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) }],
    }), file);
    const out = path.join(work, 'out', 'mlp.int8.onnx');
    // another faceopt run (a process that stays up, with faceopt on its command line) holds the output
    holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'faceopt-holder'], { stdio: 'ignore' });
    const lock = outputLockPath(out);
    mkdirSync(path.dirname(lock), { recursive: true });
    writeFileSync(lock, `${holder.pid}\n${out}\n`);
    const busy = faceopt(['optimize', '--int8', '--model', file, '--out', out, '--quiet'], { env });
    expect(busy.code, busy.stderr).toBe(64);
    expect(busy.stderr).toContain(`FACEOPT_ERR_BAD_ARGUMENT: Expected an output no other faceopt run is writing`);
    expect(busy.stderr).toContain(`faceopt run pid ${holder.pid} is writing now`);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(lock)).toBe(true); // not the refused run's to remove
    // that run died without removing its lock: the next run takes it over, and removes it when done
    holder.kill('SIGKILL');
    await new Promise((r) => holder!.once('exit', r));
    const next = faceopt(['optimize', '--int8', '--model', file, '--out', out, '--quiet'], { env });
    expect(next.code, next.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });

  it('--fp32 takes the same lock: refused while another run writes its --out (it took none)', async () => {
    const file = path.join(work, 'mlp.onnx'); // written by the test above
    const out = path.join(work, 'out', 'mlp.fp32.onnx');
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'faceopt-holder'], { stdio: 'ignore' });
    try {
      const lock = outputLockPath(out);
      mkdirSync(path.dirname(lock), { recursive: true });
      writeFileSync(lock, `${other.pid}\n${out}\n`);
      const busy = faceopt(['optimize', '--fp32', '--model', file, '--out', out], { env });
      expect(busy.code, busy.stderr).toBe(64);
      expect(busy.stderr).toContain(`faceopt run pid ${other.pid} is writing now`);
      expect(existsSync(out)).toBe(false);
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
      const next = faceopt(['optimize', '--fp32', '--model', file, '--out', out], { env });
      expect(next.code, next.stderr).toBe(0);
      expect(existsSync(lock)).toBe(false);
    } finally {
      other.kill('SIGKILL');
    }
  });
});
