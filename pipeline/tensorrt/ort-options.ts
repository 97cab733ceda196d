/**
 * onnxruntime TensorRT execution provider options for a bundle (`ort-tensorrt.json`), the table of
 * option names onnxruntime accepts (from tensorrt_execution_provider_info.cc, `provider_option_names`,
 * and the TensorRT EP docs), a loader that validates a bundle's file, and the provider check
 * `faceopt serve/evaluate --provider tensorrt` call before anything else.
 *
 * Rules from the docs: a calibration table is for graphs WITHOUT Q/DQ ("calibration table should not
 * be provided for QDQ model because TensorRT doesn't allow calibration table to be loaded if there is
 * any Q/DQ node"); it is looked up inside `trt_engine_cache_path`; `trt_profile_*_shapes` use
 * `input:dim1xdim2,...`, read by ParseProfileShapes/MakeInputNameShapePair
 * (tensorrt_execution_provider_utils.h): split at every ',', the name up to the FIRST ':', the dims up to
 * a next ':' split at 'x', and no quoting, so a name with ',' or ':' cannot be written there (unlike
 * trtexec, which takes a quoted 'input:0'). Values are written as strings, which every front end accepts
 * (C API, Python, Triton's `parameters`, which the onnxruntime backend hands to the EP as they are).
 *
 * onnxruntime-node (1.30) passes only `deviceId` to the TensorRT EP (js/node session_options_helper),
 * and the V2 options path ignores ORT_TENSORRT_* environment variables, so from Node these options
 * document the plan; Python/C++ users and Triton apply them as written.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { requireFile } from '../fsutil.js';
import { loadModel } from '../onnx/model.js';
import { requireProvider } from '../runtime.js';
import type { Precision } from './build-script.js';
import type { ShapeProfile } from './trtexec.js';

export type OptionKind = 'bool' | 'int' | 'string' | 'shapes';

const EP_INFO = 'https://github.com/microsoft/onnxruntime/blob/main/onnxruntime/core/providers/tensorrt/tensorrt_execution_provider_info.cc';

/** Option names the TensorRT EP parses (provider_option_names), with their value kind. */
export const ORT_TENSORRT_OPTIONS: Readonly<Record<string, OptionKind>> = Object.freeze({
  device_id: 'int',
  trt_max_partition_iterations: 'int',
  trt_min_subgraph_size: 'int',
  trt_max_workspace_size: 'int',
  trt_fp16_enable: 'bool',
  trt_int8_enable: 'bool',
  trt_int8_calibration_table_name: 'string',
  trt_int8_use_native_calibration_table: 'bool',
  trt_dla_enable: 'bool',
  trt_dla_core: 'int',
  trt_dump_subgraphs: 'bool',
  trt_engine_cache_enable: 'bool',
  trt_engine_cache_path: 'string',
  trt_engine_cache_prefix: 'string',
  trt_weight_stripped_engine_enable: 'bool',
  trt_onnx_model_folder_path: 'string',
  trt_engine_decryption_enable: 'bool',
  trt_engine_decryption_lib_path: 'string',
  trt_force_sequential_engine_build: 'bool',
  trt_context_memory_sharing_enable: 'bool',
  trt_layer_norm_fp32_fallback: 'bool',
  trt_timing_cache_enable: 'bool',
  trt_timing_cache_path: 'string',
  trt_force_timing_cache: 'bool',
  trt_detailed_build_log: 'bool',
  trt_build_heuristics_enable: 'bool',
  trt_sparsity_enable: 'bool',
  trt_builder_optimization_level: 'int',
  trt_auxiliary_streams: 'int',
  trt_tactic_sources: 'string',
  trt_extra_plugin_lib_paths: 'string',
  trt_profile_min_shapes: 'shapes',
  trt_profile_max_shapes: 'shapes',
  trt_profile_opt_shapes: 'shapes',
  trt_cuda_graph_enable: 'bool',
  trt_ep_context_embed_mode: 'int',
  trt_ep_context_file_path: 'string',
  trt_dump_ep_context_model: 'bool',
  trt_engine_hw_compatible: 'bool',
  trt_op_types_to_exclude: 'string',
});
export const ORT_TENSORRT_OPTIONS_SOURCE = EP_INFO;

/** Options that hold a path, resolved against the bundle folder by the loader. */
const PATH_OPTIONS = ['trt_engine_cache_path', 'trt_timing_cache_path'];

