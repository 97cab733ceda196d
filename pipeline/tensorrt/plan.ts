/**
 * `faceopt optimize --tensorrt`'s stage function: from a float model (opset >= 13, already rewritten
 * the way `--int8` rewrites it) and calibration stats, write a TensorRT bundle folder:
 *
 *   model.onnx            float graph with the shape rewrites (dynamic batch / fixed detector size)
 *   model.qdq.onnx        int8: symmetric Q/DQ graph placed for TensorRT (all TRT versions)
 *   model.fp16.onnx       fp16: float16 graph for strongly typed TensorRT 11 builds
 *   calibration.cache     int8: legacy cache for TensorRT 8.6/10 (`--calib`), same scales as the Q/DQ
 *   build.sh              trtexec lines for 8.6/10/11, picks the installed version
 *   ort-tensorrt.json     onnxruntime TensorRT EP options (+ ort-engines-calibrated/calibration.cache)
 *   triton/<name>/...     Triton repository: config.pbtxt + 1/model.onnx
 *   README.md, plan.json  how to use it; a summary of everything with sha256s
 *
 * The folder is assembled next to the destination and swapped in at the end, so a failure never
 * leaves a half-written bundle; the source model is never touched.
 */
import { randomBytes } from 'node:crypto';
import { chmod, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { activationTensors, sampleCount } from '../calibrate/run.js';
import type { TensorStats } from '../calibrate/collectors.js';
import { FaceoptError, checkNumber, writeFailed } from '../errors.js';
import { ensureDir, sha256, sha256File, trackTemp, writeFileAtomic } from '../fsutil.js';
import type { OnnxModel } from '../onnx/model.js';
import { upgradeOpset } from '../onnx/opset.js';
import { TOOL_VERSION } from '../version.js';
import { scalesFromRanges, writeCalibrationCache } from './calibration-cache.js';
import { buildLines, renderBuildScript, type BuildLine, type Precision } from './build-script.js';
import { toFloat16 } from './fp16.js';
import { buildOrtTensorrtFile, ortShapeSpec } from './ort-options.js';
import { probeModel } from './probe.js';
import { exportSymmetricQdq, type QdqCheck, type SymmetricQdqExport } from './qdq-export.js';
import { exportQdqToTarget, type TensorrtMixedResult } from './mixed.js';
import { defaultTargetCosine } from '../quantize/mixed.js';
import type { InputBatch } from '../calibrate/run.js';
import { renderReadme } from './readme.js';
import { fixInputSize, makeBatchDynamic } from './shapes.js';
import { preferredBatchSizes, renderTritonConfig } from './triton.js';
import { shapeSpec, type ShapeProfile } from './trtexec.js';

export interface BatchProfile { min: number; opt: number; max: number }

export interface TensorrtBundleInput {
  /** Float model, opset >= 13, rewritten as for --int8 (not modified). */
  model: OnnxModel;
  /** Calibration stats of that model (chosen range per tensor); required for int8. */
  stats?: Record<string, TensorStats>;
  outDir: string;
  precision: Precision;
  role: 'detector' | 'recognizer';
  /** Recognizers: batch profile (default 1:8:32). Detectors are built at batch 1. */
  batch?: BatchProfile;
  /** Detectors: [width, height] (default 640x640), multiples of 32. */
  detSize?: readonly [number, number];
  /** Bundle/model name (default: source file name). */
  name?: string;
  workspaceMiB?: number;
  optimizationLevel?: number;
  instances?: number;
  maxQueueDelayMicroseconds?: number;
  /** Node names or op types kept float in the Q/DQ graph. */
  exclude?: string[];
  /** Where the source came from, for plan.json. */
  source?: { path?: string; sha256?: string };
  /**
   * Held-apart model inputs (never used for calibration): when given, layers whose int8 form costs
   * the most output cosine are kept float until `target` (default: defaultTargetCosine of the role)
   * is met, at most `maxFloat` (default 16: TensorRT runs float layers in fp16, so a float layer costs a reformat, not a slow kernel) of them.
   */
  accuracy?: { slice: readonly InputBatch[]; target?: number; maxFloat?: number };
  log?: (line: string) => void;
  /**
   * Called with the plan once every file is written, just before the new bundle replaces `outDir` (so a
   * report describing the old bundle can be removed while the old bundle is still in place).
   */
  beforeSwap?: (plan: TensorrtPlan) => Promise<void>;
}

export interface TensorrtPlan {
  schemaVersion: 1;
  tool: string;
  name: string;
  role: 'detector' | 'recognizer';
  precision: Precision;
  source: { path?: string; sha256?: string };
  input: { name: string; dims: (number | string)[]; profile: ShapeProfile; dynamicBatch: boolean };
  outputs: { name: string; dims: (number | string)[] }[];
  rewrites: string[];
  quantization?: {
    placement: 'tensorrt';
    activations: number;
    weights: number;
    floatOps: Record<string, number>;
    check: QdqCheck;
    cpuRun: { ok: true; outputs: Record<string, number[]> };
    /** Output cosine vs the float graph on the held-apart slice, when one was given. */
    accuracy?: { samples: number; target: number; cosineAllInt8: number; cosine: number; met: boolean };
    keptFloat: { layer: string; op: string; reason: string }[];
    /** Every layer the search measured, most sensitive first (the report shows the 20 most sensitive of them). */
    sensitivity?: { layer: string; op: string; cosineLoss: number }[];
  };
  float16?: { converted: number; clamped: number; cpuRun: { ok: boolean; reason?: string } };
  calibrationCache?: { file: string; header: string; entries: number };
  trtexec: { line: string; mode: string; engine: string; command: string }[];
  ort: { file: string; variants: string[] };
  triton: { repository: string; model: string; config: string; maxBatchSize: number; preferredBatchSizes: number[]; instances: number };
  files: Record<string, { bytes: number; sha256: string }>;
  notes: string[];
}

const DEFAULT_BATCH: BatchProfile = { min: 1, opt: 8, max: 32 };

function checkInput(i: TensorrtBundleInput): { batch: BatchProfile; det: [number, number]; workspaceMiB: number; level: number; instances: number; delay: number } {
  if (!['int8', 'fp16', 'fp32'].includes(i.precision)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: 'precision', expected: 'int8, fp16 or fp32', received: String(i.precision) });
  if (i.role !== 'detector' && i.role !== 'recognizer') throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: 'role', expected: 'detector or recognizer', received: String(i.role) });
  if (i.precision === 'int8' && (!i.stats || Object.keys(i.stats).length === 0)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: 'stats', expected: 'calibration stats of the float model for --precision int8 (calibrate first, or pass --stats FILE)', received: 'none' });
  }
  const batch = i.batch ?? (i.role === 'recognizer' ? DEFAULT_BATCH : { min: 1, opt: 1, max: 1 });
  for (const k of ['min', 'opt', 'max'] as const) checkNumber(`batch ${k}`, batch[k], { min: 1, max: 4096, integer: true });
  if (!(batch.min <= batch.opt && batch.opt <= batch.max)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: 'batch', expected: 'MIN:OPT:MAX with MIN <= OPT <= MAX', received: `${batch.min}:${batch.opt}:${batch.max}` });
  if (i.role === 'detector' && batch.max !== 1) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: 'batch', expected: '1:1:1 for a detector (SCRFD graphs are built at batch 1)', received: `${batch.min}:${batch.opt}:${batch.max}` });
  const det = (i.detSize ?? [640, 640]) as [number, number];
  for (const [k, v] of [['det-size width', det[0]], ['det-size height', det[1]]] as const) {
    checkNumber(k, v, { min: 32, max: 4096, integer: true });
    if (v % 32 !== 0) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: k, expected: 'a multiple of 32 (SCRFD strides go up to 32)', received: String(v) });
  }
  return {
    batch, det,
    workspaceMiB: checkNumber('workspace MiB', i.workspaceMiB ?? 4096, { min: 64, max: 1 << 20, integer: true }),
    level: checkNumber('builder optimization level', i.optimizationLevel ?? 3, { min: 0, max: 5, integer: true }),
    instances: checkNumber('instances', i.instances ?? 1, { min: 1, max: 64, integer: true }),
    delay: checkNumber('max queue delay (µs)', i.maxQueueDelayMicroseconds ?? 2000, { min: 0, max: 10_000_000, integer: true }),
  };
}

