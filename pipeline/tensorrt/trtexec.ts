/**
 * trtexec command lines, per TensorRT release line, from a table of the flags NVIDIA documents for
 * that line. Every line faceopt generates is checked against the table, so a flag a release removed
 * (`--workspace` in 10, `--int8`/`--fp16`/`--calib`/`--best` in 11) can never reach a build script.
 *
 * Sources (checked with the docs search while writing this table):
 *  - TensorRT 8.x -> 10.x trtexec migration: `--workspace` replaced by `--memPoolSize=workspace:<MiB>`,
 *    `--minTiming` removed, implicit-batch flags removed.
 *  - TensorRT 10.x -> 11.x trtexec migration: all precision flags removed (`--fp16`, `--int8`, `--bf16`,
 *    `--fp8`, `--int4`, `--best`), `--int8` and `--calib` removed (quantize offline into Q/DQ),
 *    strong typing always on ("--stronglyTyped is no longer needed"; accepted as a no-op, so keeping
 *    it is safe and makes the intent explicit).
 *  - trtexec README (NVIDIA/TensorRT samples/trtexec): `--stronglyTyped` must not be combined with
 *    `--int8`/`--best`; `--skipInference` builds and saves without timing.
 *  - `--builderOptimizationLevel` (0-5, default 3) and `--skipInference` arrived with TensorRT 8.6;
 *    `--memPoolSize` with 8.4; `--timingCacheFile` with 8.0.
 */
import { FaceoptError } from '../errors.js';

/** The release lines faceopt writes commands for. */
export type TrtLine = '8.6' | '10' | '11';
export const TRT_LINES: readonly TrtLine[] = ['8.6', '10', '11'];

export interface FlagDoc {
  /** Lines where NVIDIA documents the flag as accepted. */
  lines: readonly TrtLine[];
  /** What it does, in a few words. */
  doc: string;
  /** Where it is documented. */
  source: string;
  /** True when the flag takes `=value`. */
  value: boolean;
}

const MIGRATE_10 = 'https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-8x-to-10x-trtexec.html';
const MIGRATE_11 = 'https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-trtexec.html';
const REFERENCE = 'https://docs.nvidia.com/deeplearning/tensorrt/latest/reference/command-line-programs.html';
const README = 'https://github.com/NVIDIA/TensorRT/blob/main/samples/trtexec/README.md';
const ALL: readonly TrtLine[] = TRT_LINES;
const WEAK: readonly TrtLine[] = ['8.6', '10'];