export interface OrtVariant {
  /** Bundle-relative model file this variant runs. */
  model: string;
  /** Whether that graph has Q/DQ nodes (then no calibration table may be given). */
  qdq: boolean;
  providerOptions: Record<string, string>;
}

export interface OrtTensorrtFile {
  schemaVersion: 1;
  precision: Precision;
  /** The recommended variant. */
  default: OrtVariant;
  /** Other variants by name (e.g. "calibration-table"). */
  alternatives: Record<string, OrtVariant>;
  notes: string[];
}

/**
 * What is wrong with a `trt_profile_*_shapes` value, read the way onnxruntime reads it, or null. An entry
 * with a second ':' gets its own message: onnxruntime would take a shorter name than the one meant.
 */
function shapesProblem(option: string, value: string): string | null {
  for (const entry of value.split(',')) {
    const colon = entry.indexOf(':');
    if (colon > 0 && entry.indexOf(':', colon + 1) >= 0) {
      return `${option}: onnxruntime takes an input name up to the first ":" and has no quoting, so ${JSON.stringify(entry)} names input ${JSON.stringify(entry.slice(0, colon))}`;
    }
    if (!/^[^:]+:\d+(x\d+)*$/.test(entry)) return `${option} must look like input:1x3x112x112`;
  }
  return null;
}

/**
 * A `trt_profile_*_shapes` entry `name:dim1xdim2...` for onnxruntime's TensorRT EP (and Triton, which
 * passes it on). The name is written as it is, since onnxruntime strips nothing; a name it would split
 * (',' or ':', see the module comment) is FACEOPT_ERR_TENSOR_NAME.
 */
export function ortShapeSpec(input: string, dims: readonly number[]): string {
  const reason = input.includes(',')
    ? 'onnxruntime splits trt_profile_*_shapes at every "," and has no quoting (trtexec splits its shape lists there too)'
    : input.includes(':')
      ? 'onnxruntime takes the input name in trt_profile_*_shapes up to the first ":" and has no quoting (trtexec can take such a name, onnxruntime cannot)'
      : null;
  if (reason) throw new FaceoptError('FACEOPT_ERR_TENSOR_NAME', { name: JSON.stringify(input), target: "onnxruntime's TensorRT EP options (ort-tensorrt.json, Triton's config.pbtxt)", reason });
  return `${input}:${dims.join('x')}`;
}

/** Check one options object: known names, values of the right kind, and no calibration table on Q/DQ. */
export function checkOrtOptions(options: Record<string, unknown>, qdq: boolean): string[] {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(options)) {
    const kind = ORT_TENSORRT_OPTIONS[k];
    if (!kind) { problems.push(`${k} is not a TensorRT EP option`); continue; }
    if (typeof v !== 'string') { problems.push(`${k} must be a string value`); continue; }
    if (kind === 'bool' && v !== '0' && v !== '1') problems.push(`${k} must be "0" or "1"`);
    if (kind === 'int' && !/^-?\d+$/.test(v)) problems.push(`${k} must be an integer`);
    if (kind === 'shapes') {
      const problem = shapesProblem(k, v);
      if (problem) problems.push(problem);
    }
  }
  if (qdq && options.trt_int8_calibration_table_name) problems.push('a calibration table cannot be used with a Q/DQ graph (TensorRT refuses it)');
  if (options.trt_int8_calibration_table_name && options.trt_int8_enable !== '1') problems.push('a calibration table needs trt_int8_enable=1');
  return problems;
}

export interface OrtPlanInput {
  precision: Precision;
  profile: ShapeProfile;
  dynamic: boolean;
  workspaceMiB: number;
  optimizationLevel: number;
  files: { float: string; qdq?: string; calibrationCache?: string };
}

