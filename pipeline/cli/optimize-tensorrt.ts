/**
 * `faceopt optimize --tensorrt`: argv -> options -> `writeTensorrtBundle`. The lead's `optimize`
 * command calls `runTensorrtFromCli`; `tensorrtCommandOptions`/`addTensorrtOptions` are the
 * TensorRT-only flags it can add; `runTensorrt` is the programmatic entry (model path in, bundle out):
 * load, refuse quantized input, recognise the role, upgrade + fold BatchNorm (PRelu kept: TensorRT
 * has a native PReLU layer), calibrate on face photos or reuse a stats file, write the bundle, then
 * evaluate the bundle's graph on CPU against the source on held-apart faces with the same gates as
 * `--int8` (pipeline/tensorrt/report.ts) and exit non-zero when they fail.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { activationTensors, collectActivationStats, sampleCount, type InputBatch } from '../calibrate/run.js';
import { checkMethod, resolveSettings, type CalibrationMethod, type TensorStats } from '../calibrate/collectors.js';
import { detectorBatches, recognizerBatches } from '../calibrate/sources.js';
import { carryExclusions, checkExclusions, replacementsOf } from '../quantize/exclusions.js';
import { createStats, hashImageList, loadStats, rechooseRanges, saveStats, statsHash, type CalibrationStats } from '../calibrate/stats.js';
import type { EvaluateModelsResult } from '../evaluate/evaluate-models.js';
import { checkRoleFlags, gateThresholdsFromOptions, roleFlagsGiven, type RoleFlag } from '../evaluate/gate-options.js';
import { readEvaluationInputs } from '../evaluate/data.js';
import { checkedCalibrationSplit } from '../evaluate/split.js';
import type { GateThresholds } from '../evaluate/gates.js';
import { FaceoptError, checkNumber } from '../errors.js';
import { UnreadablePhotos } from '../faces/decode.js';
import { summarizeModel as graphSummary } from '../faces/graph-summary.js';
import { checkOptimizeDetSize } from '../faces/det-size.js';
import { detectProfile, guessRole, type ModelProfile } from '../faces/profile.js';
import { checkWritableDir, sha256 } from '../fsutil.js';
import { lockOutputs } from '../output-lock.js';
import { findDetectorFor } from '../optimize/detector-for.js';
import { checkBundleOut, withReleases } from '../optimize/outputs.js';
import { modelsDir, reportsDir } from '../paths.js';
import { loadFloatSource } from '../optimize/source.js';
import { prepareFloatGraph, type FloatRewriteOptions } from '../quantize/index.js';
import { searchTarget, TARGET_MARGIN } from '../quantize/mixed.js';
import type { Precision } from '../tensorrt/build-script.js';
import { bundleName, checkProfileInputName, writeTensorrtBundle, type BatchProfile, type TensorrtPlan } from '../tensorrt/plan.js';
import { engineStatus, evaluatedGraph, evaluateTensorrtBundle } from '../tensorrt/report.js';
import { removeReportUnlessFor } from '../report/io.js';
import { terminalSummary } from '../report/summary.js';
import type { Provenance } from '../report/types.js';
import { resolveModelArg } from '../zoo/resolve.js';

/** Float rewrites before a TensorRT plan: fold BN (exact), keep PRelu (TensorRT runs it natively). */
export const TENSORRT_REWRITES: Readonly<FloatRewriteOptions> = Object.freeze({ foldBatchNorm: true, preConvPaddedBatchNorm: false, prelu: 'keep' });

/** The TensorRT-only flags, for `optimize` to add (commander `.option(flags, description, default)`). */
export const tensorrtCommandOptions: readonly { flags: string; description: string; defaultValue?: string }[] = [
  { flags: '--precision <precision>', description: 'TensorRT precision: int8 (symmetric Q/DQ) | fp16 | fp32', defaultValue: 'int8' },
  { flags: '--batch <min:opt:max>', description: '--tensorrt: recognizer batch profile, e.g. 1:8:32 (detectors: batch 1)' },
  { flags: '--workspace <MiB>', description: 'TensorRT builder workspace in MiB', defaultValue: '4096' },
  { flags: '--opt-level <0-5>', description: 'TensorRT builder optimization level', defaultValue: '3' },
  { flags: '--instances <n>', description: 'Triton model instances per GPU', defaultValue: '1' },
  { flags: '--queue-delay-us <n>', description: 'Triton dynamic batching max queue delay (µs)', defaultValue: '2000' },
  { flags: '--role <role>', description: '--tensorrt: detector | recognizer (default: recognised from the graph)' },
];

