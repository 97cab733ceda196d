/**
 * The accuracy report of a TensorRT bundle (`optimize --tensorrt`, issue 6 item 6): the graph TensorRT
 * will build (the symmetric Q/DQ graph for int8) is evaluated on CPU with onnxruntime against the float
 * source model, on held-apart faces and pairs, with the same gates as `--int8`, and written to
 * `reports/<name>.tensorrt-<precision>/`. faceopt never builds engines during optimize, so the report
 * says that engines were not built or timed here, why (no GPU / no trtexec found), and how to do it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { CalibrationSplit } from '../calibrate/sources.js';
import { evaluateModels, type EvaluateModelsResult } from '../evaluate/evaluate-models.js';
import type { GateThresholds } from '../evaluate/gates.js';
import { reportsDir } from '../paths.js';
import type { Provenance, Report } from '../report/types.js';
import type { TensorrtPlan } from './plan.js';

export interface TensorrtReportInput {
  plan: TensorrtPlan & { dir: string };
  /** The float source model (the reference). */
  source: string;
  facesDir?: string;
  /** The split calibration used (evaluation photos are the other identities). */
  split?: CalibrationSplit | null;
  calibrationList?: string;
  pairsFile?: string;
  boxFiles?: string[];
  faceFree?: string[];
  /** Detector aligning faces for a recognizer (default: one next to the source). */
  detector?: string;
  gates?: GateThresholds;
  /** Report folder (default reports/<name>.tensorrt-<precision>). */
  reportDir?: string;
  threads?: number;
  speedRuns?: number;
  calibration?: Provenance['calibration'];
  command?: string | null;
  log?: (line: string) => void;
  /** Warnings of the run that made the bundle (e.g. a small calibration set), repeated in the report. */
  warnings?: readonly string[];
}

/** The deploy graph of a bundle that runs on CPU, or why there is none. */
export function evaluatedGraph(plan: TensorrtPlan & { dir: string }): { file: string; precision: string } | { skip: string } {
  if (plan.precision === 'int8') return { file: path.join(plan.dir, 'model.qdq.onnx'), precision: 'int8-qdq-symmetric' };
  if (plan.precision === 'fp16') {
    if (plan.float16 && !plan.float16.cpuRun.ok) return { skip: `model.fp16.onnx does not run on CPU here (${plan.float16.cpuRun.reason ?? 'unknown reason'})` };
    return { file: path.join(plan.dir, 'model.fp16.onnx'), precision: 'fp16' };
  }
  return { file: path.join(plan.dir, 'model.onnx'), precision: 'fp32' };
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, tool)));
}

/**
 * The sentence every TensorRT report carries: engines were not built or timed by this command, the
 * reason found on this machine, and the commands that build and time them.
 */
export function engineNote(bundleDir: string, graphFile = 'model.qdq.onnx'): string {
  return `TensorRT engines were not built or timed here (${engineStatus()}): accuracy is that of ${graphFile} (the graph TensorRT builds) run on CPU by onnxruntime, and the speed numbers are CPU onnxruntime, not TensorRT. Build and time the engine with ${path.join(bundleDir, 'build.sh')} --time, or scripts/gpu-check.sh ${bundleDir}, on a machine with an NVIDIA GPU and TensorRT.`;
}

/** Why no engine was built here: no GPU, no trtexec, or (with both) that optimize only writes the plan. */
export function engineStatus(): string {
  const gpu = onPath('nvidia-smi') || existsSync('/dev/nvidia0');
  const trtexec = onPath('trtexec') || existsSync('/usr/src/tensorrt/bin/trtexec');
  return !gpu ? 'no NVIDIA GPU on this machine' : !trtexec ? 'a GPU is present but trtexec was not found' : 'optimize writes the plan; engines are built by build.sh';
}

/** Whether the flags give anything to evaluate this role on. */
export function hasEvaluationData(role: 'detector' | 'recognizer', i: Pick<TensorrtReportInput, 'facesDir' | 'boxFiles' | 'faceFree'>): boolean {
  return Boolean(i.facesDir) || (role === 'detector' && Boolean(i.boxFiles?.length || i.faceFree?.length));
}

/**
 * Evaluate a freshly written bundle and write its report (see the module comment). Returns null, after
 * logging why, when the bundle's graph cannot run on CPU or no evaluation photos were given.
 */
export async function evaluateTensorrtBundle(i: TensorrtReportInput): Promise<EvaluateModelsResult | null> {
  const log = i.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const plan = i.plan;
  const graph = evaluatedGraph(plan);
  if ('skip' in graph) { log(`warning: no accuracy report: ${graph.skip}`); return null; }
  if (!hasEvaluationData(plan.role, i)) {
    log(`warning: no accuracy report: no evaluation photos (--faces DIR${plan.role === 'detector' ? ', --boxes XML or --face-free IMAGE' : ', and --pairs FILE for verification accuracy'}); the ${path.basename(graph.file)} graph was not checked against the gates`);
    return null;
  }
  // detectors: the bundle's graph is fixed at --det-size; a square size the source can run at too keeps
  // the source as the reference, otherwise the bundle's float graph (same size, exact rewrites) is used
  const dims = plan.input.dims;
  const [h, w] = [Number(dims[2]), Number(dims[3])];
  let reference = i.source;
  let detSize: number | undefined;
  const warnings: string[] = [engineNote(plan.dir, path.basename(graph.file)), ...(i.warnings ?? [])];
  if (plan.role === 'detector') {
    if (w === h) detSize = w;
    else {
      reference = path.join(plan.dir, 'model.onnx');
      warnings.push(`the reference is the bundle's float graph model.onnx at ${w}x${h} (float rewrites only: BatchNorm folded, fixed input size), since detector evaluation runs both models at one size`);
    }
  }
  const acc = plan.quantization?.accuracy;
  if (acc) warnings.push(`mixed precision on the held-apart calibration slice: output cosine ${acc.cosineAllInt8.toFixed(5)} with every layer int8, ${acc.cosine.toFixed(5)} with ${plan.quantization!.keptFloat.length} layer(s) float (target ${acc.target}${acc.met ? '' : ', not met'})`);
  const sens = plan.quantization?.sensitivity;
  const variantName = `tensorrt-${plan.precision}`;
  return evaluateModels({
    model: graph.file,
    reference,
    variantName,
    variantPrecision: graph.precision,
    role: plan.role,
    facesDir: i.facesDir,
    split: i.split ?? null,
    calibrationList: i.calibrationList,
    pairsFile: i.pairsFile,
    boxFiles: i.boxFiles,
    faceFree: i.faceFree,
    detector: i.detector,
    threads: i.threads,
    detSize,
    gates: i.gates,
    reportDir: i.reportDir ?? path.join(reportsDir(), `${plan.name}.${variantName}`),
    speedRuns: i.speedRuns,
    calibration: i.calibration ?? null,
    floatLayers: plan.quantization?.keptFloat ?? [],
    sensitivity: sens?.length ? { metric: 'output cosine loss (1 - cosine) on the held-apart calibration slice when only this layer is int8 (TensorRT placement)', layers: sens.map((s) => ({ layer: s.layer, op: s.op, metric: s.cosineLoss })) } : null,
    warnings,
    command: i.command ?? null,
    amend: (r: Report) => {
      r.reference.name = plan.name;
      if (r.speed) r.speed.note = `CPU onnxruntime (${r.speed.executionProvider}), not TensorRT: engines were not built or timed here; the two models take turns in blocks of runs`;
    },
    log,
  });
}
