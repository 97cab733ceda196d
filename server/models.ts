/**
 * Which models the server serves, decided once at start, per role: a file given directly (`--detector`,
 * `--recognizer`) wins, then the serving manifest, then FACEOPT_DETECTOR/FACEOPT_RECOGNIZER. Manifest files are
 * re-hashed against the manifest, their reports re-read, and a variant whose report failed its gates is
 * refused unless allowFailed. The result also fixes the /v1/verify threshold and the cache namespace.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError } from '../pipeline/errors.js';
import { sha256, sha256File } from '../pipeline/fsutil.js';
import { checkDetSize } from '../pipeline/faces/det-size.js';
import { DETECTOR_ENV, RECOGNIZER_ENV } from '../pipeline/faces/models.js';
import { resolveModelArg } from '../pipeline/zoo/resolve.js';
import { DEFAULT_MATCH_THRESHOLD } from '../pipeline/faces/similarity.js';
import type { ServerConfig } from './config.js';
import { defaultManifestPath, entryMatchThreshold, entryPath, entryReportPath, readManifest, type ManifestEntry, type ServedRole, type Verdict } from './manifest.js';
import { readReport, reportKeyNumbers } from './report.js';
import { int8DotInstructions, int8SumsSaturate } from '../pipeline/cpu-features.js';
import type { Report } from '../pipeline/report/types.js';

/** One model being served and where it came from. */
export interface ServedModel {
  readonly role: ServedRole;
  readonly variant: string;
  readonly path: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  /** 'manifest' (promoted) or 'file' (given directly, unverified). */
  readonly source: 'manifest' | 'file';
  readonly report: string | null;
  readonly verdict: Verdict | null;
  readonly keyNumbers: { id: string; label: string; value: number | null; text: string }[] | null;
  readonly reportMatchThreshold: number | null;
  /** Why the report was not read (it is not where the manifest says: a container without the reports folder), or serves other than it says. */
  readonly reportNote?: string;
  /** Detectors promoted from a report: the [width, height] the report evaluated it at. */
  readonly evaluatedInputSize?: readonly [number, number];
}

export interface ServedModels {
  readonly detector: ServedModel;
  readonly recognizer: ServedModel;
  readonly matchThreshold: { readonly value: number; readonly source: 'flag' | 'report' | 'default' };
  /**
   * The detector's input size where no --det-size is given: the square size its report evaluated it at
   * (a detector passed at 320 found no face at the default 640); null: the detector's own default.
   */
  readonly detSize: number | null;
  /** Short hash of both model hashes: the cache namespace, so a new variant never sees old entries. */
  readonly id: string;
  readonly manifest: string | null;
}

async function fromFile(role: ServedRole, arg: string, from = `--${role}`): Promise<ServedModel> {
  const file = resolveModelArg(arg, { flag: from });
  return {
    role, variant: 'file', path: file, sha256: await sha256File(file), sizeBytes: statSync(file).size,
    source: 'file', report: null, verdict: null, keyNumbers: null, reportMatchThreshold: null,
  };
}

/**
 * A note where an int8 variant's accuracy was measured on a CPU that multiplies int8 otherwise than this
 * one: with VNNI there and without it here, onnxruntime's uint8 x int8 kernels add product pairs in a
 * saturating int16 here (full-range weights can overflow it), so the report's numbers may not hold.
 * Variants with 7-bit weights or fewer (`--reduce-range`) cannot saturate; reports without the field say nothing.
 */
export function int8HostNote(report: Pick<Report, 'variant' | 'provenance'>, here: string | null = int8DotInstructions()): string | null {
  const there = report.provenance.machine.int8Dot;
  if (!report.variant.precision.startsWith('int8') || !there || !here || there === here) return null;
  if (!int8SumsSaturate(here) || int8SumsSaturate(there)) return null;
  const bits = report.provenance.calibration?.config.weightBits;
  if (typeof bits === 'number' && bits <= 7) return null;
  return `its report measured this int8 model on a CPU with ${there}; this one has ${here}, where onnxruntime's int8 kernels can saturate, so its accuracy here may differ: evaluate it on this machine (faceopt evaluate), or serve a variant made with --reduce-range (docs/int8.md, "CPUs without VNNI")`;
}

