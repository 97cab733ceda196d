/**
 * What a report says, once: the report as a list of blocks (headings, paragraphs, tables, chart slots).
 * report.md and report.html are two serialisations of the same blocks, so they can never disagree with
 * each other, and every number in them is read from the Report and printed by format.ts.
 */
import { DIGITS, farLabel, fixed, mib, ms, NA, percent, pp, ratio, ratioRange, shortHash } from './format.js';
import { firstBatchLabel, keyNumbers, listsFloatLayers, reportTitle, shownSpeedup, verdictLine } from './summary.js';
import type { Report } from './types.js';
import type { DetectionComparison, VerificationResult } from '../evaluate/metrics.js';

export type ChartId = 'cosine-histogram' | 'roc' | 'sensitivity' | 'latency';

export type Block =
  | { kind: 'title'; text: string }
  | { kind: 'verdict'; pass: boolean; text: string }
  | { kind: 'heading'; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; headers: string[]; rows: string[][] }
  | { kind: 'chart'; chart: ChartId; caption: string };

/** Most sensitive layers listed in the table (the chart shows the same ones). */
export const SENSITIVITY_ROWS = 20;

const h = (text: string): Block => ({ kind: 'heading', text });
const p = (text: string): Block => ({ kind: 'paragraph', text });
const table = (headers: string[], rows: string[][]): Block => ({ kind: 'table', headers, rows });

function verdict(r: Report): Block[] {
  const marks = { pass: 'pass', fail: 'FAIL', skipped: 'skipped' } as const;
  const blocks: Block[] = [{ kind: 'title', text: `faceopt report: ${reportTitle(r)}` }, { kind: 'verdict', pass: r.gates.pass, text: verdictLine(r) }];
  // every gate's sentence, passed and skipped ones too (only failures were listed: a passing gate's caveat,
  // such as an interval reaching below it, was in the terminal summary only)
  const sentences = r.gates.checks.map((c) => `${marks[c.status]}: ${c.sentence}`);
  const other = r.gates.reasons.filter((reason) => !r.gates.checks.some((c) => c.sentence === reason));
  if (sentences.length + other.length) blocks.push({ kind: 'list', items: [...sentences, ...other] });
  if (r.gates.checks.length) {
    blocks.push(table(['gate', 'measured', 'threshold', 'result'], r.gates.checks.map((c) => [
      c.id, c.measured === null ? NA : String(Number(c.measured.toPrecision(8))), `${c.comparator} ${c.threshold}`, marks[c.status],
    ])));
  }
  if (r.warnings.length) blocks.push(h('Warnings'), { kind: 'list', items: r.warnings });
  blocks.push(h('Key numbers'), table(['measure', 'value'], keyNumbers(r).map((k) => [k.label, k.text])));
  return blocks;
}

function models(r: Report): Block[] {
  const row = (label: string, m: Report['reference']): string[] => [label, m.name, m.precision, m.path, shortHash(m.sha256), String(m.sizeBytes), mib(m.sizeBytes)];
  return [h('Models'), table(['', 'name', 'precision', 'path', 'sha256', 'bytes', 'size'], [row('reference', r.reference), row('variant', r.variant)]),
    p(`Size ratio (variant / reference): ${ratio(r.sizeRatio)}.`)];
}

function binLabel(edges: number[], i: number): string {
  return i === edges.length - 2 ? `[${edges[i]}, ${edges[i + 1]}]` : `[${edges[i]}, ${edges[i + 1]})`;
}

function verificationRows(a: VerificationResult, b: VerificationResult): string[][] {
  const both = (f: (v: VerificationResult) => string): string[] => [f(a), f(b)];
  const rows = [
    ['pairs (same / different)', ...both((v) => `${v.pairs} (${v.positives} / ${v.negatives})`)],
    [`${a.kFold.folds}-fold accuracy (mean ± std)`, ...both((v) => `${percent(v.kFold.accuracyMean)} ± ${percent(v.kFold.accuracyStd)}`)],
    ['best-threshold accuracy', ...both((v) => percent(v.bestThreshold.accuracy))],
    ['best threshold (cosine)', ...both((v) => fixed(v.bestThreshold.threshold, DIGITS.threshold))],
  ];
  a.tarAtFar.forEach((t, i) => {
    rows.push([`TAR @ FAR ${farLabel(t.far)}`, ...both((v) => {
      const x = v.tarAtFar[i];
      return x ? `${percent(x.tar)}${x.resolved ? '' : ' (FAR not resolved)'}` : NA;
    })]);
  });
  rows.push(['ROC AUC', ...both((v) => fixed(v.roc.auc, DIGITS.score))]);
  return rows;
}