/** A file-system safe model name (Triton model names are folder names). */
export function bundleName(model: OnnxModel, name?: string): string {
  const base = name ?? (model.sourcePath ? path.basename(model.sourcePath).replace(/\.onnx$/i, '') : 'model');
  const safe = base.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._]+/, '');
  return safe || 'model';
}

/**
 * Refuse an input name that the bundle's shape profiles cannot carry (FACEOPT_ERR_TENSOR_NAME: a ',' or a
 * quote for trtexec, a ':' or ',' for onnxruntime's TensorRT options and Triton), so `optimize --tensorrt` stops
 * before calibration rather than after it. Only recognizers get profiles (detectors are built at one
 * fixed size and name no shapes).
 */
export function checkProfileInputName(inputName: string, role: 'detector' | 'recognizer'): void {
  if (role !== 'recognizer') return;
  shapeSpec(inputName, [1]);
  ortShapeSpec(inputName, [1]);
}

/** Write the bundle (see the module comment) and return its plan (also saved as plan.json). */
export async function writeTensorrtBundle(input: TensorrtBundleInput): Promise<TensorrtPlan & { dir: string }> {
  const o = checkInput(input);
  const name = bundleName(input.model, input.name);
  const float = input.model.clone();
  if (float.opset() < 13) upgradeOpset(float, 13);
  const rewrites: string[] = [];
  const notes: string[] = [];
  const inputName = float.graph.inputs[0]?.name;
  if (!inputName) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: 'the model has no graph input' });
  checkProfileInputName(inputName, input.role);

  // --- shapes ---------------------------------------------------------------------------------------
  let profile: ShapeProfile;
  let inputDims: (number | string)[];
  let outputs: { name: string; dims: (number | string)[] }[];
  let tritonIn: number[];
  let tritonOut: { name: string; dims: number[] }[];
  let maxBatchSize: number;
  let exampleDims: number[];
  if (input.role === 'recognizer') {
    const r = await makeBatchDynamic(float);
    rewrites.push(...r.rewrites);
    const inner = (float.graph.inputs[0]!.shape ?? []).slice(1) as number[];
    profile = { input: inputName, min: [o.batch.min, ...inner], opt: [o.batch.opt, ...inner], max: [o.batch.max, ...inner] };
    inputDims = [r.batchDim, ...inner];
    outputs = inGraphOrder(float, r.outputDims).map(([n, d]) => ({ name: n, dims: [r.batchDim, ...d] }));
    tritonIn = inner;
    tritonOut = inGraphOrder(float, r.outputDims).map(([n, d]) => ({ name: n, dims: d }));
    maxBatchSize = o.batch.max;
    exampleDims = [o.batch.min, ...inner]; // the smallest batch the engine takes
    if (o.batch.min > 1) notes.push(`the profile's smallest batch is ${o.batch.min}: a request alone (Triton's dynamic batcher sends one as a batch of 1) is outside it; serve with a minimum of 1`);
  } else {
    const r = await fixInputSize(float, o.det[0], o.det[1]);
    rewrites.push(...r.rewrites);
    profile = { input: inputName, min: r.inputDims, opt: r.inputDims, max: r.inputDims };
    inputDims = r.inputDims;
    outputs = inGraphOrder(float, r.outputDims).map(([n, d]) => ({ name: n, dims: d }));
    tritonIn = r.inputDims;
    tritonOut = inGraphOrder(float, r.outputDims).map(([n, d]) => ({ name: n, dims: d }));
    maxBatchSize = 0;
    exampleDims = r.inputDims;
  }
  const dynamic = input.role === 'recognizer';

  // --- graphs ---------------------------------------------------------------------------------------
  const files: Record<string, Uint8Array | string> = { 'model.onnx': float.toBytes() };
  let quantization: TensorrtPlan['quantization'];
  let float16: TensorrtPlan['float16'];
  let calibrationCache: TensorrtPlan['calibrationCache'];
  let deployGraph = 'model.onnx';
  if (input.precision === 'int8') {
    const known = new Set(activationTensors(float));
    const ranges = Object.fromEntries(Object.entries(input.stats!).filter(([k]) => known.has(k)).map(([k, s]) => [k, s.range] as const));
    let q: SymmetricQdqExport & Partial<TensorrtMixedResult>;
    if (input.accuracy && input.accuracy.slice.length) {
      q = await exportQdqToTarget({
        float, ranges, slice: input.accuracy.slice, exclude: input.exclude, log: input.log,
        target: input.accuracy.target ?? defaultTargetCosine(input.role), maxFloat: input.accuracy.maxFloat ?? 16,
      });
    } else {
      q = exportSymmetricQdq(float, ranges, { exclude: input.exclude });
    }
    rewrites.push(...q.rewrites);
    const run = await probeModel(q.model, exampleDims, { what: 'the Q/DQ graph' });
    const floatOps: Record<string, number> = {};
    for (const f of q.quantization.floatNodes) floatOps[f.op] = (floatOps[f.op] ?? 0) + 1;
    quantization = {
      placement: 'tensorrt', activations: q.quantization.activations, weights: q.quantization.weights, floatOps, check: q.check, cpuRun: { ok: true, outputs: run.dims },
      keptFloat: q.keptFloat ?? (input.exclude ?? []).map((e) => ({ layer: e, op: '', reason: 'excluded by option' })),
      ...(q.cosine !== undefined ? {
        accuracy: { samples: sampleCount(input.accuracy!.slice), target: q.target!, cosineAllInt8: q.cosineAllInt8!, cosine: q.cosine, met: q.met! },
        ...(q.sensitivity ? { sensitivity: q.sensitivity } : {}), // all of them: the report shows the 20 most sensitive "of N"
      } : {}),
    };
    if (q.met === false) notes.push(`the Q/DQ graph reached output cosine ${q.cosine!.toFixed(5)} on the held-apart slice, below the target ${q.target}`);
    files['model.qdq.onnx'] = q.model.toBytes();
    deployGraph = 'model.qdq.onnx';
    // the cache holds the activations the Q/DQ graph quantizes, no others: with implicit int8 (build.sh
    // --mode calib, the ORT calibration-table variant) TensorRT runs a layer in int8 wherever its tensors
    // have a range, so a full cache made the layers the search or --exclude kept float int8 after all
    const quantized = q.quantization.params;
    const cacheRanges = Object.fromEntries(Object.entries(ranges).filter(([k]) => k in quantized));
    const cacheText = writeCalibrationCache(scalesFromRanges(cacheRanges), '8.6.1');
    files['calibration.cache'] = cacheText;
    files['ort-engines-calibrated/calibration.cache'] = cacheText;
    calibrationCache = { file: 'calibration.cache', header: cacheText.slice(0, cacheText.indexOf('\n')), entries: Object.keys(cacheRanges).length };
    notes.push(`calibration.cache and the Q/DQ graph use the same scales (amax/127 of each chosen range) for the same ${Object.keys(cacheRanges).length} activations: the ${Object.keys(ranges).length - Object.keys(cacheRanges).length} the graph keeps float have no range, so TensorRT's implicit int8 (--mode calib) keeps their layers in fp16/fp32 too; build.sh rewrites the cache header to the installed TensorRT version.`);
  } else if (input.precision === 'fp16') {
    const h = toFloat16(float);
    let cpuRun: { ok: boolean; reason?: string } = { ok: true };
    try {
      await probeModel(h.model, exampleDims, { what: 'the float16 graph' });
    } catch (e) {
      cpuRun = { ok: false, reason: (e as Error).message };
      notes.push(`model.fp16.onnx did not run on CPU here (${cpuRun.reason}); TensorRT 11 builds it on GPU.`);
    }
    float16 = { converted: h.converted, clamped: h.clamped, cpuRun };
    files['model.fp16.onnx'] = h.model.toBytes();
  }

  // --- build script, ORT options, Triton, README ------------------------------------------------------
  const buildInput = {
    name, precision: input.precision, profile, dynamic, workspaceMiB: o.workspaceMiB, optimizationLevel: o.level,
    files: {
      float: 'model.onnx',
      qdq: files['model.qdq.onnx'] ? 'model.qdq.onnx' : undefined,
      fp16: files['model.fp16.onnx'] ? 'model.fp16.onnx' : undefined,
      calibrationCache: files['calibration.cache'] ? 'calibration.cache' : undefined,
    },
  };
  const lines: BuildLine[] = buildLines(buildInput);
  files['build.sh'] = renderBuildScript(buildInput, lines, { tool: TOOL_VERSION, model: name });
  const ort = buildOrtTensorrtFile(buildInput);
  files['ort-tensorrt.json'] = `${JSON.stringify(ort, null, 2)}\n`;
  const preferred = maxBatchSize > 0 ? preferredBatchSizes(o.batch.opt, maxBatchSize) : [];
  const tritonDir = `triton/${name}`;
  files[`${tritonDir}/config.pbtxt`] = renderTritonConfig({
    modelName: name, precision: input.precision, input: { name: inputName, dims: tritonIn }, outputs: tritonOut,
    maxBatchSize, preferredBatchSizes: preferred, maxQueueDelayMicroseconds: o.delay, instances: o.instances,
    workspaceBytes: o.workspaceMiB * 1024 * 1024, optimizationLevel: o.level, profile: dynamic ? profile : null,
    cacheDir: `/models/${name}/trt-cache`,
  });
  files[`${tritonDir}/1/model.onnx`] = files[deployGraph]!;
  const listed = [...Object.keys(files), 'README.md', 'plan.json'].sort();
  files['README.md'] = renderReadme({
    name, source: input.source?.path ?? float.sourcePath ?? name, role: input.role, precision: input.precision,
    input: { name: inputName, dims: inputDims }, outputs, exampleDims, files: listed, lines, tritonName: name, maxBatchSize,
  });

  const fileInfo: TensorrtPlan['files'] = {};
  for (const [f, data] of Object.entries(files)) {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    fileInfo[f] = { bytes: bytes.byteLength, sha256: sha256(bytes) };
  }
  const plan: TensorrtPlan = {
    schemaVersion: 1, tool: TOOL_VERSION, name, role: input.role, precision: input.precision,
    source: { path: input.source?.path ?? float.sourcePath, sha256: input.source?.sha256 ?? (float.sourcePath ? await sha256File(float.sourcePath).catch(() => undefined) : undefined) },
    input: { name: inputName, dims: inputDims, profile, dynamicBatch: dynamic }, outputs, rewrites,
    ...(quantization ? { quantization } : {}), ...(float16 ? { float16 } : {}), ...(calibrationCache ? { calibrationCache } : {}),
    trtexec: lines.map((l) => ({ line: l.line, mode: l.mode, engine: l.engine, command: ['trtexec', ...l.args].join(' ') })),
    ort: { file: 'ort-tensorrt.json', variants: ['default', ...Object.keys(ort.alternatives)] },
    triton: { repository: 'triton', model: name, config: `${tritonDir}/config.pbtxt`, maxBatchSize, preferredBatchSizes: preferred, instances: o.instances },
    files: fileInfo, notes: [...notes, ...ort.notes],
  };
  files['plan.json'] = `${JSON.stringify(plan, null, 2)}\n`;
  const dir = await writeBundleDir(input.outDir, files, input.beforeSwap ? () => input.beforeSwap!(plan) : undefined);
  return { ...plan, dir };
}

