/**
 * The programmatic form of `faceopt evaluate`: two model files and the evaluation data in, a written
 * report folder out. It decides what `evaluateVariant` needs and cannot guess — the role (from the
 * reference graph), the photos it may use (never calibration photos; see split.ts), the aligning
 * detector for recognizers, the speed-run dims both graphs accept, the report folder name
 * (`reports/<model>.<variant>/`) — then runs the evaluation and writes report.json/md/html.
 * `optimize --tensorrt` calls it too (pipeline/tensorrt/report.ts), with the split it calibrated on.
 */
import path from 'node:path';
import { existsSync, realpathSync } from 'node:fs';
import { FaceoptError } from '../errors.js';
import type { CalibrationSplit } from '../calibrate/sources.js';
import type { Role } from '../faces/profile.js';
import { findDetectorFor } from '../optimize/detector-for.js';
import { reportsDir } from '../paths.js';
import { requireProvider, type Provider, type SessionOptions } from '../runtime.js';
import { loadReport, reportJsonPath, writeReport } from '../report/index.js';
import type { Provenance, Report, Sensitivity } from '../report/types.js';
import { readBoxAnnotations, readPairs } from './data.js';
import { checkWritableDir, requireFile } from '../fsutil.js';
import { evaluateVariant } from './evaluate.js';
import type { GateThresholds } from './gates.js';
import { checkRoleFlags, type RoleFlag } from './gate-options.js';
import { pairFacts, speedDims } from './model-facts.js';
import { evaluationSetWith, noEvaluationPhotos } from './split.js';

export interface EvaluateModelsOptions {
  /** Variant model file. */
  model: string;
  /** Float reference model file. */
  reference: string;
  /** Report label (`reports/<reference>.<variantName>/`); derived from the file names when absent. */
  variantName?: string;
  /** Precision label for the variant (default: read from its graph). */
  variantPrecision?: string;
  /** Force the role instead of recognising it from the reference graph. */
  role?: Role;
  facesDir?: string;
  pairsFile?: string;
  /** Role-only flags the user gave (gate-options.ts roleFlagsGiven): the other role's are refused. */
  roleFlags?: RoleFlag[];
  boxFiles?: string[];
  faceFree?: string[];
  /** Detector that aligns faces for a recognizer (default: a SCRFD model next to the reference). */
  detector?: string;
  /** The list the variant was calibrated on: its identities are never evaluated. */
  calibrationList?: string;
  /** Calibration size of the default split (no list), as given to optimize. */
  calibrationSize?: number;
  /** The split the caller calibrated on, when known (overrides list/size). */
  split?: CalibrationSplit | null;
  provider?: Provider;
  threads?: number;
  detSize?: number;
  gates?: GateThresholds;
  /** Report folder (default reports/<reference>.<variantName>). */
  reportDir?: string;
  /** Most held-apart photos without pairs (default 500 recognizers, 200 detectors). */
  maxImages?: number;
  /** Timed runs per model and batch size (default 20). */
  speedRuns?: number;
  calibration?: Provenance['calibration'];
  floatLayers?: Provenance['floatLayers'];
  sensitivity?: Sensitivity | null;
  warnings?: string[];
  command?: string | null;
  /** Adjust the report before it is written (e.g. notes of the caller). */
  amend?: (report: Report) => void;
  log?: (line: string) => void;
}

export interface EvaluateModelsResult {
  report: Report;
  reportDir: string;
}

const stem = (file: string) => path.basename(file).replace(/\.onnx$/i, '');

function samePath(a: string, b: string): boolean {
  try { return realpathSync(a) === realpathSync(b); } catch { return path.resolve(a) === path.resolve(b); }
}

/**
 * The variant label for a report folder: `int8` for `x.int8.onnx` against `x.onnx`, `self` when a
 * model is evaluated against itself, otherwise the variant's file name; folder-safe characters only.
 */
export function variantLabel(reference: string, variant: string): string {
  const r = stem(reference);
  const v = stem(variant);
  const label = samePath(reference, variant) ? 'self' : v.startsWith(`${r}.`) ? v.slice(r.length + 1) : v === r ? `${path.basename(path.dirname(path.resolve(variant)))}-${v}` : v;
  return label.replace(/[^A-Za-z0-9._-]+/g, '_') || 'variant';
}

/**
 * What only the run that made a variant knows (its calibration, the layers it kept float and why, the
 * sensitivity search, its command and warnings), from the report already in `reportDir` when that
 * report describes this same file (`variantSha256`, which the new report has computed already):
 * re-evaluating a variant then refreshes its numbers without dropping them. Null when there is no such report, it cannot be read, or
 * it describes another file.
 */
export async function earlierProvenance(reportDir: string, variantSha256: string): Promise<{ calibration: Provenance['calibration']; floatLayers: Provenance['floatLayers']; sensitivity: Sensitivity | null; madeBy: Provenance['madeBy'] } | null> {
  if (!existsSync(reportJsonPath(reportDir))) return null;
  let earlier: Report;
  try {
    earlier = await loadReport(reportDir);
  } catch {
    return null; // an unreadable report is replaced, as before
  }
  if (earlier.variant.sha256 !== variantSha256) return null;
  return { calibration: earlier.provenance.calibration, floatLayers: earlier.provenance.floatLayers, sensitivity: earlier.sensitivity, madeBy: earlier.provenance.madeBy ?? null };
}