/** Add the TensorRT-only flags to a command (skipping any it already defines). */
export function addTensorrtOptions(cmd: Command): Command {
  const have = new Set(cmd.options.map((o) => o.long));
  for (const o of tensorrtCommandOptions) {
    const long = o.flags.split(/[ ,]/)[0];
    if (!have.has(long)) cmd.option(o.flags, o.description, o.defaultValue);
  }
  return cmd;
}

/** "1:8:32" -> {1, 8, 32}; "16" -> {1, 16, 16}. */
export function parseBatch(v: string): BatchProfile {
  const parts = v.split(':').map((s) => s.trim());
  const nums = parts.map((p) => checkNumber('--batch', p, { min: 1, max: 4096, integer: true }));
  if (nums.length === 1) return { min: 1, opt: nums[0]!, max: nums[0]! };
  if (nums.length !== 3) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: '--batch', expected: 'MIN:OPT:MAX (e.g. 1:8:32) or one number', received: v });
  return { min: nums[0]!, opt: nums[1]!, max: nums[2]! };
}

/** "640x480" -> [640, 480]; "640" -> [640, 640]. */
export function parseDetSize(v: string | number): [number, number] {
  const m = /^\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*$/.exec(String(v));
  if (!m) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: '--det-size', expected: 'WxH (e.g. 640x640) or one number', received: String(v) });
  const w = checkNumber('--det-size width', m[1], { min: 32, max: 4096, integer: true });
  const h = m[2] ? checkNumber('--det-size height', m[2], { min: 32, max: 4096, integer: true }) : w;
  return [w, h];
}

export interface RunTensorrtOptions {
  /** Model path or PACK/FILE. */
  model: string;
  /** Role-only evaluation flags the user gave (gate-options.ts): the other role's are refused before any work. */
  roleFlags?: RoleFlag[];
  precision?: Precision;
  batch?: string | BatchProfile;
  detSize?: string | number | readonly [number, number];
  /** Bundle folder (default models/<name>.trt). */
  out?: string;
  /** Calibration stats: reused when the file exists, else written there after calibrating. */
  stats?: string;
  facesDir?: string;
  calibrationList?: string;
  calibrationSize?: number;
  method?: CalibrationMethod;
  detector?: string;
  role?: 'detector' | 'recognizer';
  workspaceMiB?: number;
  optimizationLevel?: number;
  instances?: number;
  queueDelayUs?: number;
  exclude?: string[];
  threads?: number;
  /** Mixed precision: output cosine to reach on the held-apart slice, and most layers kept float. */
  targetCosine?: number;
  /** Added to the target for the search on the small held-apart slice (default TARGET_MARGIN, as --int8). */
  targetMargin?: number;
  maxFloatLayers?: number;
  /** Accuracy report of the bundle's graph (default true; skipped with a warning without photos). */
  evaluate?: boolean;
  /** Same/different pairs (relative to facesDir) for verification accuracy. */
  pairsFile?: string;
  /** dlib XML face boxes and face-free photos for detector evaluation. */
  boxFiles?: string[];
  faceFree?: string[];
  gates?: GateThresholds;
  /** Report folder (default reports/<name>.tensorrt-<precision>). */
  reportDir?: string;
  command?: string;
  log?: (line: string) => void;
}

export type TensorrtRun = TensorrtPlan & { dir: string; evaluation: EvaluateModelsResult | null };