/** The documented flags, per release line. */
export const TRTEXEC_FLAGS: Readonly<Record<string, FlagDoc>> = Object.freeze({
  '--onnx': { lines: ALL, doc: 'ONNX model to build from', source: REFERENCE, value: true },
  '--saveEngine': { lines: ALL, doc: 'write the serialized engine', source: REFERENCE, value: true },
  '--loadEngine': { lines: ALL, doc: 'load a serialized engine', source: REFERENCE, value: true },
  '--minShapes': { lines: ALL, doc: 'optimization profile minimum shapes', source: README, value: true },
  '--optShapes': { lines: ALL, doc: 'optimization profile optimum shapes', source: README, value: true },
  '--maxShapes': { lines: ALL, doc: 'optimization profile maximum shapes', source: README, value: true },
  '--shapes': { lines: ALL, doc: 'inference shapes', source: README, value: true },
  '--memPoolSize': { lines: ALL, doc: 'memory pool limits, e.g. workspace:4096 (MiB)', source: MIGRATE_10, value: true },
  '--timingCacheFile': { lines: ALL, doc: 'load/save the timing cache', source: REFERENCE, value: true },
  '--builderOptimizationLevel': { lines: ALL, doc: 'builder optimization level 0-5 (8.6+)', source: REFERENCE, value: true },
  '--skipInference': { lines: ALL, doc: 'build and save the engine, skip timing (8.6+)', source: README, value: false },
  '--workspace': { lines: ['8.6'], doc: 'deprecated workspace size (MiB); removed in 10', source: MIGRATE_10, value: true },
  '--int8': { lines: WEAK, doc: 'enable INT8 (weakly typed); removed in 11', source: MIGRATE_11, value: false },
  '--fp16': { lines: WEAK, doc: 'enable FP16 (weakly typed); removed in 11', source: MIGRATE_11, value: false },
  '--best': { lines: WEAK, doc: 'enable all precisions; removed in 11', source: MIGRATE_11, value: false },
  '--calib': { lines: WEAK, doc: 'legacy INT8 calibration cache; removed in 11', source: MIGRATE_11, value: true },
  '--stronglyTyped': { lines: ['10', '11'], doc: 'strongly typed network (always on in 11)', source: MIGRATE_11, value: false },
  '--warmUp': { lines: ALL, doc: 'warm-up time in ms', source: REFERENCE, value: true },
  '--iterations': { lines: ALL, doc: 'minimum timed iterations', source: REFERENCE, value: true },
  '--duration': { lines: ALL, doc: 'minimum timed seconds', source: REFERENCE, value: true },
  '--avgRuns': { lines: ALL, doc: 'iterations averaged per reported value', source: REFERENCE, value: true },
  '--useCudaGraph': { lines: ALL, doc: 'capture the engine in a CUDA graph', source: REFERENCE, value: false },
  '--noDataTransfers': { lines: ALL, doc: 'time without host/device copies', source: REFERENCE, value: false },
  '--exportTimes': { lines: ALL, doc: 'write per-iteration timings as JSON', source: README, value: true },
  '--separateProfileRun': { lines: ALL, doc: 'profile in a separate run', source: REFERENCE, value: false },
  '--verbose': { lines: ALL, doc: 'verbose log', source: REFERENCE, value: false },
});

/** Flag names documented for a line. */
export function documentedFlags(line: TrtLine): string[] {
  return Object.entries(TRTEXEC_FLAGS).filter(([, f]) => f.lines.includes(line)).map(([k]) => k);
}

/**
 * Check argv (without the program) against the table for `line`: every argument is a documented flag
 * of that line, with a value exactly when the flag takes one, and `--stronglyTyped` never meets a
 * precision flag. Returns the problems (empty when fine).
 */
export function checkTrtexecArgs(args: readonly string[], line: TrtLine): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const a of args) {
    const [name, ...rest] = a.split('=');
    const spec = TRTEXEC_FLAGS[name!];
    names.add(name!);
    if (!spec) { problems.push(`${name} is not a documented trtexec flag`); continue; }
    if (!spec.lines.includes(line)) problems.push(`${name} is not accepted by TensorRT ${line} (${spec.doc})`);
    if (spec.value !== rest.length > 0) problems.push(spec.value ? `${name} needs a value` : `${name} takes no value`);
  }
  if (names.has('--stronglyTyped') && ['--int8', '--fp16', '--best'].some((f) => names.has(f))) problems.push('--stronglyTyped cannot be combined with precision flags');
  return problems;
}

/** One optimization profile for one input: dims per profile point. */
export interface ShapeProfile {
  input: string;
  min: readonly number[];
  opt: readonly number[];
  max: readonly number[];
}

export interface BuildSpec {
  /** ONNX file the line builds (relative to the bundle). */
  onnx: string;
  engine: string;
  timingCache: string;
  profile: ShapeProfile;
  /** Whether the input has dynamic dims (profile flags are written only then). */
  dynamic: boolean;
  workspaceMiB: number;
  optimizationLevel: number;
  /** Precision flags for weakly typed lines, e.g. ['--int8', '--fp16']; strongly typed lines ignore them. */
  precisionFlags: readonly string[];
  /** Legacy calibration cache path (weakly typed lines only). */
  calib?: string;
  stronglyTyped: boolean;
}

