/**
 * A report folder is never left with the files of two runs, or with renderings and no report.json, when
 * writing a report fails part-way (a disk that fills up after report.md was written).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeReport } from '../../pipeline/report/io.js';
import { exampleDetectorReport, exampleRecognizerReport } from '../report/example.js';

describe('writeReport that fails after its first file', () => {
  it('leaves no report.md of this run beside an earlier run\'s report.json', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-report-write-'));
    await writeReport(dir, exampleDetectorReport());
    // report.html cannot be replaced (a folder in its place stands in for a full disk)
    const html = path.join(dir, 'report.html');
    rmSync(html);
    mkdirSync(html);
    writeFileSync(path.join(html, 'x'), '');
    await expect(writeReport(dir, exampleRecognizerReport())).rejects.toMatchObject({ code: 'FACEOPT_ERR_WRITE_FAILED' });
    const left = readdirSync(dir).filter((f) => f !== 'report.html').sort();
    // before 2026-12-06: the recognizer's report.md beside the detector's report.json; until 2026-12-07 the
    // earlier report was removed as well; now it stays whole (the set is written all or nothing)
    expect(left).toEqual(['report.json', 'report.md']);
    expect(readFileSync(path.join(dir, 'report.md'), 'utf8')).toContain('(detector)');
    expect(JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')).role).toBe('detector');
  });
});