/** Write a TensorRT bundle for a model file (see the module comment). */
export async function runTensorrt(opts: RunTensorrtOptions): Promise<TensorrtRun> {
  // the bundle and report folders are this run's until it ends (lockOutputs), however it ends
  return withReleases((release) => runTensorrtLocked(opts, release));
}

async function runTensorrtLocked(opts: RunTensorrtOptions, release: (() => void)[]): Promise<TensorrtRun> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const file = resolveModelArg(opts.model, { flag: '--model' });
  const source = await loadFloatSource(file);
  // unnamed nodes get the names the prepared copy gives them (by position), so --exclude can name them
  source.graph.nameNodes();
  const precision = (opts.precision ?? 'int8') as Precision;
  if (!['int8', 'fp16', 'fp32'].includes(precision)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: '--precision', expected: 'int8, fp16 or fp32', received: String(precision) });
  const gs = graphSummary(source.proto);
  let profile: ModelProfile | null = null;
  if (guessRole(gs) || opts.role) profile = detectProfile(gs, opts.role ? { role: opts.role } : {}, undefined, file);
  if (!profile) throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path: file, expected: 'face detector or recognizer', actual: 'neither' });
  const role = profile.role;
  checkRoleFlags(role, opts.roleFlags ?? [], 'optimize --tensorrt');
  checkProfileInputName(source.graph.inputs[0]?.name ?? '', role); // before calibration, not after it
  const name = bundleName(source);
  const detSize = opts.detSize === undefined ? undefined : Array.isArray(opts.detSize) ? opts.detSize as [number, number] : parseDetSize(opts.detSize as string | number);
  checkOptimizeDetSize(profile, detSize); // a fixed detector's plan at another size failed only at the engine build
  const batch = opts.batch === undefined ? undefined : typeof opts.batch === 'string' ? parseBatch(opts.batch) : opts.batch;

  checkExclusions(source.graph, opts.exclude ?? [], file);

  const prepared = source.clone();
  const prep = prepareFloatGraph(prepared, TENSORRT_REWRITES, 13);
  log(`faceopt: ${name}: ${role}, opset ${prep.opset.from} -> ${prep.opset.to}, ${prep.batchNorm.length} BatchNorm folded; TensorRT ${precision}`);
  const warnings: string[] = [];
  const carried = carryExclusions(source.graph, prepared.graph, opts.exclude ?? [], replacementsOf(prep));
  for (const note of carried.notes) {
    warnings.push(note);
    log(`warning: ${note}`);
  }
  // a malformed --pairs or --boxes file fails now, not after calibration (the evaluation reads them again)
  if (opts.evaluate !== false) readEvaluationInputs(opts);
  const outDir = path.resolve(opts.out ?? path.join(modelsDir(), `${name}.trt`));
  // named after the bundle folder: models/<name>.trt -> reports/<name>.tensorrt-<precision>
  const reportDir = path.resolve(opts.reportDir ?? path.join(reportsDir(), `${path.basename(outDir).replace(/\.trt$/i, '')}.tensorrt-${precision}`));
  // the bundle's folder can be made (it is written next to it and renamed into place), and the report's
  checkWritableDir(path.dirname(outDir));
  if (opts.evaluate !== false) checkWritableDir(reportDir);
  checkBundleOut(outDir, file);
  release.push(lockOutputs([{ path: outDir, flag: '--out' }, { path: reportDir, flag: opts.reportDir ? '--report-dir' : 'the report folder (named after --out; --report-dir chooses another)' }]));

  let stats: Record<string, TensorStats> | undefined;
  let calibration: CalibrationStats | undefined;
  let rechosen = false;
  let slice: InputBatch[] = [];
  const facesDir = opts.facesDir;
  // one split for calibration and evaluation: evaluation photos are the other identities
  const split = checkedCalibrationSplit({
    facesDir, calibrationList: opts.calibrationList, calibrationSize: opts.calibrationSize, statsFile: opts.stats,
    evaluate: opts.evaluate !== false, pairs: opts.pairsFile !== undefined, explicit: role === 'detector' ? (opts.boxFiles?.length ?? 0) + (opts.faceFree?.length ?? 0) : 0,
    warn: (few) => {
      warnings.push(few);
      log(`warning: ${few}`);
    },
  });
  // calibration runs the prepared graph (a fixed-size detector only takes its own size); the accuracy
  // slice runs the bundle's graphs, at --det-size
  // photos that cannot be read are left out of calibration and listed once (as --int8 does)
  const unreadable = new UnreadablePhotos();
  const { onUnreadable } = unreadable;
  const batches = (images: readonly string[], forSlice = false): AsyncIterable<InputBatch> => {
    if (profile!.role === 'recognizer') {
      const detector = opts.detector ? resolveModelArg(opts.detector, { flag: '--detector' }) : findDetectorFor(file);
      if (!detector) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: '--detector', expected: 'a face detector to align calibration faces (or a SCRFD model next to the recognizer)', received: 'nothing' });
      // a recognizer exported with a fixed batch takes its faces that many at a time (batches of 16 failed)
      return recognizerBatches({ facesDir: facesDir!, images, detector, profile: profile!, ...(profile!.batch ? { batch: profile!.batch, exact: true } : {}), onUnreadable });
    }
    const size = forSlice ? detSize ?? profile!.inputSize ?? [640, 640] : profile!.inputSize ?? detSize ?? [640, 640];
    // mosaics of 1, 4 and 16 photos, as --int8 (calibrate/sources.ts DETECTOR_MOSAIC)
    return detectorBatches({ facesDir: facesDir!, images, profile: profile!, detSize: size, onUnreadable });
  };
  // the last images of the calibration split are held apart as the accuracy slice (as --int8 does)
  const holdSlice = (images: readonly string[]) => {
    const n = images.length >= 32 ? Math.min(32, Math.max(8, Math.floor(images.length / 10))) : 0;
    return { statsImages: images.slice(0, images.length - n), sliceImages: images.slice(images.length - n) };
  };
  if (precision === 'int8') {
    const preparedSha = sha256(prepared.toBytes());
    if (opts.stats && existsSync(opts.stats)) {
      // made from these calibration photos (the same images, before the held-apart slice), for this graph
      const statsImages = split ? holdSlice(split.calibration).statsImages : null;
      calibration = await loadStats(opts.stats, {
        modelSha256: preparedSha,
        ...(statsImages ? { source: { images: statsImages.length, listSha256: hashImageList(statsImages) } } : {}),
        tensors: activationTensors(prepared),
        ...(opts.method ? { method: opts.method } : {}),
      });
      // an asked --method re-chooses the ranges from the file's histograms, as --int8 does
      if (opts.method && opts.method !== calibration.method) {
        const method = opts.method;
        log(`calibration: ranges re-chosen by ${method} from the histograms of ${opts.stats} (collected as ${calibration.method})`);
        calibration = rechooseRanges(calibration, method);
        rechosen = true;
      }
      stats = calibration.tensors;
      log(`calibration: reusing ${opts.stats} (${Object.keys(stats).length} tensors)`);
      if (split) {
        const { sliceImages } = holdSlice(split.calibration);
        if (sliceImages.length) for await (const b of batches(sliceImages, true)) slice.push(b);
      }
    } else if (facesDir && split) {
      // detectors: min/max ranges, as --int8. Measured on scrfd_500m (LFW calibration list, 2026-12-05):
      // percentile clipped the heads' inputs and moved group-photo face scores by -0.014 on average
      // (worst -0.064), 222 of 227 faces found at the 0.99 target and 226 at 0.998; min/max on mosaic
      // frames: +0.002 (-0.017 to +0.015), 226 of 227 (the miss scored 0.502 in FP32), 4 layers float
      const method = opts.method ?? (profile!.role === 'detector' ? 'minmax' : 'percentile');
      const images = split.calibration;
      const { statsImages, sliceImages } = holdSlice(images);
      log(`calibration: ${statsImages.length} images (${split.description}; ${sliceImages.length} held apart as the accuracy slice), method ${method}`);
      const tensors = await collectActivationStats(prepared, batches(statsImages), { method, threads: opts.threads });
      stats = tensors;
      // under 32 calibration images nothing is held apart (and an empty slice read as "no face found")
      if (sliceImages.length) for await (const b of batches(sliceImages, true)) slice.push(b);
      else log(`warning: ${images.length} calibration images are too few to hold 8 apart for the accuracy search (32 or more): every layer is int8 unless --exclude says otherwise`);
      calibration = createStats({
        modelSha256: preparedSha, method, settings: resolveSettings(), tensors,
        source: { description: split.description, images: statsImages.length, listSha256: hashImageList(statsImages) },
      });
      if (opts.stats) await saveStats(opts.stats, calibration);
    } else {
      throw new FaceoptError('FACEOPT_ERR_NO_CALIBRATION_DATA', { source: 'the command line (int8 needs --faces DIR with photos, or --stats FILE from an earlier calibration)' });
    }
  }
  const unreadableNote = unreadable.warning('calibration');
  if (unreadableNote) log(`warning: ${unreadableNote}`);
  let staleReport = false;
  const plan = await writeTensorrtBundle({
    model: prepared, stats, outDir, precision, role, batch, detSize, name,
    workspaceMiB: opts.workspaceMiB, optimizationLevel: opts.optimizationLevel, instances: opts.instances,
    maxQueueDelayMicroseconds: opts.queueDelayUs, exclude: carried.exclude,
    source: { path: file }, log,
    accuracy: slice.length ? { slice, target: searchTarget(role, opts, `${sampleCount(slice)}-input slice`, log).aimed, maxFloat: opts.maxFloatLayers } : undefined,
    // the report of an earlier run in the report folder describes the bundle about to be replaced: removed
    // (unless it describes the new graph's bytes) before the swap, so a run that does not evaluate
    // (--no-evaluate, no photos, a graph that cannot run on CPU) or stops before its report is written
    // (Ctrl-C, a failed evaluation) does not leave that verdict beside the new bundle
    beforeSwap: async (p) => {
      const graph = evaluatedGraph({ ...p, dir: outDir });
      staleReport = await removeReportUnlessFor(reportDir, 'file' in graph ? p.files[path.basename(graph.file)]?.sha256 ?? '' : '');
    },
  });
  const acc = plan.quantization?.accuracy;
  log(`wrote ${plan.dir}: ${Object.keys(plan.files).length} files${plan.quantization ? `, ${plan.quantization.activations} activations + ${plan.quantization.weights} weights quantized, ${plan.quantization.keptFloat.length} layer(s) float` : ''}${acc ? `; output cosine ${acc.cosine.toFixed(5)} on ${acc.samples} held-apart inputs` : ''}; build with ${path.join(plan.dir, 'build.sh')}`);
  const evaluation = opts.evaluate === false ? null : await evaluateTensorrtBundle({
    plan, source: file, facesDir, split, calibrationList: opts.calibrationList,
    pairsFile: opts.pairsFile, boxFiles: opts.boxFiles, faceFree: opts.faceFree,
    detector: opts.detector ? resolveModelArg(opts.detector, { flag: '--detector' }) : undefined,
    gates: opts.gates, reportDir, threads: opts.threads,
    calibration: calibration ? calibrationProvenance(calibration, opts, precision, rechosen) : null,
    command: opts.command ?? null, log, warnings,
  });
  // without a report nothing said the plan was only written (the report carries the engine note)
  if (!evaluation) log(`note: no TensorRT engine was built or timed here (${engineStatus()}); build and time one with ${path.join(plan.dir, 'build.sh')} --time on a machine with an NVIDIA GPU and TensorRT`);
  if (staleReport && !evaluation) log(`report: removed the report of an earlier run from ${reportDir} (it described another bundle; this run did not evaluate: run \`faceopt evaluate\` for a new one)`);
  return { ...plan, evaluation };
}