function recognizer(r: Report): Block[] {
  if (!r.recognizer) return [];
  const c = r.recognizer.cosine;
  const blocks: Block[] = [
    h(`Embedding agreement (${c.count} faces)`),
    p('Cosine between the reference and the variant embedding of the same aligned face.'),
    table(['mean', 'p1', 'min', 'max', 'non-finite'], [[fixed(c.mean, DIGITS.cosine), fixed(c.p1, DIGITS.cosine), fixed(c.min, DIGITS.cosine), fixed(c.max, DIGITS.cosine), String(c.nonFinite)]]),
    { kind: 'chart', chart: 'cosine-histogram', caption: 'Per-face cosine, reference vs variant' },
    table(['cosine bin', 'faces'], c.histogram.counts.map((n, i) => [binLabel(c.histogram.edges, i), String(n)])),
  ];
  const v = r.recognizer.verification;
  if (!v) return [...blocks, p('Verification accuracy was not measured (no pairs file).')];
  const d = v.delta;
  blocks.push(
    h(`Verification (${v.pairsFile})`),
    p(`${v.reference.kFold.folds}-fold cross-validation as in the LFW protocol (folds: ${v.reference.kFold.foldMode === 'lfw-sets' ? 'lfw-sets, same and different pairs each cut into equal chunks in file order' : 'consecutive, the file order cut into equal chunks'}), threshold chosen on the other folds and tested on the held-out one.${v.skippedPairs ? ` ${v.skippedPairs} pairs skipped (no face found).` : ''}`),
    table(['', 'reference', 'variant'], verificationRows(v.reference, v.variant)),
    { kind: 'chart', chart: 'roc', caption: 'ROC of both models (false accept rate on a log scale)' },
    p(`Accuracy delta (variant - reference): ${pp(d.delta)}; ${Math.round(d.bootstrap.confidence * 100)}% paired bootstrap interval ${pp(d.bootstrap.low)} to ${pp(d.bootstrap.high)} (${d.bootstrap.resamples} resamples, seed ${d.bootstrap.seed}, ${d.bootstrap.thresholdsRechosen ? 'fold thresholds chosen again in each' : 'fold thresholds held fixed'}); per-fold delta from ${pp(d.foldMin)} to ${pp(d.foldMax)} (std ${(d.foldStd * 100).toFixed(2)} pp); pairs the variant fixed: ${d.fixed}, broke: ${d.broken}.`),
    table(['fold', 'pairs', 'reference', 'variant', 'delta'], v.reference.kFold.perFold.map((f, i) => [
      String(i + 1), String(f.size), percent(f.accuracy), percent(v.variant.kFold.perFold[i]?.accuracy), pp(d.perFold[i]),
    ])),
  );
  return blocks;
}

function detectionRow(label: string, d: DetectionComparison): string[] {
  return [label, String(d.images), String(d.referenceFaces), String(d.candidateFaces), String(d.matched), percent(d.recall), percent(d.precision),
    fixed(d.meanIou, DIGITS.iou), fixed(d.keypointError?.mean, DIGITS.keypoint), fixed(d.keypointError?.max, DIGITS.keypoint), fixed(d.scoreDrift?.meanAbs, DIGITS.score)];
}

function detector(r: Report): Block[] {
  if (!r.detector) return [];
  const d = r.detector;
  const rows = [detectionRow('variant vs reference', d.vsReference)];
  if (d.vsGroundTruth) rows.push(detectionRow('reference vs annotations', d.vsGroundTruth.reference), detectionRow('variant vs annotations', d.vsGroundTruth.variant));
  const blocks: Block[] = [
    h(`Detection (input ${d.inputSize[0]}x${d.inputSize[1]}, IoU >= ${d.vsReference.iouThreshold})`),
    p('Keypoint error is the mean distance of matched landmarks divided by sqrt(w*h) of the reference box; score drift is the mean |variant - reference| score.'),
    table(['comparison', 'images', 'reference faces', 'candidate faces', 'matched', 'recall', 'precision', 'mean IoU', 'keypoint error', 'max keypoint error', 'score drift'], rows),
  ];
  if (d.faceFree) blocks.push(p(`Photos without human faces: ${d.faceFree.images}; false detections: reference ${d.faceFree.referenceDetections}, variant ${d.faceFree.variantDetections}.`));
  return blocks;
}

/** The speed-up row of one batch size: the median of the per-block ratios and their spread (nothing without blocks). */
function blockRows(batch: string, blocks: readonly number[] | null | undefined): string[][] {
  if (!blocks || blocks.length === 0) return [];
  return [[`${batch} speed-up, median of ${blocks.length} block${blocks.length === 1 ? '' : 's'}`, '', '', `${ratio(shownSpeedup(null, blocks))} (${ratioRange(blocks)})`]];
}