/** Evaluate `model` against `reference` and write the report folder (see the module comment). */
export async function evaluateModels(o: EvaluateModelsOptions): Promise<EvaluateModelsResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  // a missing GPU stack is reported before any photo is decoded
  if (o.provider && o.provider !== 'cpu') requireProvider(o.provider);
  if (o.calibrationList && !o.facesDir) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: '--faces DIR (paths in --calibration-list are relative to it)', name: '--faces', received: 'nothing' });
  const facts = pairFacts(o.reference, o.model, o.role);
  const role = facts.role;
  checkRoleFlags(role, o.roleFlags ?? []); // before asking for what those settings need
  if (role === 'recognizer' && o.detSize !== undefined) {
    // read by nothing for a recognizer (its input is the aligned face; the aligning detector runs at its own size): accepted and ignored
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'no --det-size for a recognizer (it sizes a detector\'s input, or a model that is not a face model)', name: '--det-size', received: String(o.detSize) });
  }
  if (o.pairsFile && !o.facesDir) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: '--faces DIR (paths in --pairs are relative to it)', name: '--faces', received: 'nothing' });
  const same = (a: string, b: string) => { try { return realpathSync(a) === realpathSync(b); } catch { return false; } };
  const selfNote = same(o.model, o.reference) ? ['the variant is the reference file itself: every number compares the model with itself'] : [];
  const boxFiles = o.boxFiles ?? [];
  const faceFreeGiven = o.faceFree ?? [];
  // a missing folder read as "No calibration images found in DIR", and evaluate calibrates nothing
  if (o.facesDir && !existsSync(o.facesDir)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: o.facesDir });
  if (role === 'recognizer' && !o.facesDir) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a folder of face photos for a recognizer evaluation (--faces DIR, e.g. LFW with --pairs)', name: '--faces', received: 'nothing' });
  }
  if (role === 'detector' && !o.facesDir && !boxFiles.length && !faceFreeGiven.length) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'photos for a detector evaluation: --faces DIR, --boxes XML or --face-free IMAGE', name: '--faces', received: 'nothing' });
  }
  let detector: string | undefined;
  if (role === 'recognizer') {
    detector = o.detector ?? findDetectorFor(o.reference) ?? findDetectorFor(o.model);
    if (!detector) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a face detector to align evaluation faces (--detector FILE|PACK/FILE, or a SCRFD model next to the reference)', name: '--detector', received: 'nothing' });
  }

  const { set, annotated, faceFree, warnings: setWarnings } = evaluationSetWith({
    facesDir: o.facesDir, calibrationList: o.calibrationList, calibrationSize: o.calibrationSize, split: o.split,
    pairs: o.pairsFile && role === 'recognizer' ? { file: o.pairsFile, pairs: readPairs(o.pairsFile) } : null,
    maxImages: o.maxImages ?? (role === 'detector' ? 200 : 500),
    role, boxFiles, annotated: boxFiles.flatMap((f) => readBoxAnnotations(f)), faceFree: faceFreeGiven,
  });
  if (o.facesDir) {
    const none = noEvaluationPhotos({ facesDir: o.facesDir, heldApart: set.evalImages.length, calibration: set.calibration.length, pairs: set.pairs !== null, explicit: role === 'detector' ? annotated.length + faceFree.length : 0 });
    if (none) throw none;
  }
  const warnings = [...(o.warnings ?? []), ...selfNote, ...setWarnings];

  const variantName = o.variantName ?? variantLabel(o.reference, o.model);
  const reportDir = path.resolve(o.reportDir ?? path.join(reportsDir(), `${stem(o.reference)}.${variantName}`));
  // written at the end: a folder that cannot be made or written fails now, before the evaluation
  checkWritableDir(reportDir);
  for (const f of faceFreeGiven) requireFile(f);
  const { dims, dynamicBatch } = speedDims(facts.reference, facts.variant, o.detSize ?? 640);
  const session: SessionOptions | undefined = o.provider || o.threads ? { ...(o.provider ? { provider: o.provider } : {}), ...(o.threads ? { intraOpThreads: o.threads } : {}) } : undefined;
  log(`faceopt evaluate: ${stem(o.model)} (${facts.variant.precision}) vs ${stem(o.reference)} (${facts.reference.precision}), ${role}; ${set.split.description}`);

  const report = await evaluateVariant({
    role, reference: o.reference, variant: o.model, variantName,
    referencePrecision: facts.reference.precision, variantPrecision: o.variantPrecision ?? facts.variant.precision,
    detector, facesDir: o.facesDir,
    // recognizers evaluate the pairs' photos when there are pairs; detectors always the held-apart photos
    evalImages: set.evalImages, pairs: set.pairs,
    annotated, boxFiles, faceFree,
    inputDims: dims, dynamicBatch, detSize: o.detSize, session, gates: o.gates,
    split: set.split, calibration: o.calibration ?? null, floatLayers: o.floatLayers ?? facts.variant.floatLayers ?? undefined, sensitivity: o.sensitivity ?? null,
    warnings, command: o.command ?? null, speedRuns: o.speedRuns, log,
  });
  const earlier = o.calibration === undefined && o.floatLayers === undefined && o.sensitivity === undefined ? await earlierProvenance(reportDir, report.variant.sha256) : null;
  if (earlier) {
    log(`evaluate: ${reportJsonPath(reportDir)} describes this same file: its calibration, float layers, sensitivity${earlier.madeBy ? ' and the command that made it' : ''} are kept`);
    report.provenance.calibration = earlier.calibration;
    report.provenance.floatLayers = earlier.floatLayers;
    report.sensitivity = earlier.sensitivity;
    if (earlier.madeBy) {
      report.provenance.madeBy = earlier.madeBy;
      report.warnings.push(...earlier.madeBy.warnings.map((w) => `when the variant was made: ${w}`));
    }
  }
  o.amend?.(report);
  await writeReport(reportDir, report);
  return { report, reportDir };
}