/** The ort-tensorrt.json content for a bundle. */
export function buildOrtTensorrtFile(input: OrtPlanInput): OrtTensorrtFile {
  const common: Record<string, string> = {
    trt_max_workspace_size: String(input.workspaceMiB * 1024 * 1024),
    trt_engine_cache_enable: '1',
    trt_engine_cache_path: 'ort-engines',
    trt_timing_cache_enable: '1',
    trt_timing_cache_path: 'ort-engines',
    trt_builder_optimization_level: String(input.optimizationLevel),
  };
  if (input.dynamic) {
    common.trt_profile_min_shapes = ortShapeSpec(input.profile.input, input.profile.min);
    common.trt_profile_opt_shapes = ortShapeSpec(input.profile.input, input.profile.opt);
    common.trt_profile_max_shapes = ortShapeSpec(input.profile.input, input.profile.max);
  }
  const notes = [
    'Values are strings; pass them as TensorRT EP provider options (Python: providers=[("TensorrtExecutionProvider", options), "CUDAExecutionProvider"]).',
    'Paths are relative to this folder; faceopt resolves them when it loads this file.',
    'onnxruntime-node passes only device_id to the TensorRT EP, so faceopt serve/evaluate run these graphs with TensorRT defaults; apply the options from Python/C++ or Triton.',
  ];
  if (input.precision === 'int8') {
    const dflt: OrtVariant = { model: input.files.qdq!, qdq: true, providerOptions: { trt_int8_enable: '1', trt_fp16_enable: '1', ...common } };
    const alternatives: Record<string, OrtVariant> = {};
    if (input.files.calibrationCache) {
      alternatives['calibration-table'] = {
        model: input.files.float, qdq: false,
        providerOptions: {
          trt_int8_enable: '1', trt_fp16_enable: '1', ...common,
          trt_engine_cache_path: 'ort-engines-calibrated', trt_timing_cache_path: 'ort-engines-calibrated',
          trt_int8_calibration_table_name: 'calibration.cache', trt_int8_use_native_calibration_table: '1',
        },
      };
      notes.push('calibration-table: onnxruntime reads the table from trt_engine_cache_path, so the bundle keeps a copy at ort-engines-calibrated/calibration.cache.');
    }
    return { schemaVersion: 1, precision: 'int8', default: dflt, alternatives, notes };
  }
  const opts = input.precision === 'fp16' ? { trt_fp16_enable: '1', ...common } : { ...common };
  return { schemaVersion: 1, precision: input.precision, default: { model: input.files.float, qdq: false, providerOptions: opts }, alternatives: {}, notes };
}

const bad = (file: string, field: string, expected: string, received: unknown): never => {
  throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: `${field} in ${file}`, expected, received: String(received) });
};

export interface LoadedTensorrtOptions {
  /** Absolute path of the model the variant runs. */
  modelPath: string;
  /** Options with paths made absolute. */
  providerOptions: Record<string, string>;
  variant: string;
  precision: Precision;
}

/**
 * Read `<dir>/ort-tensorrt.json`, validate every option against the table and the Q/DQ rule (checked
 * on the model file itself, not only on the flag in the JSON), and return the options of `variant`
 * ('default' or an alternative's name) with absolute paths.
 */
export async function loadTensorrtProviderOptions(dir: string, variant = 'default'): Promise<LoadedTensorrtOptions> {
  const file = path.join(dir, 'ort-tensorrt.json');
  requireFile(file);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    return bad(file, 'the file', 'JSON', (e as Error).message);
  }
  const f = raw as Partial<OrtTensorrtFile>;
  if (f.schemaVersion !== 1) bad(file, 'schemaVersion', '1', f.schemaVersion);
  const v = variant === 'default' ? f.default : f.alternatives?.[variant];
  if (!v) return bad(file, 'variant', ['default', ...Object.keys(f.alternatives ?? {})].join(' | '), variant);
  if (typeof v.model !== 'string' || path.isAbsolute(v.model) || v.model.includes('..')) bad(file, `${variant}.model`, 'a file name inside the bundle', v.model);
  const modelPath = path.join(dir, v.model);
  requireFile(modelPath);
  const model = loadModel(modelPath);
  const hasQdq = model.graph.nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
  const problems = checkOrtOptions((v.providerOptions ?? {}) as Record<string, unknown>, hasQdq);
  if (problems.length) {
    if (problems.some((p) => p.startsWith('a calibration table cannot'))) {
      throw new FaceoptError('FACEOPT_ERR_CALIBRATION_CACHE', { path: file, reason: `${v.model} has Q/DQ nodes, and TensorRT refuses a calibration table on such a graph` });
    }
    bad(file, `${variant}.providerOptions`, 'TensorRT EP options (see docs/tensorrt.md)', problems.join('; '));
  }
  const providerOptions = { ...v.providerOptions };
  for (const k of PATH_OPTIONS) if (providerOptions[k]) providerOptions[k] = path.resolve(dir, providerOptions[k]!);
  return { modelPath, providerOptions, variant, precision: (f.precision ?? 'fp32') as Precision };
}

/**
 * The check `--provider tensorrt` callers run first: FACEOPT_ERR_PROVIDER_UNAVAILABLE (naming what
 * is available) unless this onnxruntime-node has a usable TensorRT execution provider.
 */
export function requireTensorrtProvider(): void {
  requireProvider('tensorrt');
}
