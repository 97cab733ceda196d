/**
 * One evaluation of a variant against its float reference, shared by `faceopt evaluate` and
 * `faceopt optimize`: role-specific accuracy (recognizer: per-face cosine + pairs; detector: detections
 * vs reference, ground truth and face-free photos), speed side by side, gates, and the Report object.
 */
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { statSync } from 'node:fs';
import { int8DotInstructions } from '../cpu-features.js';
import { sha256File } from '../fsutil.js';
import { externalDataFiles } from '../onnx/model.js';
import { TOOL_VERSION } from '../version.js';
import { RUNTIME_VERSION, type SessionOptions } from '../runtime.js';
import { evaluateGates, DEFAULT_GATES, type GateThresholds } from './gates.js';
import { UnreadablePhotos } from '../faces/decode.js';
import { alignCentralFaces, evaluateRecognizer } from './recognizer-eval.js';
import { DEFAULT_SCORE_THRESHOLD } from '../faces/scrfd.js';
import { evaluateDetector } from './detector-eval.js';
import { measureSpeed, notFasterWarning, SPEED_RUNS } from './speed.js';
import type { AnnotatedImage, PairList } from './data.js';
import { REPORT_SCHEMA_VERSION, type EvaluationData, type ModelFile, type ModelRole, type Provenance, type Report, type Sensitivity } from '../report/types.js';

export interface EvaluateInput {
  role: ModelRole;
  reference: string;
  variant: string;
  variantName: string;
  referencePrecision?: string;
  variantPrecision: string;
  /** Detector used to find and align faces for a recognizer evaluation. */
  detector?: string;
  facesDir?: string;
  /** Relative (to facesDir) evaluation photos: held-apart images. */
  evalImages?: readonly string[];
  pairs?: PairList | null;
  annotated?: readonly AnnotatedImage[];
  boxFiles?: readonly string[];
  faceFree?: readonly string[];
  /** Input dims at batch 1 for speed runs. */
  inputDims: number[];
  dynamicBatch: boolean;
  detSize?: number;
  session?: SessionOptions;
  gates?: GateThresholds;
  split: EvaluationData['split'];
  calibration?: Provenance['calibration'];
  floatLayers?: Provenance['floatLayers'];
  sensitivity?: Sensitivity | null;
  warnings?: string[];
  command?: string | null;
  speedRuns?: number;
  log?: (line: string) => void;
}

/** Describe a model file by content. */
export async function modelFile(file: string, precision: string): Promise<ModelFile> {
  return { name: path.basename(file).replace(/\.onnx$/i, ''), path: path.resolve(file), sha256: await sha256File(file), sizeBytes: statSync(file).size + externalDataFiles(file).reduce((n, f) => n + statSync(f).size, 0), precision };
}

/** Machine facts for provenance. */
export function machineInfo(): Provenance['machine'] {
  const c = cpus();
  const int8Dot = int8DotInstructions();
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown', cores: c.length, totalMemoryBytes: totalmem(), ...(int8Dot ? { int8Dot } : {}),
    platform: process.platform, arch: process.arch, nodeVersion: process.version, onnxruntimeVersion: RUNTIME_VERSION,
  };
}

