/**
 * Input names in profile shape specs, checked against how each consumer splits the text (mirrors of the
 * parsers below, from their sources):
 *  - trtexec (NVIDIA/TensorRT samples/common/sampleOptions.cpp, getShapesBuild/getShapesInference and
 *    splitNameAndValue): the list is split at every ',' first; then a name in single quotes is taken
 *    whole (exactly two quotes allowed), otherwise the name is everything before the LAST ':'.
 *  - onnxruntime's TensorRT EP, which Triton's onnxruntime backend hands its parameters to
 *    (onnxruntime/core/providers/tensorrt/tensorrt_execution_provider_utils.h, ParseProfileShapes and
 *    MakeInputNameShapePair): split at every ',', the name is everything before the FIRST ':', the rest
 *    up to a next ':' is split at 'x'; no quoting at all.
 * A name either round-trips through the consumer's parser or is refused with FACEOPT_ERR_TENSOR_NAME.
 */
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { buildLines } from '../../pipeline/tensorrt/build-script.js';
import { buildOrtTensorrtFile, checkOrtOptions, ortShapeSpec, type OrtPlanInput } from '../../pipeline/tensorrt/ort-options.js';
import { shapeSpec } from '../../pipeline/tensorrt/trtexec.js';
import { tritonConfig, type TritonInput } from '../../pipeline/tensorrt/triton.js';

