import { describe, expect, it } from 'vitest';
import { mostSensitive } from '../../pipeline/report/document.js';
import { DIGITS } from '../../pipeline/report/format.js';
import { floatLayersText, keyNumbers, terminalCompare, verdictLine } from '../../pipeline/report/summary.js';
import { renderMarkdown } from '../../pipeline/report/markdown.js';
import { exampleDetectorReport, exampleRecognizerReport } from './example.js';

/** Text as a Markdown renderer shows it: the entities report.md writes for &, < and > decoded. */
const unentity = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The Markdown tables after each `## heading` (the first table before any heading is under ''). */
function tables(md: string): Map<string, string[][][]> {
  const out = new Map<string, string[][][]>();
  let heading = '';
  let current: string[][] | null = null;
  for (const line of md.split('\n')) {
    if (line.startsWith('## ')) { heading = unentity(line.slice(3)); current = null; continue; }
    if (!line.startsWith('|')) { current = null; continue; }
    // cells as a renderer shows them: \| unescaped, entities (&lt; &gt; &amp;) decoded
    const cells = line.slice(1, -1).split(/(?<!\\) \| |(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|')).map(unentity);
    if (cells.every((c) => /^-+$/.test(c))) continue;
    if (!current) {
      current = [];
      out.set(heading, [...(out.get(heading) ?? []), current]);
    }
    current.push(cells);
  }
  return out;
}

/** Parse a number back out of a rendered cell and check it against the JSON value at `digits` decimals. */
function same(cell: string, json: number, digits: number, scale = 1): void {
  const m = /[-+]?\d+(\.\d+)?/.exec(cell);
  expect(m, `a number in "${cell}"`).not.toBeNull();
  expect(Math.abs(Number(m![0]) - json * scale)).toBeLessThanOrEqual(0.5 * 10 ** -digits + 1e-12);
}

const row = (t: string[][], label: string): string[] => {
  const r = t.find((x) => x[0] === label);
  expect(r, `row ${label}`).toBeDefined();
  return r!;
};

describe('report.md', () => {
  const r = exampleRecognizerReport();
  const md = renderMarkdown(r);
  const t = tables(md);

  it('puts the verdict first, then every gate\'s sentence (passed and skipped ones too)', () => {
    const lines = md.split('\n').filter(Boolean);
    expect(lines[0]).toBe('# faceopt report: mobileface_paddle_128d · int8 (recognizer)');
    expect(lines[1]).toBe('**PASS: all 3 accuracy gates met**');
    // a passing gate's sentence (and any caveat in it) is in the document, not only the terminal
    expect(lines[2]).toBe(`- pass: ${r.gates.checks[0]!.sentence}`);
    expect(lines[4]).toMatch(/^- pass: 10-fold verification accuracy changed by .*The gate judges the measured change; its interval reaches below the gate/);
    const bad = exampleRecognizerReport({ damage: 0.02 });
    const badLines = renderMarkdown(bad).split('\n').filter(Boolean);
    expect(bad.gates.pass).toBe(false);
    expect(badLines[1]).toBe(`**FAIL: ${bad.gates.checks.filter((c) => c.status === 'fail').length} of 3 accuracy gates failed**`);
    expect(badLines.slice(2, 5).map((l) => l.split(':')[0])).toEqual(bad.gates.checks.map((c) => `- ${c.status === 'fail' ? 'FAIL' : c.status}`));
    // a skipped gate is named in the verdict line ("all 2 met" read as if nothing was left unchecked)
    const skipped = { ...r, gates: { ...r.gates, checks: r.gates.checks.map((c, i) => (i === 2 ? { ...c, status: 'skipped' as const } : c)) } };
    expect(verdictLine(skipped)).toBe(`PASS: all 2 accuracy gates met, 1 skipped (${r.gates.checks[2]!.id})`);
    // the count is of failed gates: two failing for one (deduplicated) reason are two
    const one = { ...bad, gates: { ...bad.gates, reasons: [bad.gates.reasons[0]!], checks: bad.gates.checks.map((c, i) => (i < 2 ? { ...c, status: 'fail' as const } : { ...c, status: 'pass' as const })) } };
    expect(verdictLine(one)).toBe('FAIL: 2 of 3 accuracy gates failed');
  });

  it('gate table shows the measured values and thresholds of report.json', () => {
    const g = t.get('')![0]!;
    expect(g[0]).toEqual(['gate', 'measured', 'threshold', 'result']);
    r.gates.checks.forEach((c, i) => {
      expect(g[i + 1]![0]).toBe(c.id);
      same(g[i + 1]![1]!, c.measured!, 6);
      expect(g[i + 1]![2]).toBe(`${c.comparator} ${c.threshold}`);
    });
  });

  it('embedding tables show the cosine summary and every histogram count', () => {
    const [summary, hist] = t.get('Embedding agreement (600 faces)')!;
    const c = r.recognizer!.cosine;
    const cells = summary![1]!;
    [c.mean, c.p1, c.min, c.max].forEach((v, i) => same(cells[i]!, v, DIGITS.cosine));
    expect(hist!.slice(1).map((x) => Number(x[1]))).toEqual(c.histogram.counts);
  });

  it('verification tables show both models and every fold', () => {
    const v = r.recognizer!.verification!;
    const [main, folds] = t.get(`Verification (${v.pairsFile})`)!;
    const acc = row(main!, '10-fold accuracy (mean ± std)');
    same(acc[1]!, v.reference.kFold.accuracyMean, DIGITS.percent, 100);
    same(acc[2]!, v.variant.kFold.accuracyMean, DIGITS.percent, 100);
    same(acc[2]!.split('±')[1]!, v.variant.kFold.accuracyStd, DIGITS.percent, 100);
    same(row(main!, 'best threshold (cosine)')[2]!, v.variant.bestThreshold.threshold, DIGITS.threshold);
    same(row(main!, 'TAR @ FAR 1e-2')[1]!, v.reference.tarAtFar[0]!.tar!, DIGITS.percent, 100);
    same(row(main!, 'ROC AUC')[2]!, v.variant.roc.auc!, DIGITS.score);
    expect(folds!.length).toBe(11);
    folds!.slice(1).forEach((f, i) => {
      expect(Number(f[1])).toBe(v.reference.kFold.perFold[i]!.size);
      same(f[2]!, v.reference.kFold.perFold[i]!.accuracy, DIGITS.percent, 100);
      same(f[3]!, v.variant.kFold.perFold[i]!.accuracy, DIGITS.percent, 100);
      same(f[4]!, v.delta.perFold[i]!, DIGITS.pp, 100);
    });
    const para = md.split('\n').find((l) => l.startsWith('Accuracy delta'))!;
    const nums = para.match(/[-+]?\d+\.\d+ pp/g)!;
    same(nums[0]!, v.delta.delta, DIGITS.pp, 100);
    same(nums[1]!, v.delta.bootstrap.low, DIGITS.pp, 100);
    same(nums[2]!, v.delta.bootstrap.high, DIGITS.pp, 100);
  });

  it('layers kept float: the count with what kept them (the log said 3 kept float where the key number said 20)', () => {
    const reasons = [
      ...Array(16).fill('float suffix after the last strided conv (float from Conv.39\'s output on): the fastest ...'),
      'float prefix through 1 strided conv (int8 from Conv.0\'s output on): the fastest ...',
      'reads activation prelu_0.tmp_0, kept float: activation sensitivity: output cosine loss 0.002',
      'reads activation prelu_12.tmp_0, kept float: activation sensitivity: output cosine loss 0.001',
      'weights kept float by the search (mixed precision)',
      'excluded by option',
    ];
    expect(floatLayersText(reasons.map((reason) => ({ reason })))).toBe('21 (16 float tail, 3 accuracy search, 1 float prefix, 1 excluded)');
    expect(floatLayersText([])).toBe('0');
  });

  it('the headline TAR is at the lowest FAR the pairs resolve, reference -> variant; the unresolved one only when none is', () => {
    const v = r.recognizer!.verification!;
    const resolved = [...v.variant.tarAtFar].sort((a, b) => a.far - b.far).find((x) => x.resolved)!;
    const tar = keyNumbers(r).find((k) => k.id.startsWith('tar.'))!;
    expect(tar.id).toBe(`tar.${resolved.far === 0.01 ? '1e-2' : '1e-3'}`);
    expect(tar.text).toMatch(/^\d+\.\d+% -> \d+\.\d+%$/);
    const none = { ...r, recognizer: { ...r.recognizer!, verification: { ...v, variant: { ...v.variant, tarAtFar: v.variant.tarAtFar.map((x) => ({ ...x, resolved: false })) } } } };
    const t2 = keyNumbers(none).find((k) => k.id.startsWith('tar.'))!;
    expect(t2.id).toBe('tar.1e-3');
    expect(t2.text).toMatch(/ \(FAR not resolved: too few negatives\)$/);
  });

  it('speed, size and sensitivity tables match report.json', () => {
    const s = r.speed!;
    const sp = t.get('Speed (cpu, 2 threads)')![0]!;
    same(row(sp, 'batch 1 p50')[1]!, s.reference.batch1.p50Ms, DIGITS.ms);
    same(row(sp, 'batch 1 p50')[2]!, s.variant.batch1.p50Ms, DIGITS.ms);
    // the p50 row divides its own p50s; the speed-up row is the median of the block ratios
    same(row(sp, 'batch 1 p50')[3]!, s.reference.batch1.p50Ms / s.variant.batch1.p50Ms, DIGITS.ratio);
    same(row(sp, 'batch 8 p95')[2]!, s.variant.batch8!.p95Ms, DIGITS.ms);
    const lo = Math.min(...s.blockSpeedups!.batch1).toFixed(DIGITS.ratio);
    const hi = Math.max(...s.blockSpeedups!.batch1).toFixed(DIGITS.ratio);
    expect(row(sp, 'batch 1 speed-up, median of 3 blocks')[3]).toBe(`${s.speedup.batch1.toFixed(DIGITS.ratio)}x (${lo}x-${hi}x)`);
    expect(s.speedup.batch1).toBe(2.5);
    expect(row(sp, 'batch 8 speed-up, median of 2 blocks')[3]).toBe('3.07x (3.02x-3.12x)');
    same(row(sp, 'session start')[1]!, s.reference.sessionStartMs, DIGITS.ms);
    // memory is one process's, with both models loaded: one value, not one per column
    expect(sp.some((cells) => cells[0] === 'peak memory')).toBe(false);
    expect(sp.find((cells) => cells[0]!.startsWith('process memory after timing, both models loaded: '))?.slice(1)).toEqual(['', '', '']);
    // without a thread count the heading says what ran: onnxruntime's default on the machine's cores
    const dflt = tables(renderMarkdown({ ...r, speed: { ...s, threads: null } }));
    expect(dflt.has(`Speed (cpu, onnxruntime's default threads on ${r.provenance.machine.cores} cores)`)).toBe(true);
    const models = t.get('Models')![0]!;
    expect(Number(row(models, 'variant')[5])).toBe(r.variant.sizeBytes);
    const sens = t.get('Per-layer sensitivity')![0]!;
    expect(sens.slice(1).map((x) => x[0])).toEqual(mostSensitive(r).map((l) => l.layer));
    sens.slice(1).forEach((x, i) => same(x[2]!, mostSensitive(r)[i]!.metric, DIGITS.sensitivity));
    expect(row(t.get('Layers kept in float')![0]!, 'fc1 | out')[1]).toBe('Gemm'); // '|' escaped in the source
    expect(md).toContain('| fc1 \\| out | Gemm |');
  });

  it('"layers kept float" is a key number and a section of int8 variants only', () => {
    const int8 = exampleRecognizerReport();
    expect(keyNumbers(int8).find((k) => k.id === 'floatLayers')?.value).toBe(int8.provenance.floatLayers.length);
    const fp32 = { ...int8, variant: { ...int8.variant, precision: 'fp32' }, provenance: { ...int8.provenance, floatLayers: [] } };
    expect(keyNumbers(fp32).map((k) => k.id)).not.toContain('floatLayers');
    expect(renderMarkdown(int8)).toContain('## Layers kept in float');
    expect(renderMarkdown(fp32)).not.toContain('## Layers kept in float');
  });

  it('two reports side by side say when their roles or references differ; a calibration setting left unset reads n/a, not null', () => {
    const text = terminalCompare({ report: exampleRecognizerReport(), dir: 'a' }, { report: exampleDetectorReport(), dir: 'b' });
    expect(text).toContain('note: A is a recognizer report and B a detector report: their rows measure different things');
    expect(terminalCompare({ report: exampleRecognizerReport(), dir: 'a' }, { report: exampleRecognizerReport(), dir: 'b' })).not.toContain('note:');
    // two variants of one model: the file row tells them apart; a reference timed 40% slower in B, and other
    // evaluation data, are said (a reviewer compared an INT8 2.38x with an FP32 rewrite's 2.34x timed apart)
    const a = exampleRecognizerReport();
    const b = exampleRecognizerReport({ damage: 0.01 });
    const slowB = { ...b, variant: { ...b.variant, path: '/m/other.int8.onnx', sha256: 'cd'.repeat(32) }, speed: { ...b.speed!, reference: { ...b.speed!.reference, batch1: { ...b.speed!.reference.batch1, p50Ms: b.speed!.reference.batch1.p50Ms * 1.4 } } }, evaluationData: { ...b.evaluationData, pairsFile: null } };
    const both = terminalCompare({ report: a, dir: 'a' }, { report: slowB, dir: 'b' });
    expect(both).toMatch(/^variant file +\S+ \([0-9a-f]{12}\) +other\.int8\.onnx \(cdcdcdcdcdcd\)$/m);
    expect(both).toMatch(/note: the same reference ran [\d.]+ ms in A and [\d.]+ ms in B \(batch-1 p50\): the speed-up rows were timed in different conditions/);
    expect(both).toMatch(/note: the reports were evaluated on different data \(A: .*pairs.*; B: .*no pairs\)/);
    const r = exampleRecognizerReport();
    const unset = { ...r, provenance: { ...r.provenance, calibration: { ...r.provenance.calibration!, config: { ...r.provenance.calibration!.config, exclude: null } } } };
    expect(renderMarkdown(unset)).toContain('| calibration exclude | n/a |');
  });

  it('a detector report shows detection numbers and no recognizer sections', () => {
    const d = exampleDetectorReport();
    const dm = renderMarkdown(d);
    expect(dm).not.toContain('Embedding agreement');
    const det = tables(dm).get('Detection (input 640x640, IoU >= 0.5)')![0]!;
    const v = row(det, 'variant vs reference');
    expect(Number(v[2])).toBe(d.detector!.vsReference.referenceFaces);
    expect(Number(v[4])).toBe(d.detector!.vsReference.matched);
    same(v[5]!, d.detector!.vsReference.recall!, DIGITS.percent, 100);
    same(v[8]!, d.detector!.vsReference.keypointError!.mean, DIGITS.keypoint);
    expect(dm).toContain('false detections: reference 1, variant 1');
  });
});
