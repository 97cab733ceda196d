/**
 * The serving manifest (`models/manifest.json`): the one contract between the pipeline and the server.
 * It names, per role, the model file a person promoted after reading its report: variant label, path,
 * sha256, size, the report it came from and that report's gates verdict. `faceopt promote` writes it
 * atomically; `faceopt serve` reads it, re-checks the file hash and refuses failed variants.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError } from '../pipeline/errors.js';
import { sha256File, writeFileAtomic } from '../pipeline/fsutil.js';
import { leavesDir, modelsDir } from '../pipeline/paths.js';
import { TOOL_VERSION } from '../pipeline/version.js';
import { reportInconsistency } from '../pipeline/report/io.js';
import { readReport, reportMatchThreshold } from './report.js';
import type { Report } from '../pipeline/report/types.js';

export const MANIFEST_SCHEMA_VERSION = 1;

export type ServedRole = 'detector' | 'recognizer';
export const ROLES: readonly ServedRole[] = ['detector', 'recognizer'];

/** The gates verdict copied from a report. */
export interface Verdict {
  pass: boolean;
  reasons: string[];
}

/** One promoted model. */
export interface ManifestEntry {
  /** Variant label from the report (`int8`, `fp32`, ...). */
  variant: string;
  /** Model file; relative paths are relative to the manifest's folder. */
  path: string;
  sha256: string;
  sizeBytes: number;
  /** report.json the verdict came from; null when the model was promoted without a report. */
  report: string | null;
  /** Null when promoted without a report (unverified). */
  verdict: Verdict | null;
  /** Recognizers: the cosine threshold the report measured; null otherwise. */
  matchThreshold: number | null;
  /**
   * Detectors: the [width, height] its report evaluated it at, which `faceopt serve` runs it at unless
   * `--det-size` says otherwise (absent in manifests written before 2026-12-07, and for other entries).
   */
  inputSize?: [number, number] | null;
  promotedAt: string;
}

export interface ServingManifest {
  schemaVersion: typeof MANIFEST_SCHEMA_VERSION;
  toolVersion: string;
  updatedAt: string;
  detector: ManifestEntry | null;
  recognizer: ManifestEntry | null;
}

/** Default manifest location: `<modelsDir>/manifest.json`. */
export function defaultManifestPath(): string {
  return path.join(modelsDir(), 'manifest.json');
}

function bad(file: string, reason: string): FaceoptError {
  return new FaceoptError('FACEOPT_ERR_MANIFEST', { path: file, reason });
}

function checkEntry(file: string, role: ServedRole, e: unknown): ManifestEntry | null {
  if (e === null || e === undefined) return null;
  const x = e as Record<string, unknown>;
  const str = (k: string) => { if (typeof x[k] !== 'string' || x[k] === '') throw bad(file, `${role}.${k} must be a non-empty string`); };
  str('variant'); str('path'); str('sha256'); str('promotedAt');
  if (typeof x.sizeBytes !== 'number') throw bad(file, `${role}.sizeBytes must be a number`);
  if (x.report !== null && typeof x.report !== 'string') throw bad(file, `${role}.report must be a string or null`);
  if (x.matchThreshold !== null && typeof x.matchThreshold !== 'number') throw bad(file, `${role}.matchThreshold must be a number or null`);
  const size = x.inputSize;
  if (size !== undefined && size !== null && !(Array.isArray(size) && size.length === 2 && size.every((d) => Number.isInteger(d) && d > 0))) throw bad(file, `${role}.inputSize must be [width, height] or null`);
  const v = x.verdict as Verdict | null;
  if (v !== null && (typeof v !== 'object' || typeof v.pass !== 'boolean' || !Array.isArray(v.reasons))) throw bad(file, `${role}.verdict must be {pass, reasons} or null`);
  return x as unknown as ManifestEntry;
}

/** Read and check a manifest; FACEOPT_ERR_FILE_NOT_FOUND when absent, FACEOPT_ERR_REPORT when malformed. */
export function readManifest(file: string = defaultManifestPath()): ServingManifest {
  if (!existsSync(file)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: file });
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw bad(file, `not JSON (${(e as Error).message})`);
  }
  if (json?.schemaVersion !== MANIFEST_SCHEMA_VERSION) throw bad(file, `schema version ${String(json?.schemaVersion)}, expected ${MANIFEST_SCHEMA_VERSION}`);
  return {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    toolVersion: String(json.toolVersion ?? ''),
    updatedAt: String(json.updatedAt ?? ''),
    detector: checkEntry(file, 'detector', json.detector),
    recognizer: checkEntry(file, 'recognizer', json.recognizer),
  };
}

/** Absolute path of an entry's model file. */
export function entryPath(manifestFile: string, entry: ManifestEntry): string {
  return path.resolve(path.dirname(path.resolve(manifestFile)), entry.path);
}

/** An entry's report.json (the manifest stores it relative to its folder), or null when promoted without a report. */
export function entryReportPath(manifestFile: string, entry: ManifestEntry): string | null {
  return entry.report === null ? null : entryPath(manifestFile, { ...entry, path: entry.report });
}

/**
 * The match threshold an entry is served with: its report's (`report`, read where it is here; it may have
 * been regenerated since promotion, so it is trusted over the copy), else the one recorded at promotion.
 */