/** Write all files into a fresh sibling folder, then swap it in place of `outDir`. */
async function writeBundleDir(outDir: string, files: Record<string, Uint8Array | string>, beforeSwap?: () => Promise<void>): Promise<string> {
  const dest = path.resolve(outDir);
  // Only an empty folder or an earlier bundle may be replaced: never a folder holding other things.
  const existing = await readdir(dest).catch(() => null);
  if (existing && existing.length > 0 && !existing.includes('plan.json')) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: 'out', expected: 'a new or empty folder, or an earlier TensorRT bundle (with plan.json)', received: dest });
  }
  const tmp = `${dest}.partial-${randomBytes(4).toString('hex')}`;
  // a Ctrl-C while the files are written removes the half-made folder (a `finally` does not run then)
  const untrack = trackTemp(tmp);
  try {
    ensureDir(tmp);
    for (const [f, data] of Object.entries(files)) await writeFileAtomic(path.join(tmp, f), data);
    await chmod(path.join(tmp, 'build.sh'), 0o755);
    await beforeSwap?.();
    const old = `${dest}.old-${randomBytes(4).toString('hex')}`;
    const exists = await stat(dest).then(() => true, () => false);
    if (exists) await rename(dest, old);
    await rename(tmp, dest);
    untrack();
    if (exists) {
      // the new bundle is in place: a Ctrl-C now removes the old one all the same (before this point a
      // signal leaves it, renamed, rather than lose the only bundle there is)
      const untrackOld = trackTemp(old);
      await rm(old, { recursive: true, force: true });
      untrackOld();
    }
    return dest;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    // a file of the half-made folder could not be written: name --out (that folder is gone now)
    if (e instanceof FaceoptError && e.code !== 'FACEOPT_ERR_WRITE_FAILED') throw e;
    throw writeFailed(dest, e instanceof FaceoptError ? e.cause ?? String(e.params.reason) : e);
  } finally {
    untrack();
  }
}

/**
 * Output dims in the graph's output order (an object lists integer-like keys such as SCRFD's "443",
 * "446" first and in numeric order, so plan.json and Triton's config listed them out of graph order).
 */
function inGraphOrder<T>(model: OnnxModel, dims: Record<string, T>): [string, T][] {
  return model.graph.outputs.map((o) => o.name).filter((n) => n in dims).map((n) => [n, dims[n]!]);
}