/** trtexec's reading of one shape list (the 10.x+ splitNameAndValue with its quote rule). */
function trtexecParse(list: string): [string, number[]][] {
  return list.split(',').map((s) => {
    const quoted = s.split("'");
    let name: string;
    let value: string;
    if (quoted.length !== 1) {
      if (quoted.length !== 3) throw new Error(`Found invalid number of 's when parsing ${s}`);
      name = quoted[0]! + quoted[1]!;
      value = quoted[2]!.slice(1);
    } else {
      const parts = s.split(':');
      name = parts.slice(0, -1).join(':');
      value = parts[parts.length - 1]!;
    }
    return [name.replace(/'/g, ''), value.split('x').map(Number)];
  });
}

/** onnxruntime's reading of one trt_profile_*_shapes value (std::getline on ',' then ':' then 'x'). */
function ortParse(list: string): [string, number[]][] {
  return list.split(',').map((s) => {
    const [name, shape = ''] = s.split(':');
    return [name!, shape.split('x').map((v) => Number.parseInt(v, 10))];
  });
}

function codedError(f: () => unknown): Error {
  try { f(); } catch (e) { return e as Error; }
  throw new Error('expected an error');
}

const DIMS = [1, 3, 112, 112];
const PLAN: OrtPlanInput = {
  precision: 'fp16', dynamic: true, workspaceMiB: 64, optimizationLevel: 3,
  profile: { input: 'input.1', min: DIMS, opt: [8, 3, 112, 112], max: [32, 3, 112, 112] },
  files: { float: 'model.onnx' },
};
const TRITON: TritonInput = {
  modelName: 'm', precision: 'fp16', input: { name: 'input.1', dims: [3, 112, 112] }, outputs: [{ name: 'out', dims: [512] }],
  maxBatchSize: 32, preferredBatchSizes: [8], maxQueueDelayMicroseconds: 100, instances: 1, workspaceBytes: 1 << 20,
  optimizationLevel: 3, profile: PLAN.profile, cacheDir: '/cache',
};
const profileFor = (input: string) => ({ ...PLAN.profile, input });

describe('trtexec shape specs', () => {
  it.each(['input.1', 'input:0', 'a:b:c', 'x y', 'data-0/1', 'é'])('%j is read back by trtexec as written', (name) => {
    expect(trtexecParse(shapeSpec(name, DIMS))).toEqual([[name, DIMS]]);
  });

  it.each([
    ['a,b', /trtexec splits the shape list at every ","/],
    ["it's", /quote/],
  ])('%j is refused with FACEOPT_ERR_TENSOR_NAME (trtexec cannot be given it)', (name, msg) => {
    const e = codedError(() => shapeSpec(name, DIMS));
    expect(isFaceoptError(e, 'FACEOPT_ERR_TENSOR_NAME'), String(e)).toBe(true);
    expect(e.message).toMatch(msg);
    expect(e.message).toContain(JSON.stringify(name));
    expect(e.message).toMatch(/Rename the input/);
  });

  it('a bundle for a name with "," stops at the trtexec lines instead of writing one that cannot work', () => {
    const e = codedError(() => buildLines({ name: 'm', ...PLAN, profile: profileFor('a,b') }));
    expect(isFaceoptError(e, 'FACEOPT_ERR_TENSOR_NAME'), String(e)).toBe(true);
  });
});

describe('onnxruntime TensorRT EP / Triton profile shapes', () => {
  it.each(['input.1', 'x y', 'data-0/1', "it's", 'é'])('%j is written unquoted and read back by onnxruntime as written', (name) => {
    expect(ortShapeSpec(name, DIMS)).toBe(`${name}:1x3x112x112`);
    expect(ortParse(ortShapeSpec(name, DIMS))).toEqual([[name, DIMS]]);
  });

  it.each([
    ['input:0', /first ":"/],
    ['a,b', /every ","/],
  ])('%j is refused with FACEOPT_ERR_TENSOR_NAME, in ort-tensorrt.json and in config.pbtxt', (name, msg) => {
    for (const f of [() => ortShapeSpec(name, DIMS), () => buildOrtTensorrtFile({ ...PLAN, profile: profileFor(name) }), () => tritonConfig({ ...TRITON, profile: profileFor(name) })]) {
      const e = codedError(f);
      expect(isFaceoptError(e, 'FACEOPT_ERR_TENSOR_NAME'), String(e)).toBe(true);
      expect(e.message).toMatch(msg);
      expect(e.message).toMatch(/Rename the input/);
    }
  });

  it('every ort-tensorrt.json faceopt writes passes its own check, and onnxruntime reads the profile faceopt meant', () => {
    for (const name of ['input.1', 'input:0', 'a,b', "it's", 'x y', 'é']) {
      let file;
      try { file = buildOrtTensorrtFile({ ...PLAN, profile: profileFor(name) }); } catch (e) {
        expect(isFaceoptError(e, 'FACEOPT_ERR_TENSOR_NAME'), `${name}: ${String(e)}`).toBe(true);
        continue;
      }
      const o = file.default.providerOptions;
      expect(checkOrtOptions(o, false), name).toEqual([]);
      expect(ortParse(o.trt_profile_min_shapes!), name).toEqual([[name, PLAN.profile.min]]);
      expect(ortParse(o.trt_profile_max_shapes!), name).toEqual([[name, PLAN.profile.max]]);
    }
  });

  it('a fixed-size input writes no profile, so any name is fine there', () => {
    expect(buildOrtTensorrtFile({ ...PLAN, dynamic: false, profile: profileFor('input:0') }).default.providerOptions.trt_profile_min_shapes).toBeUndefined();
    expect((tritonConfig({ ...TRITON, maxBatchSize: 0, profile: null, input: { name: 'input:0', dims: DIMS } }) as any).input[0].name).toBe('input:0');
  });

  it('checkOrtOptions says why a quoted or ":"-named profile cannot be read by onnxruntime', () => {
    expect(checkOrtOptions({ trt_profile_min_shapes: "'input:0':1x3" }, false)).toEqual([
      'trt_profile_min_shapes: onnxruntime takes an input name up to the first ":" and has no quoting, so "\'input:0\':1x3" names input "\'input"',
    ]);
    expect(checkOrtOptions({ trt_profile_min_shapes: 'input.1:1x3,input.2:4' }, false)).toEqual([]);
    expect(checkOrtOptions({ trt_profile_min_shapes: 'input.1:1x3x' }, false)).toEqual(['trt_profile_min_shapes must look like input:1x3x112x112']);
  });
});
