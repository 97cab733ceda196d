/**
 * The key numbers of a report (what a reviewer looks at first, what issue 4's one-screen summary and the
 * server's /v1/models show) and their terminal renderings: one report, or two side by side. Every value is
 * read from the Report and printed with the shared formatters.
 */
import path from 'node:path';
import { DIGITS, farLabel, fixed, mib, ms, percent, pp, ratio, ratioRange } from './format.js';
import type { Report, SpeedResults } from './types.js';
import { percentile } from '../evaluate/stats.js';

/**
 * The label of the speed rows stored as `batch1`: "batch 1", or the batch both models fix when it is
 * above 1 (SpeedResults.batch1TimedAt).
 */
export function firstBatchLabel(s: Pick<SpeedResults, 'batch1TimedAt'>): string {
  return `batch ${s.batch1TimedAt ?? 1}`;
}

/**
 * The speed-up a report shows: the median of its per-block ratios where it has blocks (what
 * measureSpeed stores since 2026-12-06; older reports stored the ratio of the medians over all runs),
 * else the stored speed-up.
 */
export function shownSpeedup(stored: number | null, blocks: readonly number[] | null | undefined): number | null {
  return blocks && blocks.length > 0 ? percentile(blocks, 50) : stored;
}

export interface KeyNumber {
  id: string;
  label: string;
  /** The headline number (for comparisons); null when not measured. */
  value: number | null;
  /** The formatted text, with context. */
  text: string;
}

/**
 * The headline numbers of a report in a fixed order; rows whose section is absent are left out (a
 * detector report has no cosine rows).
 */
export function keyNumbers(r: Report): KeyNumber[] {
  const rows: KeyNumber[] = [];
  const add = (id: string, label: string, value: number | null, text: string): void => { rows.push({ id, label, value, text }); };
  add('size', 'file size', r.sizeRatio, `${mib(r.reference.sizeBytes)} -> ${mib(r.variant.sizeBytes)} (${ratio(r.sizeRatio)})`);
  if (r.speed) {
    const s = r.speed;
    const row = (batch: 1 | 8, id: string, label: string) => {
      const blocks = batch === 1 ? s.blockSpeedups?.batch1 : s.blockSpeedups?.batch8;
      const x = shownSpeedup(batch === 1 ? s.speedup.batch1 : s.speedup.batch8, blocks);
      const ref = (batch === 1 ? s.reference.batch1 : s.reference.batch8)?.p50Ms;
      const vari = (batch === 1 ? s.variant.batch1 : s.variant.batch8)?.p50Ms;
      add(id, label, x, blocks && blocks.length > 1
        ? `${ratio(x)} (median of ${blocks.length} blocks, ${ratioRange(blocks)}; p50 over all runs ${ms(ref)} -> ${ms(vari)})`
        : `${ratio(x)} (p50 ${ms(ref)} -> ${ms(vari)})`);
    };
    row(1, 'speedup.batch1', `speed-up, ${firstBatchLabel(s)}`);
    if (s.speedup.batch8 !== null) row(8, 'speedup.batch8', 'speed-up, batch 8');
  }
  if (r.recognizer) {
    const c = r.recognizer.cosine;
    add('cosine.mean', 'mean cosine', c.mean, `${fixed(c.mean, DIGITS.cosine)} over ${c.count} faces`);
    add('cosine.min', 'min cosine', c.min, `${fixed(c.min, DIGITS.cosine)} (p1 ${fixed(c.p1, DIGITS.cosine)})`);
    const v = r.recognizer.verification;
    if (v) {
      const d = v.delta;
      add('accuracy.delta', '10-fold accuracy', d.delta,
        `${percent(d.reference)} -> ${percent(d.variant)} (${pp(d.delta)}, ${Math.round(d.bootstrap.confidence * 100)}% interval ${pp(d.bootstrap.low)} to ${pp(d.bootstrap.high)})`);
      // the lowest target FAR these pairs resolve, reference -> variant (the headline was the variant's
      // TAR at 1e-3 even where 495 negatives cannot resolve it); the unresolved one only when none is
      const byFar = [...v.variant.tarAtFar].sort((a, b) => a.far - b.far);
      const t = byFar.find((x) => x.resolved && x.tar !== null) ?? byFar.find((x) => x.far === 1e-3) ?? byFar[0];
      const ref = t ? v.reference.tarAtFar.find((x) => x.far === t.far) : undefined;
      if (t) add(`tar.${farLabel(t.far)}`, `TAR @ FAR ${farLabel(t.far)}`, t.tar, `${ref ? `${percent(ref.tar)} -> ` : ''}${percent(t.tar)}${t.resolved ? '' : ' (FAR not resolved: too few negatives)'}`);
    }
  }
  if (r.detector) {
    const d = r.detector.vsReference;
    const missed = d.missedScores?.length ? `; missed faces scored ${d.missedScores.slice(0, 5).map((x) => x.toFixed(3)).join(', ')}${d.missedScores.length > 5 ? ', ...' : ''} by the reference` : '';
    // the size it was evaluated at: its verdict holds for that size (`faceopt serve` runs a promoted detector at it)
    add('detector.recall', 'recall vs reference', d.recall, `${percent(d.recall)} at IoU ${d.iouThreshold}, input ${r.detector.inputSize.join('x')} (${d.matched} of ${d.referenceFaces} faces${missed})`);
    add('detector.meanIou', 'mean IoU vs reference', d.meanIou, fixed(d.meanIou, DIGITS.iou));
    add('detector.keypointError', 'keypoint error', d.keypointError?.mean ?? null,
      d.keypointError ? `${fixed(d.keypointError.mean, DIGITS.keypoint)} of box size (max ${fixed(d.keypointError.max, DIGITS.keypoint)})` : 'n/a');
    const gt = r.detector.vsGroundTruth;
    if (gt) add('detector.gtRecall', 'recall vs annotations', gt.variant.recall, `${percent(gt.reference.recall)} -> ${percent(gt.variant.recall)}`);
  }
  if (listsFloatLayers(r)) add('floatLayers', 'layers kept float', r.provenance.floatLayers.length, floatLayersText(r.provenance.floatLayers));
  return rows;
}

