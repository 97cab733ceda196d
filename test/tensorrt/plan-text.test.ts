/**
 * Exact text and values of what a TensorRT bundle tells other tools: the trtexec flag checker, the
 * onnxruntime TensorRT EP options (ort-tensorrt.json) and their loader, and the Triton config.pbtxt
 * (ModelConfig text format). Expected values are worked out by hand from the inputs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { makeNode } from '../../pipeline/onnx/index.js';
import { buildOrtTensorrtFile, checkOrtOptions, loadTensorrtProviderOptions, type OrtPlanInput } from '../../pipeline/tensorrt/ort-options.js';
import { parsePbtxt, printPbtxt } from '../../pipeline/tensorrt/pbtxt.js';
import { checkTrtexecArgs } from '../../pipeline/tensorrt/trtexec.js';
import { preferredBatchSizes, renderTritonConfig, type TritonInput } from '../../pipeline/tensorrt/triton.js';
import { tinyModel } from '../onnx/tiny.js';

describe('checkTrtexecArgs: what trtexec itself would refuse', () => {
  it.each([['--fp16'], ['--best'], ['--int8']])('--stronglyTyped with %s on TensorRT 10', (flag) => {
    expect(checkTrtexecArgs(['--onnx=m.onnx', '--stronglyTyped', flag], '10')).toEqual(['--stronglyTyped cannot be combined with precision flags']);
  });

  it('a flag written with ":" instead of "=" is an unknown flag (trtexec splits name and value at "=" only)', () => {
    expect(checkTrtexecArgs(['--onnx:model.onnx'], '10')).toEqual(['--onnx:model.onnx is not a documented trtexec flag']);
    expect(checkTrtexecArgs(['--memPoolSize=workspace:2048'], '10')).toEqual([]);
  });
});

const RECOGNIZER: OrtPlanInput = {
  precision: 'int8', dynamic: true, workspaceMiB: 2048, optimizationLevel: 4,
  profile: { input: 'input.1', min: [1, 3, 112, 112], opt: [8, 3, 112, 112], max: [32, 3, 112, 112] },
  files: { float: 'model.onnx', qdq: 'model.qdq.onnx', calibrationCache: 'calibration.cache' },
};

describe('ort-tensorrt.json content', () => {
  const common = {
    trt_max_workspace_size: '2147483648', // 2048 MiB in bytes
    trt_engine_cache_enable: '1', trt_engine_cache_path: 'ort-engines',
    trt_timing_cache_enable: '1', trt_timing_cache_path: 'ort-engines',
    trt_builder_optimization_level: '4',
  };
  const profile = {
    trt_profile_min_shapes: 'input.1:1x3x112x112',
    trt_profile_opt_shapes: 'input.1:8x3x112x112',
    trt_profile_max_shapes: 'input.1:32x3x112x112',
  };

  it('int8 recognizer: the Q/DQ graph by default, the calibration table as the alternative, exact values', () => {
    const f = buildOrtTensorrtFile(RECOGNIZER);
    expect(f.default).toEqual({ model: 'model.qdq.onnx', qdq: true, providerOptions: { trt_int8_enable: '1', trt_fp16_enable: '1', ...common, ...profile } });
    expect(f.alternatives).toEqual({
      'calibration-table': {
        model: 'model.onnx', qdq: false,
        providerOptions: {
          trt_int8_enable: '1', trt_fp16_enable: '1', ...common, ...profile,
          trt_engine_cache_path: 'ort-engines-calibrated', trt_timing_cache_path: 'ort-engines-calibrated',
          trt_int8_calibration_table_name: 'calibration.cache', trt_int8_use_native_calibration_table: '1',
        },
      },
    });
  });

  it('fp16 fixed-size detector: fp16 enabled, no profile shapes; fp32: neither', () => {
    const det: OrtPlanInput = { ...RECOGNIZER, precision: 'fp16', dynamic: false, workspaceMiB: 1, optimizationLevel: 3, files: { float: 'model.onnx' } };
    const fp16 = buildOrtTensorrtFile(det);
    expect(fp16.default).toEqual({ model: 'model.onnx', qdq: false, providerOptions: { trt_fp16_enable: '1', ...common, trt_max_workspace_size: '1048576', trt_builder_optimization_level: '3' } });
    expect(fp16.alternatives).toEqual({});
    const fp32 = buildOrtTensorrtFile({ ...det, precision: 'fp32' });
    expect(fp32.default.providerOptions.trt_fp16_enable).toBeUndefined();
    expect(fp32.default.providerOptions.trt_int8_enable).toBeUndefined();
  });
});

describe('checkOrtOptions', () => {
  it('accepts "0" for a bool and a plain integer; refuses trailing units and a table without int8', () => {
    expect(checkOrtOptions({ trt_fp16_enable: '0', trt_int8_enable: '0', device_id: '0', trt_max_workspace_size: '1073741824' }, false)).toEqual([]);
    expect(checkOrtOptions({ trt_max_workspace_size: '1073741824B' }, false)).toEqual(['trt_max_workspace_size must be an integer']);
    expect(checkOrtOptions({ trt_fp16_enable: 'true' }, false)).toEqual(['trt_fp16_enable must be "0" or "1"']);
    expect(checkOrtOptions({ trt_int8_calibration_table_name: 'calibration.cache' }, false)).toEqual(['a calibration table needs trt_int8_enable=1']);
    expect(checkOrtOptions({ trt_int8_calibration_table_name: 'calibration.cache', trt_int8_enable: '1' }, false)).toEqual([]);
  });
});

describe('loadTensorrtProviderOptions', () => {
  let tmp: string;
  const tiny = () => tinyModel({ opset: 13, input: { name: 'x', shape: [1, 4] }, outputs: ['y'], nodes: [makeNode('Relu', ['x'], ['y'], 'r')] });
  beforeAll(async () => { tmp = await mkdtemp(path.join(tmpdir(), 'faceopt-ortopt-')); });
  afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

  it('makes both cache paths absolute inside the bundle', async () => {
    const dir = path.join(tmp, 'fp32');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'model.onnx'), tiny().toBytes());
    const f = buildOrtTensorrtFile({ ...RECOGNIZER, precision: 'fp32', files: { float: 'model.onnx' } });
    writeFileSync(path.join(dir, 'ort-tensorrt.json'), JSON.stringify(f));
    const loaded = await loadTensorrtProviderOptions(dir);
    expect(loaded.modelPath).toBe(path.join(dir, 'model.onnx'));
    expect(loaded.providerOptions.trt_engine_cache_path).toBe(path.join(dir, 'ort-engines'));
    expect(loaded.providerOptions.trt_timing_cache_path).toBe(path.join(dir, 'ort-engines'));
    expect(loaded.precision).toBe('fp32');
  });

  it('refuses a model path that leaves the bundle, even when the file exists', async () => {
    const dir = path.join(tmp, 'escape');
    mkdirSync(dir);
    writeFileSync(path.join(tmp, 'outside.onnx'), tiny().toBytes());
    const f = buildOrtTensorrtFile({ ...RECOGNIZER, precision: 'fp32', files: { float: '../outside.onnx' } });
    writeFileSync(path.join(dir, 'ort-tensorrt.json'), JSON.stringify(f));
    const err = await loadTensorrtProviderOptions(dir).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT'), String(err)).toBe(true);
    expect((err as Error).message).toContain('a file name inside the bundle');
  });
});

describe('protobuf text format: strings, escapes, errors', () => {
  it('prints names with a quote and a backslash escaped, and reads them back', () => {
    const name = 'a"b\\c';
    const text = printPbtxt({ name });
    expect(text).toBe('name: "a\\"b\\\\c"\n');
    expect(parsePbtxt(text)).toEqual({ name });
  });

  it('escapes map keys too (ModelConfig.parameters)', () => {
    const cfg = { parameters: { 'k"1': { string_value: 'v\\1' } } };
    const text = printPbtxt(cfg);
    expect(text).toBe('parameters { key: "k\\"1" value { string_value: "v\\\\1" } }\n');
    expect(parsePbtxt(text)).toEqual(cfg);
  });

  it('reads C escapes and concatenates adjacent string literals', () => {
    expect(parsePbtxt('name: "a\\\\b\\tc"')).toEqual({ name: 'a\\b\tc' });
    expect(parsePbtxt('name: "ab" \'cd\'\n  "ef"')).toEqual({ name: 'abcdef' });
  });

  it('reads 1 and 0 as bools', () => {
    expect(parsePbtxt('input { name: "x" is_shape_tensor: 1 optional: 0 }').input).toEqual([{ name: 'x', is_shape_tensor: true, optional: false }]);
  });

  it.each([
    ['name: "a\nb"', /newline inside a string/],
    ['max_batch_size: 4294967296', /max_batch_size: 4294967296 is out of range/],
    ['parameters { key: "k" value { string_value: "a" } }\nparameters { key: "k" value { string_value: "b" } }', /parameters has key k twice/],
  ])('refuses %j', (text, msg) => {
    expect(() => parsePbtxt(text)).toThrow(msg);
  });

  it('names the line and column of the offending token', () => {
    expect(() => parsePbtxt('name: "a"\nplatform: "b"\n  nmae: 1')).toThrow(/config\.pbtxt line 3 column 3 .*ModelConfig has no field nmae/);
  });
});

describe('Triton config.pbtxt', () => {
  const input: TritonInput = {
    modelName: 'w600k_mbf', precision: 'int8', input: { name: 'input.1', dims: [3, 112, 112] }, outputs: [{ name: '683', dims: [512] }],
    maxBatchSize: 32, preferredBatchSizes: [4, 8, 16, 32], maxQueueDelayMicroseconds: 2000, instances: 2, workspaceBytes: 1 << 30,
    optimizationLevel: 3, profile: { input: 'input.1', min: [2, 3, 112, 112], opt: [8, 3, 112, 112], max: [32, 3, 112, 112] }, cacheDir: '/models/w600k_mbf/trt-cache',
  };

  it('the whole text, field by field', () => {
    expect(renderTritonConfig(input)).toBe(`# Triton model configuration written by faceopt (ONNX Runtime backend + TensorRT accelerator).
name: "w600k_mbf"
platform: "onnxruntime_onnx"
max_batch_size: 32
input {
  name: "input.1"
  data_type: TYPE_FP32
  dims: [ 3, 112, 112 ]
}
output {
  name: "683"
  data_type: TYPE_FP32
  dims: [ 512 ]
}
optimization {
  execution_accelerators {
    gpu_execution_accelerator {
      name: "tensorrt"
      parameters { key: "precision_mode" value: "INT8" }
      parameters { key: "max_workspace_size_bytes" value: "1073741824" }
      parameters { key: "trt_engine_cache_enable" value: "1" }
      parameters { key: "trt_engine_cache_path" value: "/models/w600k_mbf/trt-cache" }
      parameters { key: "trt_timing_cache_enable" value: "1" }
      parameters { key: "trt_timing_cache_path" value: "/models/w600k_mbf/trt-cache" }
      parameters { key: "trt_builder_optimization_level" value: "3" }
      parameters { key: "trt_profile_min_shapes" value: "input.1:1x3x112x112" }
      parameters { key: "trt_profile_opt_shapes" value: "input.1:8x3x112x112" }
      parameters { key: "trt_profile_max_shapes" value: "input.1:32x3x112x112" }
    }
  }
}
dynamic_batching {
  preferred_batch_size: [ 4, 8, 16, 32 ]
  max_queue_delay_microseconds: 2000
}
instance_group {
  kind: KIND_GPU
  count: 2
}
`);
  });

  it('preferred batch sizes: powers of two from min(4, max) up to max, plus the opt batch', () => {
    expect(preferredBatchSizes(8, 32)).toEqual([4, 8, 16, 32]);
    expect(preferredBatchSizes(6, 32)).toEqual([4, 6, 8, 16, 32]);
    expect(preferredBatchSizes(1, 2)).toEqual([1, 2]);
    expect(preferredBatchSizes(3, 3)).toEqual([3]);
  });
});