async function fromManifest(role: ServedRole, manifestFile: string, entry: ManifestEntry, allowFailed: boolean): Promise<ServedModel> {
  const file = entryPath(manifestFile, entry);
  if (!existsSync(file)) throw new FaceoptError('FACEOPT_ERR_MODEL_MISSING', { path: file, pack: `(promoted ${role} ${entry.variant})` });
  const actual = await sha256File(file);
  if (actual !== entry.sha256) throw new FaceoptError('FACEOPT_ERR_CHECKSUM', { path: file, actual, expected: `${entry.sha256} (from ${manifestFile})`, remedy: entry.report === null
    ? `The file changed since it was promoted: promote it again (\`faceopt promote --${role} FILE\`).`
    : 'The file changed since it was promoted: evaluate it again (`faceopt evaluate`) and promote that report.' });
  let verdict = entry.verdict;
  let keyNumbers: ServedModel['keyNumbers'] = null;
  let threshold = entryMatchThreshold(entry, null);
  let inputSize = entry.inputSize ?? null;
  let reportPath = entryReportPath(manifestFile, entry);
  let reportNote: string | undefined;
  if (reportPath !== null) {
    if (existsSync(reportPath)) {
      const { report } = await readReport(reportPath); // the report may have been regenerated since promotion: trust it, not the copy
      verdict = { pass: report.gates.pass, reasons: [...report.gates.reasons] };
      keyNumbers = reportKeyNumbers(report);
      threshold = entryMatchThreshold(entry, report);
      if (report.role === 'detector' && report.detector) inputSize = [report.detector.inputSize[0], report.detector.inputSize[1]];
      reportNote = int8HostNote(report) ?? undefined;
    } else {
      // a container that mounts models/ but not the reports: the verdict and threshold the manifest
      // recorded at promotion still decide (promote stores the report's path as it was on the host)
      reportNote = `report ${reportPath} is not here: serving the verdict and match threshold the manifest recorded when it was promoted`;
      reportPath = null;
    }
  }
  if (verdict && !verdict.pass && !allowFailed) {
    throw new FaceoptError('FACEOPT_ERR_VARIANT_FAILED_GATES', {
      variant: `${role} ${entry.variant}`, file: path.basename(file), report: reportPath ?? manifestFile,
      failed: `${verdict.reasons.length} reason(s), the first: ${verdict.reasons[0] ?? 'none recorded'}`,
      // promote's --allow-failed records it; serving it is a second decision
      remedy: 'Promote another, or start serve with --allow-failed to serve it anyway.',
    });
  }
  return {
    role, variant: entry.variant, path: file, sha256: actual, sizeBytes: statSync(file).size,
    source: 'manifest', report: reportPath, verdict, keyNumbers, reportMatchThreshold: threshold, ...(reportNote ? { reportNote } : {}),
    ...(role === 'detector' && inputSize ? { evaluatedInputSize: inputSize } : {}),
  };
}

/**
 * The match threshold `faceopt serve` (serving from the manifest, without --recognizer) decides /v1/verify
 * with, without --match-threshold, for recognizer `file` when it is the recognizer the manifest promotes
 * (same bytes): its report's best LFW threshold, or the one the manifest recorded when the report is not
 * there. Null for any other file, without a manifest, or when neither has one. `faceopt compare` uses it so
 * both decide alike. A manifest that cannot be read, or a report that cannot, gives null and `warn` says why
 * (compare works without them; serve itself refuses such a manifest).
 */
export async function promotedMatchThreshold(file: string, manifestFile = defaultManifestPath(), warn: (line: string) => void = () => undefined): Promise<number | null> {
  if (!existsSync(manifestFile)) return null;
  let entry: ManifestEntry | null;
  try {
    entry = readManifest(manifestFile).recognizer;
  } catch (e) {
    warn(`${manifestFile} cannot be read (${(e as Error).message}): the default match threshold applies`);
    return null;
  }
  if (!entry || statSync(file).size !== entry.sizeBytes || (await sha256File(file)) !== entry.sha256) return null;
  const report = entryReportPath(manifestFile, entry);
  if (report && existsSync(report)) {
    try {
      return entryMatchThreshold(entry, (await readReport(report)).report); // as serve reads it
    } catch (e) {
      warn(`${report} cannot be read (${(e as Error).message}): the threshold the manifest recorded applies`);
    }
  }
  return entryMatchThreshold(entry, null);
}

