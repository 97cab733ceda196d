/**
 * Output paths that must be refused before any work, so nothing is made or lost: `--out` naming the
 * source model (or a link to it), for --int8 and --tensorrt, and a bundle `--out` that is a file.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import { sha256File, writeFileAtomic, writeFilesAtomic } from '../../pipeline/fsutil.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';

const work = mkdtempSync(path.join(tmpdir(), 'faceopt-outputs-'));
const env = { FACEOPT_MODELS: path.join(work, 'models'), FACEOPT_REPORTS: path.join(work, 'reports') };

async function mlp(file: string): Promise<void> {
  await saveModel(tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 16] }, outputs: ['y'],
    nodes: [makeNode('Gemm', ['x', 'w', 'b'], ['h'], 'fc1', { transB: 1 }), makeNode('Relu', ['h'], ['y'], 'relu')],
    initializers: [{ name: 'w', dims: [8, 16], data: seededFloats(128, 1) }, { name: 'b', dims: [8], data: seededFloats(8, 2) }],
  }), file);
}

describe('a write that fails', () => {
  it('leaves no empty folder it made for the file (a full disk left the report and --draw folders behind)', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'faceopt-made-dirs-'));
    // data writeFile refuses stands in for a failing disk: the write fails after its folders were made
    const bad = 42 as unknown as Uint8Array;
    await expect(writeFileAtomic(path.join(root, 'new', 'sub', 'x.bin'), bad)).rejects.toMatchObject({ code: 'FACEOPT_ERR_WRITE_FAILED' });
    expect(readdirSync(root)).toEqual([]);
    await expect(writeFilesAtomic([[path.join(root, 'rep', 'a.md'), 'a'], [path.join(root, 'rep', 'b.json'), bad]])).rejects.toMatchObject({ code: 'FACEOPT_ERR_WRITE_FAILED' });
    expect(readdirSync(root)).toEqual([]);
    // a folder that was there stays, and a write that succeeds keeps the folders it made
    mkdirSync(path.join(root, 'kept'));
    await expect(writeFileAtomic(path.join(root, 'kept', 'x.bin'), bad)).rejects.toMatchObject({ code: 'FACEOPT_ERR_WRITE_FAILED' });
    await writeFileAtomic(path.join(root, 'made', 'x.bin'), 'ok');
    expect(readdirSync(root).sort()).toEqual(['kept', 'made']);
  });
});

describe('optimize --int8 --out naming the source model', () => {
  it('is refused before calibration, and makes no report folder', async () => {
    const dir = path.join(work, 'int8');
    mkdirSync(dir);
    const file = path.join(dir, 'mlp.onnx');
    await mlp(file);
    symlinkSync(file, path.join(dir, 'link.onnx'));
    const before = await sha256File(file);
    for (const out of [file, path.join(dir, 'link.onnx')]) {
      const reportDir = path.join(dir, 'report');
      const r = faceopt(['optimize', '--int8', '--model', file, '--out', out, '--report-dir', reportDir, '--quiet'], { env });
      expect(r.code, r.stderr).toBe(73);
      expect(r.stderr).toContain('FACEOPT_ERR_OVERWRITE_SOURCE');
      // it used to calibrate and search first, then refuse, leaving the report folder with stats.json
      expect(r.stderr).not.toMatch(/calibration:/);
      expect(existsSync(reportDir)).toBe(false);
    }
    expect(await sha256File(file)).toBe(before);
    expect(readdirSync(dir).sort()).toEqual(['link.onnx', 'mlp.onnx']);
  });
});

describe('optimize --int8 outputs that cannot hold a model', () => {
  it('refuses before calibration a device or pipe as --out (it was replaced by the model: --out /dev/null as root) and --report-dir at the model\'s path', async () => {
    const dir = path.join(work, 'special');
    mkdirSync(dir);
    const file = path.join(dir, 'mlp.onnx');
    await mlp(file);
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const r = faceopt(['optimize', '--int8', '--model', file, '--out', fifo, '--quiet'], { env });
    expect(r.code, r.stderr).toBe(64);
    expect(r.stderr).toContain(`received ${fifo}, a named pipe`);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    // the same through the atomic write every command uses (stats, reports, manifests, drawings)
    await expect(writeFileAtomic(fifo, 'x')).rejects.toMatchObject({ code: 'FACEOPT_ERR_WRITE_FAILED' });
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    // and as --model it is not called a folder
    const asModel = faceopt(['optimize', '--int8', '--model', fifo, '--quiet'], { env });
    expect(asModel.code, asModel.stderr).toBe(64);
    expect(asModel.stderr).toContain(`received ${fifo} (not a regular file`);
    const out = path.join(dir, 'm.int8.onnx');
    const same = faceopt(['optimize', '--int8', '--model', file, '--out', out, '--report-dir', out, '--quiet'], { env });
    expect(same.code, same.stderr).toBe(64);
    expect(same.stderr).toContain('FACEOPT_ERR_BAD_ARGUMENT');
    expect(same.stderr).not.toMatch(/calibration:/);
    expect(readdirSync(dir).sort()).toEqual(['mlp.onnx', 'pipe']);
  });
});

describeShared('optimize --tensorrt --out that is not a folder the bundle may replace', () => {
  it('keeps the source model when --out names it (the bundle replaced it, exit 0), and refuses a file or the source\'s folder', async () => {
    const dir = path.join(work, 'trt');
    mkdirSync(dir);
    const file = path.join(dir, 'scrfd.onnx');
    copyFileSync(shared('models', 'scrfd_500m_bnkps.onnx'), file);
    const before = await sha256File(file);
    const run = (out: string) => faceopt(['optimize', '--tensorrt', '--precision', 'fp32', '--model', file, '--out', out, '--no-evaluate', '--quiet'], { env });
    const same = run(file);
    expect(same.code, same.stderr).toBe(73);
    expect(same.stderr).toContain('FACEOPT_ERR_OVERWRITE_SOURCE');
    expect(statSync(file).isFile()).toBe(true);
    expect(await sha256File(file)).toBe(before);
    // an unrelated file is not replaced by a bundle folder either
    const other = path.join(dir, 'notes.txt');
    writeFileSync(other, 'keep me');
    const onFile = run(other);
    expect(onFile.code, onFile.stderr).toBe(64);
    expect(onFile.stderr).toContain('FACEOPT_ERR_BAD_ARGUMENT');
    expect(statSync(other).isFile()).toBe(true);
    // nor the folder the source model is in
    const inFolder = run(dir);
    expect(inFolder.code, inFolder.stderr).toBe(73);
    expect(readdirSync(dir).sort()).toEqual(['notes.txt', 'scrfd.onnx']);
    expect(await sha256File(file)).toBe(before);
  });
});

describeShared('optimize --tensorrt that does not evaluate', () => {
  it('removes the report an earlier run left for another bundle (it stayed, and `faceopt report` showed its verdict)', async () => {
    const dir = path.join(work, 'trt-stale');
    const reportDir = path.join(dir, 'report');
    mkdirSync(reportDir, { recursive: true });
    // an earlier run's report: the same folder, a bundle with other bytes
    writeFileSync(path.join(reportDir, 'report.json'), `${JSON.stringify({ variant: { path: path.join(dir, 'b.trt', 'model.onnx'), sha256: '0'.repeat(64) } })}\n`);
    writeFileSync(path.join(reportDir, 'report.md'), '# PASS\n');
    const r = faceopt(['optimize', '--tensorrt', '--precision', 'fp32', '--model', shared('models', 'scrfd_500m_bnkps.onnx'), '--out', path.join(dir, 'b.trt'), '--report-dir', reportDir, '--no-evaluate', '--quiet'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('report: removed the report of an earlier run');
    expect(readdirSync(reportDir)).toEqual([]);
  });
});
