/**
 * A report of models that fix a batch above 1 (exported as [4, 3, 112, 112]): their `batch1` speed rows
 * ran at batch 4, and every place that shows them says so (rows, chart, one-screen summary); the field
 * passes the schema, and reports without it still read "batch 1".
 */
import { describe, expect, it } from 'vitest';
import { renderChart } from '../../pipeline/report/charts.js';
import { renderMarkdown } from '../../pipeline/report/index.js';
import { stringifyReport, validateReport } from '../../pipeline/report/io.js';
import { keyNumbers } from '../../pipeline/report/summary.js';
import type { Report } from '../../pipeline/report/types.js';
import { exampleRecognizerReport } from './example.js';

function fixedBatch4(): Report {
  const r = exampleRecognizerReport();
  if (!r.speed) throw new Error('the example report has speed results');
  r.speed = { ...r.speed, reference: { ...r.speed.reference, batch8: null }, variant: { ...r.speed.variant, batch8: null }, speedup: { ...r.speed.speedup, batch8: null }, batch1TimedAt: 4 };
  if (r.speed.blockSpeedups) r.speed.blockSpeedups = { ...r.speed.blockSpeedups, batch8: null };
  return r;
}

describe('reports of fixed-batch models', () => {
  it('label the rows timed at batch 4 as batch 4, not batch 1', () => {
    const r = fixedBatch4();
    const md = renderMarkdown(r);
    expect(md).toMatch(/\| batch 4 p50 \|/);
    expect(md).not.toMatch(/batch 1 p50/);
    expect(keyNumbers(r).find((k) => k.id === 'speedup.batch1')?.label).toBe('speed-up, batch 4');
    const chart = renderChart(r, 'latency') ?? '';
    expect(chart).toContain('batch 4');
    expect(chart).not.toContain('batch 1');
  });

  it('the field passes the schema and round-trips; without it the rows say batch 1', () => {
    const r = fixedBatch4();
    expect(validateReport(JSON.parse(stringifyReport(r))).speed?.batch1TimedAt).toBe(4);
    const plain = exampleRecognizerReport();
    expect(plain.speed?.batch1TimedAt).toBeUndefined();
    expect(renderMarkdown(plain)).toMatch(/\| batch 1 p50 \|/);
    expect(keyNumbers(plain).find((k) => k.id === 'speedup.batch1')?.label).toBe('speed-up, batch 1');
    expect(() => validateReport({ ...JSON.parse(stringifyReport(r)), speed: { ...r.speed, batch1TimedAt: 2.5 } })).toThrow(/batch1TimedAt/);
  });
});