/**
 * Why trtexec cannot be given `input` in a shape list, or null. trtexec (samples/common/sampleOptions.cpp,
 * getShapesBuild/getShapesInference) splits the list at every ',' before it looks at quotes, so no
 * quoting keeps a ',' inside a name; a quote in a name breaks its quote rule (splitNameAndValue allows
 * exactly two, and removeSingleQuotationMarks drops every one from the name).
 */
function trtexecNameProblem(input: string): string | null {
  if (input.includes(',')) return `trtexec splits the shape list at every "," before it reads quotes, so no quoting can keep a "," inside a name (onnxruntime's TensorRT EP and Triton split their trt_profile_*_shapes there too)`;
  if (input.includes("'")) return 'trtexec reads a single quote as the start or end of a quoted name (and drops it from the name), so a name cannot hold one';
  return null;
}

/**
 * A trtexec shape spec `name:dim1xdim2...`. A name with ':' is single-quoted: recent trtexec takes a
 * quoted name whole, older ones take everything before the last ':' and drop the quotes, so both read
 * it. A name trtexec cannot be given is FACEOPT_ERR_TENSOR_NAME rather than a command that cannot work.
 */
export function shapeSpec(input: string, dims: readonly number[]): string {
  const problem = trtexecNameProblem(input);
  if (problem) throw new FaceoptError('FACEOPT_ERR_TENSOR_NAME', { name: JSON.stringify(input), target: "trtexec's --minShapes/--optShapes/--maxShapes/--shapes", reason: problem });
  const name = input.includes(':') ? `'${input}'` : input;
  return `${name}:${dims.join('x')}`;
}

/** Build argv for one trtexec engine build, checked against the flag table of `line`. */
export function trtexecBuildArgs(spec: BuildSpec, line: TrtLine): string[] {
  const args = [`--onnx=${spec.onnx}`, `--saveEngine=${spec.engine}`];
  if (spec.dynamic) {
    args.push(`--minShapes=${shapeSpec(spec.profile.input, spec.profile.min)}`);
    args.push(`--optShapes=${shapeSpec(spec.profile.input, spec.profile.opt)}`);
    args.push(`--maxShapes=${shapeSpec(spec.profile.input, spec.profile.max)}`);
  }
  args.push(`--memPoolSize=workspace:${spec.workspaceMiB}`);
  args.push(`--timingCacheFile=${spec.timingCache}`);
  args.push(`--builderOptimizationLevel=${spec.optimizationLevel}`);
  if (spec.stronglyTyped) args.push('--stronglyTyped');
  else {
    args.push(...spec.precisionFlags);
    if (spec.calib) args.push(`--calib=${spec.calib}`);
  }
  args.push('--skipInference');
  const problems = checkTrtexecArgs(args, line);
  if (problems.length) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `trtexec line for TensorRT ${line}: ${problems.join('; ')}` });
  return args;
}

/** Argv that times a built engine (trtexec prints its performance summary; --exportTimes keeps the samples). */
export function trtexecTimingArgs(engine: string, shapes: { input: string; dims: readonly number[] } | null, line: TrtLine, exportTimes?: string): string[] {
  const args = [`--loadEngine=${engine}`];
  if (shapes) args.push(`--shapes=${shapeSpec(shapes.input, shapes.dims)}`);
  args.push('--warmUp=500', '--duration=5', '--iterations=200', '--useCudaGraph', '--noDataTransfers');
  if (exportTimes) args.push(`--exportTimes=${exportTimes}`);
  const problems = checkTrtexecArgs(args, line);
  if (problems.length) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `trtexec timing line for TensorRT ${line}: ${problems.join('; ')}` });
  return args;
}

/** Map an installed TensorRT version to the line faceopt writes for it, or null when too old. */
export function lineForVersion(major: number, minor: number): TrtLine | null {
  if (major >= 11) return '11';
  if (major === 10) return '10';
  if (major === 9 || (major === 8 && minor >= 6)) return '8.6';
  return null;
}
