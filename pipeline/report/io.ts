/**
 * Reading and writing report folders: `writeReport` validates the Report and writes report.json (the
 * source), report.md and report.html, each atomically; `loadReport` reads report.json back and refuses
 * anything that is missing, not JSON, another schema version, or not shaped like a Report, with a coded
 * FACEOPT_ERR_REPORT that names the problem and the JSON path.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { writeFilesAtomic } from '../fsutil.js';
import { reportsDir } from '../paths.js';
import { TOOL_VERSION } from '../version.js';
import { reportSchema, SchemaError } from './schema.js';
import { REPORT_SCHEMA_VERSION, type Report } from './types.js';

export const REPORT_FILES = { json: 'report.json', md: 'report.md', html: 'report.html' } as const;

function isPlain(v: unknown): boolean {
  return v === null || typeof v !== 'object' || (Array.isArray(v) ? v.every((x) => x === null || typeof x !== 'object') : Object.values(v).every((x) => x === null || typeof x !== 'object'));
}

function stringify(v: unknown, indent: string): string | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    if (v.every((x) => x === null || typeof x !== 'object')) return `[${v.map((x) => JSON.stringify(x) ?? 'null').join(', ')}]`;
    return `[\n${v.map((x) => `${inner}${stringify(x, inner) ?? 'null'}`).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(v).flatMap(([k, x]) => {
    const s = stringify(x, inner);
    return s === undefined ? [] : [[k, s] as const];
  });
  if (entries.length === 0) return '{}';
  const flat = `{ ${entries.map(([k, s]) => `${JSON.stringify(k)}: ${s}`).join(', ')} }`;
  if (isPlain(v) && flat.length <= 160) return flat;
  return `{\n${entries.map(([k, s]) => `${inner}${JSON.stringify(k)}: ${s}`).join(',\n')}\n${indent}}`;
}

/**
 * report.json text: indented like JSON.stringify(r, null, 2), but small flat objects (an ROC point, a
 * fold) and arrays of numbers stay on one line, so the file reads and diffs well. Parses to the same value.
 */
export function stringifyReport(report: Report): string {
  return `${stringify(report, '')}\n`;
}

/** Throw FACEOPT_ERR_REPORT for `file` with a reason. */
function bad(file: string, reason: string, cause?: unknown): FaceoptError {
  return new FaceoptError('FACEOPT_ERR_REPORT', { path: file, reason }, cause === undefined ? undefined : { cause });
}

/**
 * Check that a parsed value is a Report this faceopt can read; returns it typed. `file` is only used in
 * error messages.
 */
export function validateReport(value: unknown, file = 'report.json'): Report {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(file, 'it is not a JSON object, so not a faceopt report');
  const v = value as Record<string, unknown>;
  if (v.schemaVersion === undefined) throw bad(file, 'it has no schemaVersion, so it is not a faceopt report');
  if (v.schemaVersion !== REPORT_SCHEMA_VERSION) {
    const by = typeof (v.provenance as { toolVersion?: unknown } | undefined)?.toolVersion === 'string' ? ` (it was written by faceopt ${(v.provenance as { toolVersion: string }).toolVersion})` : '';
    throw bad(file, `it has schema version ${JSON.stringify(v.schemaVersion)}${by}, but faceopt ${TOOL_VERSION} reads version ${REPORT_SCHEMA_VERSION}. Regenerate it with \`faceopt evaluate\`, or read it with the faceopt version that wrote it`);
  }
  try {
    reportSchema(value, '');
  } catch (e) {
    if (e instanceof SchemaError) throw bad(file, `${e.message} (see docs/report-schema.md)`, e);
    throw e;
  }
  return value as Report;
}

/** Floating-point slack of the gate comparisons (evaluate/gates.ts compares with the same). */
const GATE_SLACK = 1e-9;

/**
 * Why a report's recorded verdict contradicts its own checks, or null when it agrees: the verdict is
 * recomputed from the checks (it passes when no check failed; skipped checks do not fail it), each
 * check's status must follow from its measured value, comparator and threshold, and each threshold must
 * be the one `gates.thresholds` records. `faceopt promote` refuses a report for which this is not null
 * (a hand-edited `"pass": true`, or checks edited to pass), whatever --allow-failed says.
 */
export function gatesInconsistency(gates: Report['gates']): string | null {
  for (const c of gates.checks) {
    const [role, key] = c.id.split('.') as [string, string | undefined];
    const recorded = key === undefined ? undefined : (gates.thresholds as unknown as Record<string, Record<string, unknown> | undefined>)[role]?.[key];
    if (typeof recorded === 'number' && recorded !== c.threshold) {
      return `check ${c.id} compares with threshold ${c.threshold}, but gates.thresholds says ${recorded}`;
    }
    if (c.measured === null) {
      if (c.status === 'pass') return `check ${c.id} says pass but measured nothing`;
      continue;
    }
    const ok = c.comparator === '>=' ? c.measured >= c.threshold - GATE_SLACK : c.measured <= c.threshold + GATE_SLACK;
    if (c.status === 'skipped' || (c.status === 'pass') !== ok) {
      return `check ${c.id} says ${c.status} but its measured ${c.measured} is ${ok ? '' : 'not '}${c.comparator} ${c.threshold}`;
    }
  }
  const failed = gates.checks.filter((c) => c.status === 'fail').map((c) => c.id);
  if (gates.pass && failed.length) return `gates.pass is true but ${failed.length} of its ${gates.checks.length} checks failed (${failed.join(', ')})`;
  if (gates.pass && gates.reasons.length) return `gates.pass is true but it gives ${gates.reasons.length} reason(s) for failing`;
  if (!gates.pass && !failed.length) return 'gates.pass is false but no check failed';
  return null;
}