/** Evaluate and assemble the Report (not written; see pipeline/report). */
export async function evaluateVariant(o: EvaluateInput): Promise<Report> {
  const log = o.log ?? (() => undefined);
  const warnings = [...(o.warnings ?? [])];
  let recognizer: Report['recognizer'] = null;
  let detector: Report['detector'] = null;
  if (o.role === 'recognizer' && o.detector && o.facesDir) {
    const pairImages = o.pairs ? [...new Set(o.pairs.pairs.flatMap((p) => [p.left, p.right]))] : [];
    const images = pairImages.length ? pairImages : [...(o.evalImages ?? [])];
    log(`evaluate: aligning faces in ${images.length} photos`);
    let last = 0;
    const unreadable = new UnreadablePhotos();
    const aligned = await alignCentralFaces(o.detector, o.facesDir, images, {
      session: o.session,
      onUnreadable: unreadable.onUnreadable,
      onProgress: (d, t) => { if (d - last >= 250 || d === t) { last = d; log(`  aligned ${d}/${t}`); } },
    });
    const unreadableNote = unreadable.warning('evaluation', images.length);
    if (unreadableNote) warnings.push(unreadableNote);
    if (aligned.imagesWithoutFace.length) warnings.push(`${aligned.imagesWithoutFace.length} of ${images.length} evaluation photos had no face (skipped for both models)`);
    log('evaluate: embedding with reference and variant');
    const r = await evaluateRecognizer({
      reference: o.reference, variant: o.variant, aligned, pairs: o.pairs ?? null, session: o.session,
      onProgress: (model, d, t) => { if (d % 512 === 0 || d === t) log(`  embedded ${d}/${t} with the ${model}`); },
    });
    recognizer = { cosine: r.cosine, verification: r.verification };
  } else if (o.role === 'recognizer') {
    warnings.push('no faces folder or detector given: recognizer accuracy not measured');
  }
  if (o.role === 'detector') {
    const imgs = (o.evalImages ?? []).map((p) => (o.facesDir ? path.join(o.facesDir, p) : p));
    log(`evaluate: detecting in ${imgs.length + (o.annotated?.length ?? 0) + (o.faceFree?.length ?? 0)} photos with both detectors`);
    const facesDir = o.facesDir;
    const unreadable = new UnreadablePhotos(facesDir ? (image) => path.relative(facesDir, image) : undefined);
    detector = await evaluateDetector({
      reference: o.reference, variant: o.variant, images: imgs, annotated: o.annotated, boxFiles: o.boxFiles,
      faceFree: o.faceFree, detSize: o.detSize, session: o.session,
      onUnreadable: unreadable.onUnreadable,
      onProgress: (d, t) => { if (d % 250 === 0 || d === t) log(`  detected ${d}/${t}`); },
    });
    const unreadableNote = unreadable.warning('evaluation', imgs.length);
    if (unreadableNote) warnings.push(unreadableNote);
  }
  if (o.role === 'generic') warnings.push('not a face model faceopt recognises: face-specific evaluation unavailable (speed and size only)');
  log('evaluate: timing both models side by side');
  const speed = await measureSpeed({ reference: o.reference, variant: o.variant, dims: o.inputDims, batch8: o.dynamicBatch, runs: o.speedRuns ?? SPEED_RUNS, session: o.session });
  const reference = await modelFile(o.reference, o.referencePrecision ?? 'fp32');
  const variant = await modelFile(o.variant, o.variantPrecision);
  const notFaster = notFasterWarning(speed, variant.sizeBytes / Math.max(1, reference.sizeBytes));
  if (notFaster) warnings.push(notFaster);
  const gates = evaluateGates({
    role: o.role,
    recognizer: recognizer ? { cosine: recognizer.cosine, verification: recognizer.verification } : null,
    detector: detector ? { vsReference: detector.vsReference } : null,
  }, o.gates ?? DEFAULT_GATES);
  const evaluationData: EvaluationData = {
    facesSource: o.facesDir ?? null,
    pairsFile: o.pairs?.file ?? null,
    boxFiles: [...(o.boxFiles ?? [])],
    split: o.split,
    ...(recognizer && o.detector ? { alignment: {
      detector: path.resolve(o.detector), detectorSha256: await sha256File(o.detector), scoreThreshold: DEFAULT_SCORE_THRESHOLD,
      face: 'per photo the detected face nearest its centre, aligned by its 5 keypoints to the ArcFace 112x112 template; the same crop goes to both models (photos with no face are left out for both)',
    } } : {}),
  };
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    role: o.role,
    variantName: o.variantName,
    reference,
    variant,
    sizeRatio: variant.sizeBytes / reference.sizeBytes,
    provenance: {
      toolVersion: TOOL_VERSION,
      createdAt: new Date().toISOString(),
      command: o.command ?? null,
      machine: machineInfo(),
      calibration: o.calibration ?? null,
      floatLayers: o.floatLayers ?? [],
    },
    evaluationData,
    recognizer,
    detector,
    speed,
    sensitivity: o.sensitivity ?? null,
    gates,
    warnings,
  };
}
