import { mkdtemp, readdir, readFile, rm, utimes, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNewestReport, loadReport, stringifyReport, writeReport } from '../../pipeline/report/io.js';
import { isFaceoptError, writeFailed } from '../../pipeline/errors.js';
import type { Report } from '../../pipeline/report/types.js';
import { exampleDetectorReport, exampleRecognizerReport } from './example.js';

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-report-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

async function reportError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(isFaceoptError(e, 'FACEOPT_ERR_REPORT')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected FACEOPT_ERR_REPORT');
}

describe('writeReport / loadReport', () => {
  it('round trip: write -> load gives the same report, for both roles', async () => {
    for (const [name, report] of [['rec', exampleRecognizerReport()], ['det', exampleDetectorReport()]] as const) {
      const dir = path.join(tmp, name);
      const out = await writeReport(dir, report);
      expect(out).toEqual({ json: path.join(dir, 'report.json'), md: path.join(dir, 'report.md'), html: path.join(dir, 'report.html') });
      expect((await readdir(dir)).sort()).toEqual(['report.html', 'report.json', 'report.md']); // no temp files left
      const loaded = await loadReport(dir);
      expect(loaded).toEqual(report);
      expect(JSON.parse(await readFile(out.json, 'utf8'))).toEqual(JSON.parse(JSON.stringify(report)));
      expect(await loadReport(out.json)).toEqual(report); // a report.json path works too
    }
  });
  it('report.json keeps small objects on one line and parses to the same value', () => {
    const r = exampleRecognizerReport();
    const text = stringifyReport(r);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(r)));
    expect(text).toMatch(/\{ "fpr": [\d.e-]+, "tpr": [\d.e-]+, "threshold": [\d.e-]+ \}/);
    expect(text.split('\n').length).toBeLessThan(JSON.stringify(r, null, 2).split('\n').length / 2);
  });
  it('a write that fails part-way leaves the earlier report as it was (all three files or none; it removed the earlier one too)', async () => {
    const dir = path.join(tmp, 'keep');
    const a = exampleRecognizerReport();
    await writeReport(dir, a);
    const before = { json: await readFile(path.join(dir, 'report.json'), 'utf8'), md: await readFile(path.join(dir, 'report.md'), 'utf8') };
    // report.html cannot be replaced (a folder stands there): the second file of the set fails
    await rm(path.join(dir, 'report.html'));
    await mkdir(path.join(dir, 'report.html'));
    const b = exampleRecognizerReport({ damage: 0.02 });
    const err = await writeReport(dir, b).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_WRITE_FAILED'), String(err)).toBe(true);
    expect(await readFile(path.join(dir, 'report.json'), 'utf8')).toBe(before.json);
    expect(await readFile(path.join(dir, 'report.md'), 'utf8')).toBe(before.md);
    expect((await readdir(dir)).sort()).toEqual(['report.html', 'report.json', 'report.md']); // no temp files
    expect(await loadReport(dir)).toEqual(a);
  });

  it('a full disk or a read-only file system says so in the write error (it said "check the folder exists and is writable")', () => {
    const errno = (code: string, text: string) => Object.assign(new Error(`${code}: ${text}, write`), { code });
    expect(writeFailed('/m/x.onnx', errno('ENOSPC', 'no space left on device')).message).toBe('Could not write /m/x.onnx (ENOSPC: no space left on device, write). The disk is full: free space on it or choose an output path on another disk.');
    expect(writeFailed('/m/x.onnx', errno('EROFS', 'read-only file system')).message).toContain('That file system is read-only: choose an output path on a writable one.');
    expect(writeFailed('/m/x.onnx', errno('EACCES', 'permission denied')).message).toContain('Check the folder exists and is writable.');
    expect(writeFailed('/m/x.onnx', 'it is a folder').message).toBe('Could not write /m/x.onnx (it is a folder). Check the folder exists and is writable.');
  });

  it('refuses to write a report that does not match its schema, and writes nothing', async () => {
    const r = exampleRecognizerReport();
    const bad = { ...r, recognizer: { ...r.recognizer!, cosine: { ...r.recognizer!.cosine, mean: Number.NaN } } } as Report;
    const dir = path.join(tmp, 'invalid');
    await expect(writeReport(dir, bad)).rejects.toThrow(/recognizer\.cosine\.mean: expected a finite number/);
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
  });
});

describe('loadReport refuses bad reports with FACEOPT_ERR_REPORT', () => {
  const put = async (name: string, text: string): Promise<string> => {
    const dir = path.join(tmp, name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'report.json'), text);
    return dir;
  };
  it('missing', async () => {
    expect(await reportError(loadReport(path.join(tmp, 'nope')))).toMatch(/nope\/report\.json cannot be read: the file does not exist\. Run `faceopt evaluate`/);
  });
  it('not JSON', async () => {
    expect(await reportError(loadReport(await put('garbled', '{"schemaVersion": 1,')))).toMatch(/not valid JSON/);
  });
  it('not a report', async () => {
    expect(await reportError(loadReport(await put('array', '[1,2]')))).toMatch(/not a JSON object/);
    expect(await reportError(loadReport(await put('other', '{"name":"x"}')))).toMatch(/no schemaVersion/);
  });
  it('another schema version, naming the writer', async () => {
    const r = { ...exampleRecognizerReport(), schemaVersion: 2 };
    const msg = await reportError(loadReport(await put('v2', JSON.stringify(r))));
    expect(msg).toMatch(/schema version 2 \(it was written by faceopt 0\.1\.0\), but faceopt .* reads version 1/);
  });
  it('a malformed field, naming its JSON path', async () => {
    const r = JSON.parse(JSON.stringify(exampleRecognizerReport()));
    r.recognizer.verification.variant.kFold.perFold[3].accuracy = 'high';
    expect(await reportError(loadReport(await put('field', JSON.stringify(r))))).toMatch(
      /recognizer\.verification\.variant\.kFold\.perFold\[3\]\.accuracy: expected a finite number, got "high"/);
    delete r.gates;
    r.recognizer.verification.variant.kFold.perFold[3].accuracy = 1;
    expect(await reportError(loadReport(await put('field2', JSON.stringify(r))))).toMatch(/gates: expected an object, got nothing \(missing\)/);
  });
});

describe('findNewestReport', () => {
  it('picks the folder whose report.json is newest and ignores folders without one', async () => {
    const root = path.join(tmp, 'reports');
    const r = exampleDetectorReport();
    await writeReport(path.join(root, 'a.int8'), r);
    await writeReport(path.join(root, 'b.int8'), r);
    await mkdir(path.join(root, 'empty'), { recursive: true });
    await utimes(path.join(root, 'a.int8', 'report.json'), new Date(), new Date(Date.now() + 60_000));
    expect(await findNewestReport(root)).toBe(path.join(root, 'a.int8'));
    await utimes(path.join(root, 'b.int8', 'report.json'), new Date(), new Date(Date.now() + 120_000));
    expect(await findNewestReport(root)).toBe(path.join(root, 'b.int8'));
  });
  it('says what to do when there is none', async () => {
    expect(await reportError(findNewestReport(path.join(tmp, 'no-reports')))).toMatch(/no report found there .* Run `faceopt optimize`/);
  });
});
