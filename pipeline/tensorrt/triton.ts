/**
 * A Triton Inference Server model repository entry for a bundle: `triton/<model>/config.pbtxt` for
 * the ONNX Runtime backend (`platform: "onnxruntime_onnx"`) with the TensorRT execution accelerator
 * (parameter names from the onnxruntime_backend README: precision_mode, max_workspace_size_bytes,
 * trt_engine_cache_enable/path, trt_timing_cache_*, trt_builder_optimization_level,
 * trt_profile_*_shapes), dynamic batching with preferred sizes for batched recognizers, instance
 * groups, and input/output dims without the batch dim when max_batch_size > 0 (model_config.proto).
 */
import type { Precision } from './build-script.js';
import { type PbMessage, printPbtxt } from './pbtxt.js';
import { ortShapeSpec } from './ort-options.js';
import type { ShapeProfile } from './trtexec.js';

export interface TritonInput {
  /** Model name in the repository (folder name). */
  modelName: string;
  precision: Precision;
  input: { name: string; dims: readonly number[] };
  outputs: { name: string; dims: readonly number[] }[];
  /** 0 for fixed-batch graphs (dims then include the batch), else the profile's max batch. */
  maxBatchSize: number;
  preferredBatchSizes: readonly number[];
  maxQueueDelayMicroseconds: number;
  instances: number;
  workspaceBytes: number;
  optimizationLevel: number;
  /** Profile for a dynamic batch (written as trt_profile_*_shapes), or null. */
  profile: ShapeProfile | null;
  /** Where the TensorRT engine/timing caches go inside the server's filesystem. */
  cacheDir: string;
}

const PRECISION_MODE: Record<Precision, string> = { int8: 'INT8', fp16: 'FP16', fp32: 'FP32' };

/** The config as a plain object following Triton's ModelConfig schema. */
export function tritonConfig(t: TritonInput): PbMessage {
  const params: Record<string, string> = {
    precision_mode: PRECISION_MODE[t.precision],
    max_workspace_size_bytes: String(t.workspaceBytes),
    trt_engine_cache_enable: '1',
    trt_engine_cache_path: t.cacheDir,
    trt_timing_cache_enable: '1',
    trt_timing_cache_path: t.cacheDir,
    trt_builder_optimization_level: String(t.optimizationLevel),
  };
  if (t.profile) {
    // Triton sends any batch from 1 to max_batch_size (a lone request, a batch not yet full): the profile
    // starts at 1 whatever --batch MIN says (batch 1 fell outside it and failed in the TensorRT EP)
    const min = t.maxBatchSize > 0 ? [1, ...t.profile.min.slice(1)] : t.profile.min;
    // the onnxruntime backend hands these to onnxruntime's TensorRT EP, which has no quoting (not trtexec's spec)
    params.trt_profile_min_shapes = ortShapeSpec(t.profile.input, min);
    params.trt_profile_opt_shapes = ortShapeSpec(t.profile.input, t.profile.opt);
    params.trt_profile_max_shapes = ortShapeSpec(t.profile.input, t.profile.max);
  }
  const config: PbMessage = {
    name: t.modelName,
    platform: 'onnxruntime_onnx',
    max_batch_size: t.maxBatchSize,
    input: [{ name: t.input.name, data_type: 'TYPE_FP32', dims: [...t.input.dims] }],
    output: t.outputs.map((o) => ({ name: o.name, data_type: 'TYPE_FP32', dims: [...o.dims] })),
    instance_group: [{ count: t.instances, kind: 'KIND_GPU' }],
    optimization: { execution_accelerators: { gpu_execution_accelerator: [{ name: 'tensorrt', parameters: params }] } },
  };
  if (t.maxBatchSize > 0) {
    config.dynamic_batching = {
      preferred_batch_size: t.preferredBatchSizes.filter((b) => b <= t.maxBatchSize),
      max_queue_delay_microseconds: t.maxQueueDelayMicroseconds,
    };
  }
  return config;
}

/** config.pbtxt text. */
export function renderTritonConfig(t: TritonInput): string {
  return `# Triton model configuration written by faceopt (ONNX Runtime backend + TensorRT accelerator).\n${printPbtxt(tritonConfig(t))}`;
}

/** Preferred batch sizes: powers of two up to the max, plus the opt batch. */
export function preferredBatchSizes(opt: number, max: number): number[] {
  const out = new Set<number>();
  for (let b = 1; b <= max; b *= 2) if (b >= Math.min(4, max)) out.add(b);
  out.add(opt);
  return [...out].filter((b) => b >= 1 && b <= max).sort((a, b) => a - b);
}
