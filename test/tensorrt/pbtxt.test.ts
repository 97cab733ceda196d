import { describe, expect, it } from 'vitest';
import { parsePbtxt, printPbtxt } from '../../pipeline/tensorrt/pbtxt.js';
import { renderTritonConfig, tritonConfig, type TritonInput } from '../../pipeline/tensorrt/triton.js';

const sample: TritonInput = {
  modelName: 'w600k_mbf', precision: 'int8', input: { name: 'input.1', dims: [3, 112, 112] }, outputs: [{ name: '683', dims: [512] }],
  maxBatchSize: 32, preferredBatchSizes: [4, 8, 16, 32], maxQueueDelayMicroseconds: 2000, instances: 2, workspaceBytes: 1 << 30,
  optimizationLevel: 3, profile: { input: 'input.1', min: [1, 3, 112, 112], opt: [8, 3, 112, 112], max: [32, 3, 112, 112] }, cacheDir: '/models/w600k_mbf/trt-cache',
};

describe('protobuf text format (Triton ModelConfig subset)', () => {
  it('parses what it prints back to the same object', () => {
    const text = renderTritonConfig(sample);
    expect(parsePbtxt(text)).toEqual(tritonConfig(sample));
  });

  it('reads the syntax variants Triton configs use', () => {
    const c = parsePbtxt(`
      name: "a" # comment
      platform: 'onnxruntime_onnx'
      max_batch_size: 8
      input [ { name: "x", data_type: TYPE_FP32, dims: [ 3, 112, 112 ] } ]
      input { name: "y" data_type: TYPE_FP32 dims: 1 dims: -1 }
      output: < name: "z" data_type: TYPE_FP16 dims: [ 4 ] >
      dynamic_batching { preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 100 }
      optimization { execution_accelerators { gpu_execution_accelerator : [ { name : "tensorrt" parameters { key: "precision_mode" value: "FP16" } } ] } }
      parameters { key: "k" value: { string_value: "v" } }
    `);
    expect(c.input).toEqual([{ name: 'x', data_type: 'TYPE_FP32', dims: [3, 112, 112] }, { name: 'y', data_type: 'TYPE_FP32', dims: [1, -1] }]);
    expect(c.output).toEqual([{ name: 'z', data_type: 'TYPE_FP16', dims: [4] }]);
    expect((c.optimization as any).execution_accelerators.gpu_execution_accelerator[0].parameters).toEqual({ precision_mode: 'FP16' });
    expect(c.parameters).toEqual({ k: { string_value: 'v' } });
  });

  it.each([
    ['name: "a"\nname: "b"', /name is set twice/],
    ['nmae: "a"', /has no field nmae/],
    ['max_batch_size: "8"', /expected a number/],
    ['input { data_type: TYPE_FLOAT32 }', /not one of/],
    ['name: "unterminated', /unterminated string/],
    ['input { name: "x" ', /expected }/],
    ['max_batch_size: 1.5', /not an integer/],
    ['dynamic_batching { max_queue_delay_microseconds: -1 }', /must be >= 0/],
    ['optimization { execution_accelerators { gpu_execution_accelerator { name: "t" parameters { key: "a" key: "b" } } } }', /sets key twice/],
    ['input { name: "x" } }', /expected a field name/],
  ])('refuses %j', (text, msg) => {
    expect(() => parsePbtxt(text)).toThrow(msg);
  });

  it('printPbtxt refuses a field outside the schema', () => {
    expect(() => printPbtxt({ nmae: 'x' })).toThrow(/no field nmae/);
  });

  it('the TensorRT accelerator parameters and batching follow the graph', () => {
    const c = tritonConfig(sample) as any;
    expect(c.platform).toBe('onnxruntime_onnx');
    expect(c.dynamic_batching).toEqual({ preferred_batch_size: [4, 8, 16, 32], max_queue_delay_microseconds: 2000 });
    const p = c.optimization.execution_accelerators.gpu_execution_accelerator[0].parameters;
    expect(p).toMatchObject({ precision_mode: 'INT8', max_workspace_size_bytes: String(1 << 30), trt_engine_cache_enable: '1', trt_profile_max_shapes: 'input.1:32x3x112x112' });
    const fixed = tritonConfig({ ...sample, maxBatchSize: 0, profile: null, input: { name: 'input.1', dims: [1, 3, 640, 640] } }) as any;
    expect(fixed.dynamic_batching).toBeUndefined();
    expect(fixed.optimization.execution_accelerators.gpu_execution_accelerator[0].parameters.trt_profile_min_shapes).toBeUndefined();
  });

  it('the profile starts at batch 1 whatever --batch MIN says: Triton sends any batch up to max_batch_size (batch 1 fell outside 2:4:16)', () => {
    const c = tritonConfig({ ...sample, maxBatchSize: 16, profile: { input: 'input.1', min: [2, 3, 112, 112], opt: [4, 3, 112, 112], max: [16, 3, 112, 112] } }) as any;
    const p = c.optimization.execution_accelerators.gpu_execution_accelerator[0].parameters;
    expect(p).toMatchObject({ trt_profile_min_shapes: 'input.1:1x3x112x112', trt_profile_opt_shapes: 'input.1:4x3x112x112', trt_profile_max_shapes: 'input.1:16x3x112x112' });
  });
});

describe('map keys that are names of Object.prototype', () => {
  it('reads "toString", "constructor" and "__proto__" as plain keys, and prints them back', () => {
    const text = 'parameters { key: "toString" value: { string_value: "a" } }\nparameters { key: "__proto__" value: { string_value: "b" } }\nparameters { key: "constructor" value: { string_value: "c" } }\n';
    const c = parsePbtxt(text);
    const params = c.parameters as Record<string, unknown>;
    expect(Object.keys(params)).toEqual(['toString', '__proto__', 'constructor']);
    expect(params.toString).toEqual({ string_value: 'a' });
    expect(Object.getOwnPropertyDescriptor(params, '__proto__')?.value).toEqual({ string_value: 'b' });
    expect(parsePbtxt(printPbtxt(c))).toEqual(c);
  });

  it('still refuses a key given twice', () => {
    expect(() => parsePbtxt('parameters { key: "toString" value: { string_value: "a" } }\nparameters { key: "toString" value: { string_value: "b" } }\n')).toThrow(/has key toString twice/);
  });
});
