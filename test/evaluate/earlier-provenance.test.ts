/**
 * `faceopt evaluate` of a variant whose report folder already describes that same file keeps what only
 * the run that made it knew (calibration, float layers with reasons, sensitivity); any other file, no
 * report, or an unreadable one: nothing is kept.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { earlierProvenance } from '../../pipeline/evaluate/evaluate-models.js';
import { sha256File } from '../../pipeline/fsutil.js';
import { writeReport } from '../../pipeline/report/index.js';
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
    expect(await earlierProvenance(reportDir, await sha256File(model))).toEqual({ calibration: report.provenance.calibration, floatLayers: report.provenance.floatLayers, sensitivity: report.sensitivity });
    expect(await earlierProvenance(reportDir, await sha256File(other))).toBeNull();
    writeFileSync(path.join(reportDir, 'report.json'), '{ not json');
    expect(await earlierProvenance(reportDir, await sha256File(model))).toBeNull();
  });
});