export function entryMatchThreshold(entry: ManifestEntry, report: Report | null): number | null {
  return report ? reportMatchThreshold(report) : entry.matchThreshold;
}

/** Store paths relative to the manifest folder when the file lives under it (portable across mounts), else absolute. */
function storedPath(manifestFile: string, file: string): string {
  const rel = path.relative(path.dirname(path.resolve(manifestFile)), path.resolve(file));
  return leavesDir(rel) ? path.resolve(file) : rel;
}

/** Find a report's model file: absolute, relative to the working folder, or relative to the report folder. */
function locateVariantFile(reportJson: string, p: string): string {
  for (const candidate of [path.resolve(p), path.resolve(path.dirname(reportJson), p)]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: p });
}

/** A manifest entry for a model file promoted from its report. */
export async function entryFromReport(manifestFile: string, reportDir: string, allowFailed: boolean): Promise<{ role: ServedRole; entry: ManifestEntry; warnings: string[] }> {
  const { file, report } = await readReport(reportDir);
  if (report.role !== 'detector' && report.role !== 'recognizer') {
    throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path: report.variant.path, expected: 'detector or recognizer', actual: report.role });
  }
  // the recorded verdict is only trusted when the report's own checks agree with it
  const inconsistent = reportInconsistency(report);
  if (inconsistent) throw new FaceoptError('FACEOPT_ERR_REPORT', { path: file, reason: `it contradicts itself: ${inconsistent}. Evaluate the variant again (\`faceopt evaluate\`) and promote that report` });
  if (!report.gates.pass && !allowFailed) {
    throw new FaceoptError('FACEOPT_ERR_VARIANT_FAILED_GATES', {
      variant: report.variantName, file: path.basename(report.variant.path), report: file,
      failed: `failed: ${report.gates.checks.filter((c) => c.status === 'fail').map((c) => c.id).join(', ') || report.gates.reasons.length + ' reason(s)'}`,
      remedy: 'Promote another, or pass --allow-failed to promote it anyway (serve then needs --allow-failed too).',
    });
  }
  const model = locateVariantFile(file, report.variant.path);
  const sha = await sha256File(model);
  if (sha !== report.variant.sha256) {
    throw new FaceoptError('FACEOPT_ERR_CHECKSUM', { path: model, actual: sha, expected: `${report.variant.sha256} (the file the report evaluated)`, remedy: 'The file changed since the report evaluated it: evaluate it again (`faceopt evaluate`) and promote that report.' });
  }
  return {
    role: report.role,
    entry: {
      variant: report.variantName,
      path: storedPath(manifestFile, model),
      sha256: sha,
      sizeBytes: statSync(model).size,
      report: storedPath(manifestFile, file),
      verdict: { pass: report.gates.pass, reasons: [...report.gates.reasons] },
      matchThreshold: report.role === 'recognizer' ? reportMatchThreshold(report) : null,
      ...(report.role === 'detector' && report.detector ? { inputSize: [report.detector.inputSize[0], report.detector.inputSize[1]] as [number, number] } : {}),
      promotedAt: new Date().toISOString(),
    },
    warnings: [
      ...report.warnings,
      // /v1/verify then decides at 0.3, which no evaluation of this variant chose
      ...(report.role === 'recognizer' && reportMatchThreshold(report) === null ? ['the report has no LFW verification (no --pairs), so it records no match threshold: /v1/verify will decide at the default 0.3 unless serve is given --match-threshold'] : []),
    ],
  };
}

/** A manifest entry for a model file given directly (no report: verdict null, i.e. unverified). */
export async function entryFromFile(manifestFile: string, model: string, variant = 'unverified'): Promise<ManifestEntry> {
  const abs = path.resolve(model);
  return {
    variant,
    path: storedPath(manifestFile, abs),
    sha256: await sha256File(abs),
    sizeBytes: statSync(abs).size,
    report: null,
    verdict: null,
    matchThreshold: null,
    promotedAt: new Date().toISOString(),
  };
}

/** Merge promoted entries into the manifest (roles not promoted keep their entries) and write it atomically. */
export async function writeManifest(file: string, update: Partial<Record<ServedRole, ManifestEntry>>): Promise<ServingManifest> {
  const current: ServingManifest | null = existsSync(file) ? readManifest(file) : null;
  const next: ServingManifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    toolVersion: TOOL_VERSION,
    updatedAt: new Date().toISOString(),
    detector: update.detector ?? current?.detector ?? null,
    recognizer: update.recognizer ?? current?.recognizer ?? null,
  };
  await writeFileAtomic(file, `${JSON.stringify(next, null, 2)}\n`);
  return next;
}

/**
 * The detector that found the faces a promoted recognizer's report measured (its evaluationData.alignment),
 * or null: no report, a report that is not there or cannot be read, or one made before reports recorded it.
 */
export async function recognizerAlignment(manifestFile: string, entry: ManifestEntry | null): Promise<{ detector: string; sha256: string } | null> {
  const file = entry ? entryReportPath(manifestFile, entry) : null;
  if (!file) return null;
  try {
    const { report } = await readReport(file);
    const a = report.evaluationData.alignment;
    return a ? { detector: a.detector, sha256: a.detectorSha256 } : null;
  } catch {
    return null;
  }
}