function speed(r: Report): Block[] {
  if (!r.speed) return [];
  const s = r.speed;
  const b1 = firstBatchLabel(s);
  const rows = [
    ...blockRows(b1, s.blockSpeedups?.batch1),
    [`${b1} p50`, ms(s.reference.batch1.p50Ms), ms(s.variant.batch1.p50Ms), ratio(s.reference.batch1.p50Ms / s.variant.batch1.p50Ms)],
    [`${b1} p95`, ms(s.reference.batch1.p95Ms), ms(s.variant.batch1.p95Ms), ''],
    [`${b1} mean`, ms(s.reference.batch1.meanMs), ms(s.variant.batch1.meanMs), ''],
  ];
  if (s.reference.batch8 && s.variant.batch8) {
    rows.push(
      ...blockRows('batch 8', s.blockSpeedups?.batch8),
      ['batch 8 p50', ms(s.reference.batch8.p50Ms), ms(s.variant.batch8.p50Ms), ratio(s.reference.batch8.p50Ms / s.variant.batch8.p50Ms)],
      ['batch 8 p95', ms(s.reference.batch8.p95Ms), ms(s.variant.batch8.p95Ms), ''],
      ['batch 8 mean', ms(s.reference.batch8.meanMs), ms(s.variant.batch8.meanMs), ''],
    );
  }
  rows.push(
    ['session start', ms(s.reference.sessionStartMs), ms(s.variant.sessionStartMs), ''],
  );
  // one process with both models loaded: one value (it stood under both columns as if each model's own)
  if (s.variant.peakMemoryBytes !== null) rows.push([`process memory after timing, both models loaded: ${mib(s.variant.peakMemoryBytes)}`, '', '', '']);
  return [
    h(`Speed (${s.executionProvider}, ${s.threads ? `${s.threads} threads` : `onnxruntime's default threads on ${r.provenance.machine.cores} cores`})`),
    table(['', 'reference', 'variant', 'speed-up'], rows),
    { kind: 'chart', chart: 'latency', caption: 'Median (p50) latency per batch; p95 in the table above' },
    ...(s.note ? [p(`Note: ${s.note}`)] : []),
  ];
}

function layers(r: Report): Block[] {
  const blocks: Block[] = [];
  const fl = r.provenance.floatLayers;
  if (listsFloatLayers(r)) blocks.push(h('Layers kept in float'), fl.length ? table(['layer', 'op', 'why'], fl.map((l) => [l.layer, l.op, l.reason])) : p('None: every quantizable layer was quantized.'));
  if (r.sensitivity && r.sensitivity.layers.length) {
    const top = mostSensitive(r);
    blocks.push(
      h('Per-layer sensitivity'),
      p(`Metric: ${r.sensitivity.metric}. The ${top.length} most sensitive of ${r.sensitivity.layers.length} layers:`),
      { kind: 'chart', chart: 'sensitivity', caption: 'Most sensitive layers' },
      table(['layer', 'op', 'metric'], top.map((l) => [l.layer, l.op, fixed(l.metric, DIGITS.sensitivity)])),
    );
  }
  return blocks;
}

/** The most sensitive layers (highest metric first), the rows both the table and the chart show. */
export function mostSensitive(r: Report): { layer: string; op: string; metric: number }[] {
  return [...(r.sensitivity?.layers ?? [])].sort((a, b) => b.metric - a.metric).slice(0, SENSITIVITY_ROWS);
}

function data(r: Report): Block[] {
  const e = r.evaluationData;
  const s = e.split;
  const id = (n: number | null): string => (n === null ? NA : String(n));
  return [
    h('Evaluation data'),
    p(`Split (${s.method}): ${s.description}`),
    table(['', 'images', 'identities'], [['calibration', String(s.calibrationImages), id(s.calibrationIdentities)], ['evaluation', String(s.evaluationImages), id(s.evaluationIdentities)], ['shared', '', id(s.sharedIdentities)]]),
    table(['source', 'path'], [['faces', e.facesSource ?? NA], ['pairs', e.pairsFile ?? NA], ...e.boxFiles.map((b) => ['boxes', b])]),
    ...(e.alignment ? [p(`Faces: ${e.alignment.face}. Detector ${e.alignment.detector} (sha256 ${e.alignment.detectorSha256.slice(0, 12)}), score threshold ${e.alignment.scoreThreshold}.`)] : []),
  ];
}

function provenance(r: Report): Block[] {
  const pr = r.provenance;
  const m = pr.machine;
  const rows = [
    ['faceopt', pr.toolVersion], ['created', pr.createdAt], ['command', pr.command ?? NA],
    // a re-evaluated variant: the run that made it
    ...(pr.madeBy && pr.madeBy.command !== pr.command ? [['made by', pr.madeBy.command ?? NA]] : []),
    ['CPU', `${m.cpuModel} (${m.cores} cores${m.int8Dot ? `; int8 kernels: ${m.int8Dot}` : ''})`], ['memory', mib(m.totalMemoryBytes)], ['platform', `${m.platform} ${m.arch}`],
    ['Node.js', m.nodeVersion], ['onnxruntime', m.onnxruntimeVersion],
  ];
  const c = pr.calibration;
  if (c) {
    rows.push(['calibration', `${c.method}, ${c.images} images`], ['stats sha256', c.statsSha256], ['stats file', c.statsPath ?? NA]);
    for (const [k, v] of Object.entries(c.config)) rows.push([`calibration ${k}`, v === null ? NA : String(v)]);
  }
  return [h('Provenance'), table(['', ''], rows)];
}

/** The whole report as blocks, verdict first. */
export function reportBlocks(r: Report): Block[] {
  return [...verdict(r), ...models(r), ...recognizer(r), ...detector(r), ...speed(r), ...layers(r), ...data(r), ...provenance(r)];
}