/** The report's calibration provenance for a TensorRT plan (symmetric int8, TensorRT placement). */
function calibrationProvenance(stats: CalibrationStats, o: RunTensorrtOptions, precision: Precision, rechosen: boolean): Provenance['calibration'] {
  return {
    method: stats.method, images: stats.source.images,
    config: {
      method: stats.method, percentile: stats.settings.percentile, bins: stats.settings.bins, precision,
      placement: 'tensorrt', activationType: 'int8', symmetric: true, perChannel: true,
      exclude: (o.exclude ?? []).join(',') || null, calibrationList: o.calibrationList ?? null, calibrationSize: o.calibrationSize ?? null,
      targetCosine: o.targetCosine ?? null, targetMargin: o.targetMargin ?? TARGET_MARGIN, maxFloatLayers: o.maxFloatLayers ?? null,
    },
    // re-chosen ranges are not that file's bytes: no path, rather than one the sha256 does not describe
    statsPath: o.stats && !rechosen ? path.resolve(o.stats) : null,
    statsSha256: statsHash(stats),
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

/**
 * Map `optimize --tensorrt`'s commander flags to `runTensorrt`; prints the bundle folder, then the
 * report summary, and throws FACEOPT_ERR_GATE_FAILED (exit 3) when the bundle graph fails its gates.
 */
export async function runTensorrtFromCli(model: string, flags: Record<string, unknown>): Promise<void> {
  const num = (k: string, name: string, min: number, max: number) => (str(flags[k]) !== undefined ? checkNumber(name, str(flags[k]), { min, max, integer: true }) : undefined);
  const role = str(flags.role);
  if (role && role !== 'detector' && role !== 'recognizer') throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: '--role', expected: 'detector or recognizer', received: role });
  const plan = await runTensorrt({
    model,
    precision: (str(flags.precision) ?? 'int8') as Precision,
    batch: str(flags.batch),
    detSize: str(flags.detSize),
    out: str(flags.out),
    stats: str(flags.stats),
    facesDir: str(flags.faces) ? path.resolve(str(flags.faces)!) : undefined,
    calibrationList: str(flags.calibrationList),
    calibrationSize: num('calibrationSize', '--calibration-size', 1, 100000),
    method: str(flags.method) ? checkMethod(str(flags.method)!) : undefined,
    detector: str(flags.detector),
    role: role as RunTensorrtOptions['role'],
    workspaceMiB: num('workspace', '--workspace', 64, 1 << 20),
    optimizationLevel: num('optLevel', '--opt-level', 0, 5),
    instances: num('instances', '--instances', 1, 64),
    queueDelayUs: num('queueDelayUs', '--queue-delay-us', 0, 10_000_000),
    exclude: str(flags.exclude)?.split(',').map((s) => s.trim()).filter(Boolean),
    threads: num('threads', '--threads', 1, 256),
    targetCosine: str(flags.targetCosine) !== undefined ? checkNumber('--target-cosine', str(flags.targetCosine), { min: 0, max: 1 }) : undefined,
    targetMargin: str(flags.targetMargin) !== undefined ? checkNumber('--target-margin', str(flags.targetMargin), { min: 0, max: 0.1 }) : undefined,
    maxFloatLayers: num('maxFloatLayers', '--max-float-layers', 0, 1000),
    evaluate: flags.evaluate !== false,
    pairsFile: str(flags.pairs) ? path.resolve(str(flags.pairs)!) : undefined,
    boxFiles: strings(flags.boxes).map((b) => path.resolve(b)),
    faceFree: strings(flags.faceFree).map((b) => path.resolve(b)),
    gates: gateThresholdsFromOptions(flags),
    roleFlags: roleFlagsGiven(flags),
    reportDir: str(flags.reportDir),
    command: `faceopt ${process.argv.slice(2).join(' ')}`,
  });
  process.stdout.write(`${plan.dir}\n`);
  const ev = plan.evaluation;
  if (ev) {
    process.stdout.write(terminalSummary(ev.report, ev.reportDir));
    if (!ev.report.gates.pass) {
      throw new FaceoptError('FACEOPT_ERR_GATE_FAILED', { reasons: ev.report.gates.reasons.join(' '), report: path.join(ev.reportDir, 'report.md') });
    }
  }
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : typeof v === 'string' && v ? [v] : []);
