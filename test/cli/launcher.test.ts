/**
 * bin/faceopt.js runs `optimize` again with glibc's allocator tuned (see the launcher): exit codes and
 * signals must pass through that extra process unchanged, and no child may outlive it (one whose launcher
 * was killed with SIGKILL stops by itself).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';
import { pidsWithCommandLine } from '../helpers/procs.js';

const BIN = path.resolve('bin/faceopt.js');

it('optimize: a coded error keeps its exit code and message through the launcher', () => {
  const r = faceopt(['optimize', '--int8', '--model', '/nonexistent/model.onnx']);
  expect(r.code).toBe(66);
  expect(r.stderr.match(/FACEOPT_ERR_FILE_NOT_FOUND/g)).toHaveLength(1);
  const plain = faceopt(['optimize', '--int8', '--model', '/nonexistent/model.onnx'], { env: { FACEOPT_MALLOC: 'default' } });
  expect(plain.code).toBe(66);
});

describeShared('launcher signals', () => {
  it('SIGTERM to the launcher stops the optimize run it started', async () => {
    const tag = `faceopt-launcher-test-${process.pid}`;
    const p = spawn(process.execPath, [BIN, 'optimize', '--int8', '--quiet', '--no-evaluate', '--model', shared('models', 'mobileface_paddle_128d.onnx'),
      '--faces', shared('faces', 'lfw'), '--calibration-list', shared('faces', 'lfw', 'calibration.txt'), '--out', path.join('/tmp', `${tag}.onnx`)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1500));
    p.kill('SIGTERM');
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => p.on('exit', (c, s) => r([c, s])));
    expect(signal ?? code).toBe(signal ? 'SIGTERM' : 143);
    const t0 = Date.now();
    while (pidsWithCommandLine(tag).length && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
    expect(pidsWithCommandLine(tag)).toEqual([]);
  });

  it('SIGKILL to the launcher (nothing to forward) stops the run it started within seconds, writing no --out', async () => {
    const tag = `faceopt-launcher-kill-${process.pid}`;
    const out = path.join('/tmp', `${tag}.onnx`);
    const p = spawn(process.execPath, [BIN, 'optimize', '--int8', '--quiet', '--no-evaluate', '--model', shared('models', 'mobileface_paddle_128d.onnx'),
      '--faces', shared('faces', 'lfw'), '--calibration-list', shared('faces', 'lfw', 'calibration.txt'), '--out', out], { stdio: 'ignore' });
    const pgrep = () => pidsWithCommandLine(tag);
    const started = Date.now();
    while (pgrep().length < 2 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000)); // the run is under way
    expect(pgrep().length).toBe(2); // the launcher and the run
    p.kill('SIGKILL');
    const t0 = Date.now();
    while (pgrep().length && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 200));
    expect(pgrep()).toEqual([]); // it ran on, orphaned, and wrote --out
    expect(existsSync(out)).toBe(false);
  });
});