/**
 * The size a promoted detector is served at without --det-size: the one its report evaluated it at (its
 * verdict holds for that size), square sizes only (serve's --det-size is N for NxN); a note where the
 * served size is not the evaluated one.
 */
function detSizeFromReport(detector: ServedModel, flag: number | null): { detSize: number | null; note: string | null } {
  const e = detector.evaluatedInputSize;
  if (!e) return { detSize: null, note: null };
  if (flag !== null) {
    return { detSize: null, note: e[0] === flag && e[1] === flag ? null : `serving the detector at ${flag}x${flag} (--det-size), but its report evaluated it at ${e.join('x')}: its verdict is for that size` };
  }
  if (e[0] !== e[1]) return { detSize: null, note: `its report evaluated the detector at ${e.join('x')}, which serve cannot take (square sizes only): serving it at its default size; pass --det-size` };
  return { detSize: e[0], note: null };
}

/**
 * Decide and check the models to serve. Errors: FACEOPT_ERR_BAD_ARGUMENT when nothing names a model
 * for a role, FACEOPT_ERR_CHECKSUM / FACEOPT_ERR_MODEL_MISSING for a manifest file that changed or
 * vanished, FACEOPT_ERR_VARIANT_FAILED_GATES for a failed variant without allowFailed. `faceopt compare
 * --manifest` loads what this picks, so it decides with the models and detector size serve would.
 */
export async function selectModels(config: Pick<ServerConfig, 'detector' | 'recognizer' | 'manifest' | 'allowFailed' | 'detSize' | 'matchThreshold'>): Promise<ServedModels> {
  const fromEnv: Record<ServedRole, string | undefined> = {
    detector: process.env[DETECTOR_ENV] || undefined,
    recognizer: process.env[RECOGNIZER_ENV] || undefined,
  };
  const manifestFile = config.manifest ?? defaultManifestPath();
  const needManifest = !config.detector || !config.recognizer;
  const manifest = needManifest && (config.manifest !== null || existsSync(manifestFile)) ? readManifest(manifestFile) : null;

  const pick = async (role: ServedRole): Promise<ServedModel> => {
    const flag = role === 'detector' ? config.detector : config.recognizer;
    if (flag) return fromFile(role, flag);
    const entry = manifest?.[role] ?? null;
    if (entry) return fromManifest(role, manifestFile, entry, config.allowFailed);
    const env = fromEnv[role];
    if (env) return fromFile(role, env, role === 'detector' ? DETECTOR_ENV : RECOGNIZER_ENV);
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: `a ${role}: --${role} FILE, the ${role === 'detector' ? DETECTOR_ENV : RECOGNIZER_ENV} variable, or a ${role} promoted into ${manifestFile} (\`faceopt promote REPORT_DIR\`)`,
      name: `--${role}`,
      received: 'nothing',
    });
  };
  let detector = await pick('detector');
  // a --det-size the detector cannot take fails here, before anything listens (it failed in model loading)
  if (config.detSize !== null) await checkDetSize(detector.path, config.detSize, '--det-size');
  const recognizer = await pick('recognizer');
  const { detSize, note } = detSizeFromReport(detector, config.detSize);
  if (note) detector = { ...detector, reportNote: detector.reportNote ? `${detector.reportNote}; ${note}` : note };
  if (detSize !== null) await checkDetSize(detector.path, detSize, `the input size the detector's report evaluated (${detSize}x${detSize})`);
  const matchThreshold = config.matchThreshold !== null
    ? { value: config.matchThreshold, source: 'flag' as const }
    : recognizer.reportMatchThreshold !== null
      ? { value: recognizer.reportMatchThreshold, source: 'report' as const }
      : { value: DEFAULT_MATCH_THRESHOLD, source: 'default' as const };
  return {
    detector, recognizer, matchThreshold, detSize,
    id: sha256(`${detector.sha256}:${recognizer.sha256}`).slice(0, 16),
    manifest: manifest ? manifestFile : null,
  };
}