/**
 * Why a report contradicts itself, or null: its verdict and gate checks (gatesInconsistency), or its role
 * and the results it holds (a recognizer report relabelled "detector" by hand was promoted as the detector).
 */
export function reportInconsistency(r: Report): string | null {
  const gates = gatesInconsistency(r.gates);
  if (gates) return gates;
  const holds = r.recognizer ? 'recognizer' : r.detector ? 'detector' : null;
  if (r.recognizer && r.detector) return 'it holds both recognizer and detector results';
  if (r.role === 'generic' ? holds !== null : holds !== r.role) return `its role is ${r.role} but it holds ${holds ?? 'no'} results`;
  return null;
}

/** report.json inside `dirOrFile`, or `dirOrFile` itself when it names a .json file. */
export function reportJsonPath(dirOrFile: string): string {
  return dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, REPORT_FILES.json);
}

/**
 * Load and validate the report in a report folder (or a report.json path). Throws FACEOPT_ERR_REPORT
 * when it is missing, unreadable, not JSON, of another schema version or malformed.
 */
export async function loadReport(dir: string): Promise<Report> {
  const file = reportJsonPath(dir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw bad(file, code === 'ENOENT' ? 'the file does not exist. Run `faceopt evaluate` or `faceopt optimize` to create a report, or pass the right folder' : (e as Error).message, e);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw bad(file, `it is not valid JSON (${(e as Error).message}). Regenerate it with \`faceopt evaluate\``, e);
  }
  return validateReport(value, file);
}

/**
 * Write report.md, report.html and report.json (renamed last, so a folder with a report.json is complete)
 * into `dir`, all or nothing (writeFilesAtomic): a failed write leaves the earlier report as it was. The report is validated first: an invalid report is a bug and is never written.
 * Returns the three paths.
 */
export async function writeReport(dir: string, report: Report): Promise<{ json: string; md: string; html: string }> {
  try {
    reportSchema(report, '');
  } catch (e) {
    if (e instanceof SchemaError) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `the report to write does not match its schema: ${e.message}` }, { cause: e });
    throw e;
  }
  const out = { json: path.join(dir, REPORT_FILES.json), md: path.join(dir, REPORT_FILES.md), html: path.join(dir, REPORT_FILES.html) };
  // loaded here, not at the top: readers of reports (CLI summary, server) never pay for the chart library
  const [{ renderMarkdown }, { renderHtml }] = await Promise.all([import('./markdown.js'), import('./html.js')]);
  // all three or none: a disk that filled up part-way removed the earlier report with the new one's
  // remains (a report of this same file, whose calibration and float layers re-evaluation had kept)
  await writeFilesAtomic([[out.md, renderMarkdown(report)], [out.html, renderHtml(report)], [out.json, stringifyReport(report)]]);
  return out;
}

/**
 * The report folder under `root` (default: the reports folder) whose report.json was written last.
 * Throws FACEOPT_ERR_REPORT when there is none.
 */
export async function findNewestReport(root: string = reportsDir()): Promise<string> {
  let names: string[] = [];
  try {
    names = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch { /* a missing folder has no reports; reported below */ }
  let best: { dir: string; mtime: number } | null = null;
  for (const name of names) {
    const dir = path.join(root, name);
    try {
      const s = await stat(path.join(dir, REPORT_FILES.json));
      if (!best || s.mtimeMs > best.mtime || (s.mtimeMs === best.mtime && dir > best.dir)) best = { dir, mtime: s.mtimeMs };
    } catch { /* no report.json in this folder */ }
  }
  if (!best) throw bad(root, 'no report found there (looked for */report.json). Run `faceopt optimize` or `faceopt evaluate` first, or pass a report folder');
  return best.dir;
}

/**
 * Remove the report in `reportDir` unless it describes a variant with sha256 `sha` (report.json first, so
 * a folder is never left with a report.json and without its renderings). Returns whether one was removed.
 * Called before a run replaces the variant file: if the run then stops before its own report is written
 * (Ctrl-C, a failed evaluation), the folder no longer holds an earlier run's verdict that `faceopt report`
 * would print as this file's.
 */
export async function removeReportUnlessFor(reportDir: string, sha: string | (() => string | Promise<string>)): Promise<boolean> {
  const json = path.join(reportDir, REPORT_FILES.json);
  if (!existsSync(json)) return false;
  let describes: string | null = null;
  try {
    const v = (JSON.parse(await readFile(json, 'utf8')) as { variant?: { sha256?: unknown } }).variant?.sha256;
    describes = typeof v === 'string' ? v : null;
  } catch { /* unreadable: stale all the same */ }
  if (describes !== null && describes === (typeof sha === 'string' ? sha : await sha())) return false;
  await rm(json, { force: true });
  await Promise.all([REPORT_FILES.md, REPORT_FILES.html].map((f) => rm(path.join(reportDir, f), { force: true })));
  return true;
}
