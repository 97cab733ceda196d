import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalibrationCollector } from '../../pipeline/calibrate/collectors.js';
import { createStats, saveStats, statsHash } from '../../pipeline/calibrate/stats.js';
import { register, reportCommand } from '../../pipeline/cli/report.js';
import { writeReport } from '../../pipeline/report/io.js';
import { runInProcess } from '../helpers/cli-inproc.js';
import { exampleDetectorReport, exampleRecognizerReport } from './example.js';

let root: string;
let pass: string;
let fail: string;
let det: string;
const savedEnv = process.env.FACEOPT_REPORTS;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'faceopt-cli-report-'));
  pass = path.join(root, 'mobileface_paddle_128d.int8');
  fail = path.join(root, 'mobileface_paddle_128d.int8-damaged');
  det = path.join(root, 'scrfd_500m_bnkps.int8');
  await writeReport(pass, exampleRecognizerReport());
  await writeReport(fail, exampleRecognizerReport({ damage: 0.02 }));
  await writeReport(det, exampleDetectorReport());
  await utimes(path.join(pass, 'report.json'), new Date(), new Date(Date.now() + 60_000)); // newest
  process.env.FACEOPT_REPORTS = root;
});
afterAll(async () => {
  if (savedEnv === undefined) delete process.env.FACEOPT_REPORTS; else process.env.FACEOPT_REPORTS = savedEnv;
  await rm(root, { recursive: true, force: true });
});

/** Run `faceopt report ...args` in-process; returns exit code, stdout and stderr. */
const cli = (...args: string[]) => runInProcess(register, ['report', ...args]);

describe('faceopt report', () => {
  it('without DIR shows the newest report: verdict, gate sentences, key numbers', async () => {
    const r = exampleRecognizerReport();
    const { code, out } = await cli();
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toBe('faceopt report: mobileface_paddle_128d · int8 (recognizer)');
    expect(lines[1]).toBe(`  ${pass}`);
    expect(lines[3]).toBe('PASS: all 3 accuracy gates met');
    expect(lines[4]).toBe(`  [pass] ${r.gates.checks[0]!.sentence}`);
    expect(out).toMatch(new RegExp(`speed-up, batch 1 +${r.speed!.speedup.batch1.toFixed(2)}x`));
    expect(out).toMatch(new RegExp(`mean cosine +${r.recognizer!.cosine.mean.toFixed(5)} over 600 faces`));
  });

  it('a failing report lists its reasons', async () => {
    const { code, out } = await cli(fail);
    expect(code).toBe(0); // showing a failed report is not an error; `optimize` is what exits non-zero
    expect(out).toContain('FAIL: ');
    for (const reason of exampleRecognizerReport({ damage: 0.02 }).gates.reasons) expect(out).toContain(`  [FAIL] ${reason}`);
  });

  it('--format json|md print the renderings of report.json', async () => {
    expect((await cli(pass, '--format', 'json')).out).toBe(await readFile(path.join(pass, 'report.json'), 'utf8'));
    expect((await cli(pass, '--format', 'md')).out).toBe(await readFile(path.join(pass, 'report.md'), 'utf8'));
    expect((await cli(pass, '--format', 'html')).out).toBe(await readFile(path.join(pass, 'report.html'), 'utf8'));
  });

  it('--compare A B puts two reports side by side', async () => {
    const { code, out } = await cli('--compare', pass, det);
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[1]).toMatch(new RegExp(`^report +${pass} +${det}$`));
    expect(lines[3]).toMatch(/^variant file +\S+ \([0-9a-f]{12}\) +\S+ \([0-9a-f]{12}\)$/);
    expect(lines[4]).toMatch(/^verdict +PASS: all 3 accuracy gates met +FAIL: 1 of 2 accuracy gates failed$/);
    expect(out).toMatch(/recall vs reference +- +99\.17% at IoU 0\.5, input 640x640 \(119 of 120 faces; missed faces scored 0\.833 by the reference\)/);
  });

  it('notes when the stats file beside a report is not the calibration it records (a later run stopped before its report)', async () => {
    const stats = (scale: number) => {
      const c = new CalibrationCollector('minmax');
      c.update('x', Float32Array.from([-scale, 0.5, scale]));
      return createStats({ modelSha256: 'a'.repeat(64), method: 'minmax', settings: c.settings, source: { description: 'test', images: 1, listSha256: 'b'.repeat(64) }, tensors: c.results() });
    };
    const own = stats(1);
    const dir = path.join(root, 'stats-check.int8');
    const report = exampleRecognizerReport();
    report.provenance.calibration = { ...report.provenance.calibration!, statsPath: null, statsSha256: statsHash(own) };
    await writeReport(dir, report);
    await saveStats(path.join(dir, 'stats.json'), own);
    expect(await reportCommand(dir, {})).not.toContain('note:');
    await saveStats(path.join(dir, 'stats.json'), stats(2));
    const out = await reportCommand(dir, {});
    expect(out).toContain(`note: ${path.join(dir, 'stats.json')} holds other calibration stats`);
    expect(out).toContain(`than this report used (${statsHash(own).slice(0, 12)})`);
  });

  it('bad input: one line on stderr, a coded error and its exit code', async () => {
    const one = await cli('--compare', pass);
    expect([one.code, one.out]).toEqual([64, '']);
    expect(one.err).toBe(`faceopt: FACEOPT_ERR_BAD_ARGUMENT: Expected exactly two report folders for --compare but received 1 (${pass}).\n`);
    const both = await cli(det, '--compare', pass, fail);
    expect(both.err).toMatch(/Expected no DIR argument together with --compare A B for DIR/);
    const missing = await cli(path.join(root, 'nothing'));
    expect(missing.code).toBe(65);
    expect(missing.err).toMatch(/^faceopt: FACEOPT_ERR_REPORT: Report .*nothing\/report\.json cannot be read: the file does not exist/);
    expect(missing.err.trim().split('\n')).toHaveLength(1);
    const format = await cli(pass, '--format', 'pdf');
    expect(format.code).toBe(64);
    expect(format.err).toMatch(/Allowed choices are md, html, json/);
  });
});

const BIN = path.resolve('bin/faceopt.js');
const BUILT = existsSync(path.resolve('dist/pipeline/cli/report.js'));
if (!BUILT) console.warn('[faceopt tests] skipping the spawned `faceopt report` check: dist/ is not built (the global setup builds it)');

describe.skipIf(!BUILT)('faceopt report as a process', () => {
  it('prints the verdict and exits 0 (nothing keeps the process alive)', () => {
    const r = spawnSync(process.execPath, [BIN, 'report', pass], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('PASS: all 3 accuracy gates met');
    const html = spawnSync(process.execPath, [BIN, 'report', pass, '--format', 'html'], { encoding: 'utf8', timeout: 60_000 });
    expect(html.status).toBe(0);
    expect(html.stdout).toContain('<figure class="chart" data-chart="roc">');
  });
});