/** Whether the report speaks of layers kept float: a quantized variant's do; a float one (fp32, fp16) quantized nothing. */
export function listsFloatLayers(r: Report): boolean {
  return r.variant.precision.includes('int8') || r.provenance.floatLayers.length > 0;
}

/** "PASS" or "FAIL: 2 of 3 gates failed", the first thing every rendering says. */
export function verdictLine(r: Report): string {
  const checked = r.gates.checks.filter((c) => c.status !== 'skipped').length;
  const skipped = r.gates.checks.length - checked;
  // a skipped gate is named in the verdict: "all 2 met" read as if nothing was left unchecked
  const also = skipped ? `, ${skipped} skipped (${r.gates.checks.filter((c) => c.status === 'skipped').map((c) => c.id).join(', ')})` : '';
  if (r.gates.pass) return checked ? `PASS: all ${checked} accuracy gates met${also}` : `PASS: no accuracy gates apply to this model${also}`;
  // failed checks, not reasons: reasons are deduplicated, so two gates failing for one cause counted once
  return `FAIL: ${r.gates.checks.filter((c) => c.status === 'fail').length} of ${checked} accuracy gates failed${also}`;
}

/** A report's display title: "<model> · <variant> (<role>)". */
export function reportTitle(r: Report): string {
  return `${r.reference.name} · ${r.variantName} (${r.role})`;
}

const MARK = { pass: 'pass', fail: 'FAIL', skipped: 'skip' } as const;

/**
 * Text fit for one terminal line: ANSI escape sequences removed, other control characters (newlines,
 * carriage returns, a lone ESC) turned into spaces, so a model or node name from a user's file cannot
 * repaint the terminal or forge lines of the summary.
 */
export function terminalText(s: string): string {
  return s
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(\u0007|\u001b\\)?|\u009b[0-?]*[ -/]*[@-~]/g, '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
}

/** The terminal view of one report: title, verdict with every gate sentence, key numbers, warnings. */
export function terminalSummary(r: Report, dir: string): string {
  const lines = [`faceopt report: ${reportTitle(r)}`, `  ${dir}`, '', verdictLine(r)];
  for (const c of r.gates.checks) lines.push(`  [${MARK[c.status]}] ${c.sentence}`);
  lines.push('');
  const rows = keyNumbers(r);
  const w = Math.max(...rows.map((k) => k.label.length));
  for (const k of rows) lines.push(`  ${k.label.padEnd(w)}  ${k.text}`);
  for (const warning of r.warnings) lines.push(`  warning: ${warning}`);
  lines.push('', `  made ${r.provenance.createdAt} by faceopt ${r.provenance.toolVersion} on ${r.provenance.machine.cpuModel} (${r.provenance.machine.cores} cores${r.provenance.machine.int8Dot ? `, int8 kernels: ${r.provenance.machine.int8Dot}` : ''})`);
  return `${lines.map(terminalText).join('\n')}\n`;
}

