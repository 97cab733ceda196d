/**
 * `faceopt evaluate` of a variant whose report folder already describes that same file keeps what only
 * the run that made it knew (calibration, float layers with reasons, sensitivity, its command and
 * warnings); any other file, no report, or an unreadable one: nothing is kept. The report's documents
 * name the making command where it is not the report's own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { earlierProvenance } from '../../pipeline/evaluate/evaluate-models.js';
import { sha256File } from '../../pipeline/fsutil.js';
import { renderMarkdown, writeReport } from '../../pipeline/report/index.js';
import { exampleRecognizerReport } from '../report/example.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-earlier-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('earlierProvenance', () => {
  it('keeps calibration, float layers and sensitivity of a report on the same file only', async () => {
    const model = path.join(dir, 'm.int8.onnx');
    writeFileSync(model, 'model bytes');
    const other = path.join(dir, 'other.onnx');
    writeFileSync(other, 'other bytes');
    const reportDir = path.join(dir, 'reports', 'm.int8');
    expect(await earlierProvenance(reportDir, await sha256File(model))).toBeNull();
    const report = exampleRecognizerReport();
    report.variant.sha256 = await sha256File(model);
    expect(report.provenance.floatLayers.length).toBeGreaterThan(0);
    expect(report.sensitivity).not.toBeNull();
    await writeReport(reportDir, report);
    // a report written before the making run was recorded
    expect(await earlierProvenance(reportDir, await sha256File(model))).toEqual({ calibration: report.provenance.calibration, floatLayers: report.provenance.floatLayers, sensitivity: report.sensitivity, madeBy: null });
    const madeBy = { command: 'faceopt optimize --int8 --model m.onnx', warnings: ['2 of 270 calibration photos had no detectable face'] };
    report.provenance.madeBy = madeBy;
    await writeReport(reportDir, report);
    expect((await earlierProvenance(reportDir, await sha256File(model)))?.madeBy).toEqual(madeBy);
    expect(await earlierProvenance(reportDir, await sha256File(other))).toBeNull();
    // the documents name the making run only where another command wrote the report
    const md = (r: typeof report) => renderMarkdown(r);
    expect(md({ ...report, provenance: { ...report.provenance, command: madeBy.command } })).not.toContain('made by');
    expect(md({ ...report, provenance: { ...report.provenance, command: 'faceopt evaluate --model m.int8.onnx' } })).toContain(`| made by | ${madeBy.command} |`);
    writeFileSync(path.join(reportDir, 'report.json'), '{ not json');
    expect(await earlierProvenance(reportDir, await sha256File(model))).toBeNull();
  });
});