/** Two reports side by side: one row per key number either has, verdicts first. */
export function terminalCompare(a: { report: Report; dir: string }, b: { report: Report; dir: string }): string {
  const ka = new Map(keyNumbers(a.report).map((k) => [k.id, k]));
  const kb = new Map(keyNumbers(b.report).map((k) => [k.id, k]));
  const ids = [...new Set([...ka.keys(), ...kb.keys()])];
  const rows: string[][] = [
    ['', 'A', 'B'],
    ['report', a.dir, b.dir],
    ['model', reportTitle(a.report), reportTitle(b.report)],
    // two variants of one model have one title: the file and its hash say which is which
    ['variant file', `${path.basename(a.report.variant.path)} (${a.report.variant.sha256.slice(0, 12)})`, `${path.basename(b.report.variant.path)} (${b.report.variant.sha256.slice(0, 12)})`],
    ['verdict', verdictLine(a.report), verdictLine(b.report)],
    ...ids.map((id) => [(ka.get(id) ?? kb.get(id))!.label, ka.get(id)?.text ?? '-', kb.get(id)?.text ?? '-']),
  ].map((row) => row.map(terminalText));
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.max(...rows.map((r) => r[1]!.length));
  const notes = [
    ...(a.report.role !== b.report.role ? [`note: A is a ${a.report.role} report and B a ${b.report.role} report: their rows measure different things`] : []),
    ...(a.report.reference.sha256 !== b.report.reference.sha256 ? [`note: the reports measure against different references (${a.report.reference.name}, ${b.report.reference.name})`] : []),
    ...[a, b].flatMap((x, i) => x.report.warnings.filter((w) => /not built or timed here|not faster/.test(w)).map((w) => `note (${'AB'[i]}): ${w}`)),
    ...speedNotes(a.report, b.report),
    ...dataNotes(a.report, b.report),
  ];
  return `${rows.map((r) => `${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}`.trimEnd()).join('\n')}\n${notes.map((n) => `${terminalText(n)}\n`).join('')}`;
}

/**
 * Speed-ups of two reports are each against their own reference timing, taken in their own run: when the
 * same reference file ran at clearly different speeds (the machine's phase), the speed-up rows are not
 * comparable (a reviewer read an INT8 2.38x against an exact FP32 rewrite's 2.34x, where the variants
 * themselves ran 4.05 ms and 3.03 ms).
 */
function speedNotes(a: Report, b: Report): string[] {
  if (!a.speed || !b.speed) return [];
  const ra = a.speed.reference.batch1.p50Ms;
  const rb = b.speed.reference.batch1.p50Ms;
  if (a.reference.sha256 !== b.reference.sha256 || Math.max(ra, rb) <= 1.1 * Math.min(ra, rb)) return [];
  return [`note: the same reference ran ${ra.toFixed(2)} ms in A and ${rb.toFixed(2)} ms in B (batch-1 p50): the speed-up rows were timed in different conditions; the variants themselves ran ${a.speed.variant.batch1.p50Ms.toFixed(2)} ms and ${b.speed.variant.batch1.p50Ms.toFixed(2)} ms (\`faceopt evaluate --model A --reference B\` times the two side by side)`];
}

/** Accuracy rows measured on different data are not comparable either: say so. */
function dataNotes(a: Report, b: Report): string[] {
  const da = a.evaluationData;
  const db = b.evaluationData;
  const what = (r: Report) => `${r.evaluationData.split.evaluationImages} photos${r.evaluationData.pairsFile ? ` and ${path.basename(r.evaluationData.pairsFile)}` : ', no pairs'}`;
  if (da.pairsFile !== db.pairsFile || da.split.evaluationImages !== db.split.evaluationImages || da.split.description !== db.split.description) {
    return [`note: the reports were evaluated on different data (A: ${what(a)}; B: ${what(b)}): their accuracy rows are not directly comparable`];
  }
  return [];
}

/**
 * The count of layers kept float with what kept them ("20 (16 float tail, 3 accuracy search, 1 float
 * prefix)"): the log said "3 kept float" where the key number said 20, with nothing between them.
 */
export function floatLayersText(layers: readonly { reason: string }[]): string {
  const kinds = new Map<string, number>();
  for (const { reason } of layers) {
    const kind = /^float prefix/.test(reason) ? 'float prefix'
      : /^float suffix/.test(reason) ? 'float tail'
        : /sensitivity|mixed precision|kept float by the search/.test(reason) ? 'accuracy search'
          : /excluded/.test(reason) ? 'excluded'
            : /int8 kernel|slow/.test(reason) ? 'slow int8 kernel' : 'other';
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const parts = [...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`);
  return parts.length ? `${layers.length} (${parts.join(', ')})` : '0';
}
