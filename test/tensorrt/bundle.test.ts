import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { sha256 } from '../../pipeline/fsutil.js';
import { loadModel } from '../../pipeline/onnx/model.js';
import { availableProviders } from '../../pipeline/runtime.js';
import { parseCalibrationCache } from '../../pipeline/tensorrt/calibration-cache.js';
import { ORT_TENSORRT_OPTIONS, checkOrtOptions, loadTensorrtProviderOptions, requireTensorrtProvider } from '../../pipeline/tensorrt/ort-options.js';
import { parsePbtxt } from '../../pipeline/tensorrt/pbtxt.js';
import { writeTensorrtBundle, type TensorrtPlan } from '../../pipeline/tensorrt/plan.js';
import { probeModel } from '../../pipeline/tensorrt/probe.js';
import { faceopt } from '../helpers/cli.js';
import { TENSORRT_REWRITES } from '../../pipeline/cli/optimize-tensorrt.js';
import { prepareFloatGraph } from '../../pipeline/quantize/index.js';
import { createStats, saveStats } from '../../pipeline/calibrate/stats.js';
import { resolveSettings } from '../../pipeline/calibrate/collectors.js';
import { fixedBatchMbf, preparedFixture, syntheticStats } from './helpers.js';

let tmp: string;
let rec: TensorrtPlan & { dir: string };
let det: TensorrtPlan & { dir: string };

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'faceopt-trt-'));
  const mbf = fixedBatchMbf();
  const stats = await syntheticStats(mbf, [1, 3, 112, 112]);
  rec = await writeTensorrtBundle({ model: mbf, stats, outDir: path.join(tmp, 'mbf.trt'), precision: 'int8', role: 'recognizer', batch: { min: 1, opt: 8, max: 32 }, name: 'mbf' });
  det = await writeTensorrtBundle({ model: await preparedFixture('scrfd'), outDir: path.join(tmp, 'scrfd.trt'), precision: 'fp16', role: 'detector', detSize: [320, 320], name: 'scrfd' });
});
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

/** A fake trtexec that prints a TensorRT banner and records its arguments. */
function fakeBin(banner: number | null, extra: Record<string, string> = {}): string {
  const bin = path.join(tmp, `bin-${banner ?? 'none'}-${Object.keys(extra).join('-')}`);
  mkdirSync(bin, { recursive: true });
  if (banner !== null) {
    writeFileSync(path.join(bin, 'trtexec'), `#!/usr/bin/env bash\necho "&&&& RUNNING TensorRT.trtexec [TensorRT v${banner}] # trtexec $*"\n[ "$1" = --help ] && exit 0\nprintf '%s\\n' "$*" >> "$FAKE_LOG"\nfor a in "$@"; do case "$a" in --saveEngine=*) f="\${a#--saveEngine=}"; mkdir -p "$(dirname "$f")"; echo plan > "$f";; esac; done\n`);
  }
  for (const [name, body] of Object.entries(extra)) writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\n${body}\n`);
  for (const f of ['trtexec', ...Object.keys(extra)]) if (existsSync(path.join(bin, f))) chmodSync(path.join(bin, f), 0o755);
  return bin;
}

function buildSh(dir: string, args: string[], bin: string, env: Record<string, string> = {}) {
  const log = path.join(tmp, `log-${Math.random().toString(36).slice(2)}`);
  writeFileSync(log, '');
  const r = spawnSync('bash', [path.join(dir, 'build.sh'), ...args], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, FAKE_LOG: log, HOME: tmp, ...env } });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout, calls: readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) };
}

describe('bundle files and plan.json', () => {
  it('writes every file, and plan.json lists each with its sha256', async () => {
    const files = (await readdir(rec.dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => path.relative(rec.dir, path.join(d.parentPath, d.name))).sort();
    expect(files).toEqual(['README.md', 'build.sh', 'calibration.cache', 'model.onnx', 'model.qdq.onnx', 'ort-engines-calibrated/calibration.cache', 'ort-tensorrt.json', 'plan.json', 'triton/mbf/1/model.onnx', 'triton/mbf/config.pbtxt']);
    const plan = JSON.parse(readFileSync(path.join(rec.dir, 'plan.json'), 'utf8')) as TensorrtPlan;
    for (const [f, info] of Object.entries(plan.files)) expect(sha256(readFileSync(path.join(rec.dir, f))), f).toBe(info.sha256);
    expect(plan.quantization!.check.violations).toEqual([]);
    expect(plan.input).toMatchObject({ name: 'input.1', dims: ['batch', 3, 112, 112], dynamicBatch: true });
    expect(plan.rewrites.some((r) => r.includes('[1,-1] -> [0,-1]'))).toBe(true);
    expect(readFileSync(path.join(rec.dir, 'triton/mbf/1/model.onnx'))).toEqual(readFileSync(path.join(rec.dir, 'model.qdq.onnx')));
    expect(det.float16!.cpuRun.ok).toBe(true);
    expect(Object.keys(det.files)).toContain('model.fp16.onnx');
  });

  it('the Q/DQ and float graphs of the bundle load and run on CPU at the profile batch sizes', async () => {
    for (const b of [1, 32]) {
      const q = await probeModel(loadModel(path.join(rec.dir, 'model.qdq.onnx')), [b, 3, 112, 112]);
      expect(Object.values(q.dims)[0]).toEqual([b, 128]);
    }
  });

  it('refuses to replace a folder that is not a bundle, and replaces an earlier bundle', async () => {
    const foreign = path.join(tmp, 'foreign');
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, 'keep.txt'), 'x');
    const err = await writeTensorrtBundle({ model: fixedBatchMbf(), outDir: foreign, precision: 'fp32', role: 'recognizer' }).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    expect(readFileSync(path.join(foreign, 'keep.txt'), 'utf8')).toBe('x');
    const again = await writeTensorrtBundle({ model: fixedBatchMbf(), outDir: path.join(tmp, 'mbf.trt'), precision: 'fp32', role: 'recognizer', name: 'mbf' });
    expect(existsSync(path.join(again.dir, 'model.qdq.onnx'))).toBe(false);
    expect((await readdir(tmp)).some((f) => f.includes('.partial-') || f.includes('.old-'))).toBe(false);
    rec = await writeTensorrtBundle({ model: fixedBatchMbf(), stats: await syntheticStats(fixedBatchMbf(), [1, 3, 112, 112]), outDir: path.join(tmp, 'mbf.trt'), precision: 'int8', role: 'recognizer', name: 'mbf' });
  });

  it('refuses int8 without stats and bad profiles, naming the argument', async () => {
    const m = fixedBatchMbf();
    await expect(writeTensorrtBundle({ model: m, outDir: path.join(tmp, 'x'), precision: 'int8', role: 'recognizer' })).rejects.toThrow(/for stats/);
    await expect(writeTensorrtBundle({ model: m, outDir: path.join(tmp, 'x'), precision: 'fp32', role: 'recognizer', batch: { min: 4, opt: 2, max: 8 } })).rejects.toThrow(/MIN <= OPT <= MAX/);
    await expect(writeTensorrtBundle({ model: m, outDir: path.join(tmp, 'x'), precision: 'fp32', role: 'detector', detSize: [300, 300] })).rejects.toThrow(/multiple of 32/);
  });
});

describe('build.sh', () => {
  it('passes bash -n', () => {
    for (const d of [rec.dir, det.dir]) execFileSync('bash', ['-n', path.join(d, 'build.sh')]);
  });

  it.each([[8601, '8.6'], [100300, '10'], [110000, '11']] as const)('TensorRT banner v%d runs exactly the plan line for %s', (banner, line) => {
    const r = buildSh(rec.dir, [], fakeBin(banner));
    expect(r.code, r.stderr).toBe(0);
    const expected = rec.trtexec.find((t) => t.line === line && t.mode === 'qdq')!.command.replace(/^trtexec /, '');
    expect(r.calls).toEqual([expected]);
    expect(existsSync(path.join(rec.dir, 'engines/mbf.int8.plan'))).toBe(true);
  });

  it('calib mode on TensorRT 10 rewrites the cache header to the installed version, scales unchanged', () => {
    const r = buildSh(rec.dir, ['--mode', 'calib'], fakeBin(100300));
    expect(r.code, r.stderr).toBe(0);
    expect(r.calls[0]).toContain('--calib=engines/calibration.local.cache');
    const local = parseCalibrationCache(readFileSync(path.join(rec.dir, 'engines/calibration.local.cache'), 'utf8'));
    const orig = parseCalibrationCache(readFileSync(path.join(rec.dir, 'calibration.cache'), 'utf8'));
    expect(orig.version).toBe(8601);
    expect(local.version).toBe(100300);
    expect(local.entries).toEqual(orig.entries);
  });

  it('a float bundle\'s build.sh offers only its own mode: no calib help line, no TensorRT 11 calib arm (they said to use --mode qdq, which it does not have)', () => {
    const text = readFileSync(path.join(det.dir, 'build.sh'), 'utf8');
    expect(text).not.toContain('--mode calib');
    expect(text).not.toContain('use --mode qdq');
    expect(text).toContain('[--mode float]');
    const r = buildSh(det.dir, ['--mode', 'calib'], fakeBin(110000));
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('no line for TensorRT 11 in mode calib (modes: float)');
    expect(readFileSync(path.join(rec.dir, 'build.sh'), 'utf8')).toContain('--mode calib (TensorRT 8.6/10 only)');
  });

  it('outputs keep the graph\'s order, numeric names included (plan.json and Triton listed "443", "446", ... first)', async () => {
    const model = await preparedFixture('scrfd_dynamic');
    const plan = await writeTensorrtBundle({ model, outDir: path.join(tmp, 'scrfdd.trt'), precision: 'fp32', role: 'detector', detSize: [320, 256], name: 'scrfdd' });
    const graphOrder = model.graph.outputs.map((o) => o.name);
    expect(graphOrder.some((n) => /^\d+$/.test(n))).toBe(true);
    expect(plan.outputs.map((o) => o.name)).toEqual(graphOrder);
    const pbtxt = readFileSync(path.join(plan.dir, 'triton', 'scrfdd', 'config.pbtxt'), 'utf8');
    expect([...pbtxt.matchAll(/name: "([^"]+)"/g)].map((m) => m[1]).filter((n) => graphOrder.includes(n!))).toEqual(graphOrder);
  });

  it('a bare major version is that version .0.0 (10 -> cache header 100000, not 101000)', () => {
    const none = fakeBin(null, { python3: 'exit 1', 'dpkg-query': 'exit 1' });
    const r = buildSh(rec.dir, ['--mode', 'calib'], fakeBin(100300), { FACEOPT_TRT_VERSION: '10' });
    expect(r.code, r.stderr).toBe(0);
    expect(parseCalibrationCache(readFileSync(path.join(rec.dir, 'engines/calibration.local.cache'), 'utf8')).version).toBe(100000);
    const eight = buildSh(rec.dir, ['--dry-run'], none, { FACEOPT_TRT_VERSION: '8' });
    expect(eight.code).not.toBe(0); // 8.0: older than 8.6
    expect(eight.stderr).toMatch(/older than 8\.6/);
  });

  it('the calibration cache holds the activations the Q/DQ graph quantizes, none that it keeps float', async () => {
    const mbf = fixedBatchMbf();
    const stats = await syntheticStats(mbf, [1, 3, 112, 112]);
    const firstConv = mbf.graph.nodes.find((n) => n.opType === 'Conv')!.name!;
    const ex = await writeTensorrtBundle({ model: mbf, stats, outDir: path.join(tmp, 'mbf-ex.trt'), precision: 'int8', role: 'recognizer', batch: { min: 1, opt: 8, max: 32 }, name: 'mbfex', exclude: [firstConv] });
    const q = loadModel(path.join(ex.dir, 'model.qdq.onnx')).graph;
    const quantized = new Set(q.nodes.filter((n) => n.opType === 'QuantizeLinear' && !q.initializer(n.input![0]!)).map((n) => n.input![0]!));
    const cache = parseCalibrationCache(readFileSync(path.join(ex.dir, 'calibration.cache'), 'utf8'));
    expect(new Set(cache.entries.map((e) => e.name))).toEqual(quantized);
    const all = parseCalibrationCache(readFileSync(path.join(rec.dir, 'calibration.cache'), 'utf8'));
    expect(cache.entries.length).toBeLessThan(all.entries.length); // the excluded conv's input has no range
  });

  it('refuses calib mode on TensorRT 11 and says what to do', () => {
    const r = buildSh(rec.dir, ['--mode', 'calib'], fakeBin(110000));
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/TensorRT 11 removed implicit INT8 calibration.*--mode qdq/);
  });

  it('falls back to python tensorrt, then dpkg, for the version; exits 69 when TensorRT is absent', () => {
    const py = buildSh(rec.dir, ['--dry-run'], fakeBin(null, { python3: 'echo 10.1.0' }));
    expect(py.stderr).toMatch(/TensorRT 10\.1\.0 \(line 10\)/);
    const dpkg = buildSh(rec.dir, ['--dry-run'], fakeBin(null, { python3: 'exit 1', 'dpkg-query': 'echo 8.6.1.6-1+cuda12.0' }));
    expect(dpkg.stderr).toMatch(/TensorRT 8\.6\.1 \(line 8\.6\)/);
    const none = buildSh(rec.dir, [], fakeBin(null, { python3: 'exit 1', 'dpkg-query': 'exit 1' }));
    expect(none.code).toBe(69);
    expect(none.stderr).toMatch(/TensorRT not found/);
    const old = buildSh(rec.dir, ['--dry-run'], fakeBin(8501));
    expect(old.code).toBe(69);
  });

  it('FACEOPT_TRT_VERSION picks the line without TensorRT (--dry-run says what it would run); a non-number is refused', () => {
    const none = fakeBin(null, { python3: 'exit 1', 'dpkg-query': 'exit 1' });
    const dry = buildSh(rec.dir, ['--dry-run'], none, { FACEOPT_TRT_VERSION: '10.3' });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/TensorRT 10\.3 \(line 10\)/);
    expect(dry.stdout).toMatch(/^build\.sh: would run trtexec --onnx=model\.qdq\.onnx /m);
    expect(dry.stdout).not.toMatch(/build\.sh: running/);
    const bad = buildSh(rec.dir, ['--dry-run'], none, { FACEOPT_TRT_VERSION: 'abc' });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toBe("build.sh: TensorRT version 'abc' is not a version number; FACEOPT_TRT_VERSION takes e.g. 10.3 or 8.6.1.\n");
    expect(buildSh(rec.dir, ['--dry-run'], none, { FACEOPT_TRT_VERSION: '10.x' }).code).toBe(64);
  });

  it('--time-only times the engine with the documented timing flags', () => {
    const r = buildSh(rec.dir, ['--time-only'], fakeBin(100300));
    expect(r.code, r.stderr).toBe(0);
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]).toMatch(/^--loadEngine=engines\/mbf\.int8\.plan --shapes=input\.1:8x3x112x112 .*--exportTimes=engines\/mbf\.int8\.times\.json$/);
  });
});

describe('ort-tensorrt.json', () => {
  it('uses only option names the TensorRT EP parses, and never a calibration table on the Q/DQ graph', async () => {
    const f = JSON.parse(readFileSync(path.join(rec.dir, 'ort-tensorrt.json'), 'utf8'));
    for (const v of [f.default, ...Object.values(f.alternatives)] as { providerOptions: Record<string, string>; qdq: boolean }[]) {
      for (const k of Object.keys(v.providerOptions)) expect(Object.keys(ORT_TENSORRT_OPTIONS), k).toContain(k);
      expect(checkOrtOptions(v.providerOptions, v.qdq)).toEqual([]);
    }
    expect(f.default.providerOptions.trt_int8_calibration_table_name).toBeUndefined();
    expect(f.alternatives['calibration-table'].providerOptions).toMatchObject({ trt_int8_calibration_table_name: 'calibration.cache', trt_int8_use_native_calibration_table: '1' });
    const loaded = await loadTensorrtProviderOptions(rec.dir);
    expect(loaded.modelPath).toBe(path.join(rec.dir, 'model.qdq.onnx'));
    expect(loaded.providerOptions.trt_engine_cache_path).toBe(path.join(rec.dir, 'ort-engines'));
    const calib = await loadTensorrtProviderOptions(rec.dir, 'calibration-table');
    expect(calib.modelPath).toBe(path.join(rec.dir, 'model.onnx'));
    expect(existsSync(path.join(calib.providerOptions.trt_engine_cache_path!, 'calibration.cache'))).toBe(true);
  });

  it('the loader refuses a calibration table on a graph with Q/DQ (checked on the model file) and unknown options', async () => {
    const dir = path.join(tmp, 'tampered');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'model.qdq.onnx'), readFileSync(path.join(rec.dir, 'model.qdq.onnx')));
    const base = JSON.parse(readFileSync(path.join(rec.dir, 'ort-tensorrt.json'), 'utf8'));
    base.default.qdq = false; // lying flag: the model itself has Q/DQ
    base.default.providerOptions.trt_int8_calibration_table_name = 'calibration.cache';
    writeFileSync(path.join(dir, 'ort-tensorrt.json'), JSON.stringify(base));
    const e1 = await loadTensorrtProviderOptions(dir).catch((e: unknown) => e);
    expect(isFaceoptError(e1, 'FACEOPT_ERR_CALIBRATION_CACHE')).toBe(true);
    delete base.default.providerOptions.trt_int8_calibration_table_name;
    base.default.providerOptions.trt_fp16 = '1';
    writeFileSync(path.join(dir, 'ort-tensorrt.json'), JSON.stringify(base));
    await expect(loadTensorrtProviderOptions(dir)).rejects.toThrow(/trt_fp16 is not a TensorRT EP option/);
  });

  it('requireTensorrtProvider fails with FACEOPT_ERR_PROVIDER_UNAVAILABLE where the EP is missing', () => {
    if (availableProviders().includes('tensorrt')) { expect(() => requireTensorrtProvider()).not.toThrow(); return; }
    let err: unknown;
    try { requireTensorrtProvider(); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_PROVIDER_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toMatch(/tensorrt.*Available: cpu/);
  });
});

describe('Triton repository', () => {
  it('config.pbtxt parses as text format and its dims match the graph', async () => {
    const c = parsePbtxt(readFileSync(path.join(rec.dir, 'triton/mbf/config.pbtxt'), 'utf8')) as any;
    const m = loadModel(path.join(rec.dir, 'triton/mbf/1/model.onnx'));
    expect(c.name).toBe('mbf');
    expect(c.max_batch_size).toBe(32);
    expect(c.input[0]).toEqual({ name: m.graph.inputs[0]!.name, data_type: 'TYPE_FP32', dims: m.graph.inputs[0]!.shape!.slice(1) });
    const run = await probeModel(m, [3, 3, 112, 112]);
    for (const o of c.output) expect([3, ...o.dims]).toEqual(run.dims[o.name]);
    expect(c.dynamic_batching.preferred_batch_size.every((b: number) => b <= 32)).toBe(true);
    expect(c.instance_group).toEqual([{ kind: 'KIND_GPU', count: 1 }]);

    const d = parsePbtxt(readFileSync(path.join(det.dir, 'triton/scrfd/config.pbtxt'), 'utf8')) as any;
    const dm = loadModel(path.join(det.dir, 'triton/scrfd/1/model.onnx'));
    expect(d.max_batch_size).toBe(0);
    expect(d.input[0].dims).toEqual([1, 3, 320, 320]);
    const drun = await probeModel(dm, [1, 3, 320, 320]);
    for (const o of d.output) expect(o.dims).toEqual(drun.dims[o.name]);
    expect(d.dynamic_batching).toBeUndefined();
    expect(d.optimization.execution_accelerators.gpu_execution_accelerator[0].parameters.precision_mode).toBe('FP16');
  });

  it('README says how to build, time, serve and query', () => {
    const readme = readFileSync(path.join(rec.dir, 'README.md'), 'utf8');
    for (const s of ['./build.sh', 'trtexec --loadEngine', 'docker run --rm --gpus all', 'tritonserver --model-repository=/models', '/v2/models/mbf/infer', 'TensorrtExecutionProvider']) expect(readme).toContain(s);
    // the README times the engine as build.sh --time does: at the profile's opt batch
    const timing = readme.split('\n').find((l) => l.startsWith('trtexec --loadEngine'))!;
    expect(timing).toMatch(/--shapes=\S+:8x3x112x112 /); // the opt batch (1:8:32), as build.sh --time
    expect(timing).toContain('--iterations=200');
    expect(readme).toContain('the layers the Q/DQ graph keeps\nfloat run in FP32 here');
  });
});

describe('CLI', () => {
  it('optimize-tensorrt writes a bundle (int8 from a stats file, fp32); coded errors for missing data and bad flags', async () => {
    const model = path.join(tmp, 'cli-mbf.onnx');
    writeFileSync(model, fixedBatchMbf().toBytes());
    const prepared = loadModel(model);
    prepareFloatGraph(prepared, TENSORRT_REWRITES, 13);
    const statsFile = path.join(tmp, 'cli-stats.json');
    await saveStats(statsFile, createStats({
      modelSha256: sha256(prepared.toBytes()), method: 'minmax', settings: resolveSettings(),
      source: { description: 'seeded test inputs', images: 2, listSha256: sha256('') },
      tensors: await syntheticStats(prepared, [1, 3, 112, 112]),
    }));
    const out = path.join(tmp, 'cli-out');
    const r = faceopt(['optimize', '--tensorrt', '--model', model, '--out', out, '--stats', statsFile, '--batch', '1:4:16']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(out);
    const plan = JSON.parse(readFileSync(path.join(out, 'plan.json'), 'utf8'));
    expect(plan.precision).toBe('int8');
    expect(plan.input.profile.max).toEqual([16, 3, 112, 112]);
    expect(plan.quantization.check.violations).toEqual([]);
    const fp32 = faceopt(['optimize', '--tensorrt', '--model', model, '--out', path.join(tmp, 'cli-fp32'), '--precision', 'fp32', '--role', 'recognizer']);
    expect(fp32.code, fp32.stderr).toBe(0);
    const bad = faceopt(['optimize', '--tensorrt', '--model', model, '--out', path.join(tmp, 'cli-bad'), '--role', 'recognizer']);
    expect(bad.code).toBe(66);
    expect(bad.stderr).toMatch(/^faceopt: FACEOPT_ERR_NO_CALIBRATION_DATA: .*--faces DIR.*--stats FILE/m);
    const badBatch = faceopt(['optimize', '--tensorrt', '--model', model, '--precision', 'fp16', '--batch', '8:4:2', '--out', path.join(tmp, 'cli-bad2')]);
    expect(badBatch.code).toBe(64);
    expect(badBatch.stderr).toMatch(/FACEOPT_ERR_BAD_ARGUMENT: Expected MIN:OPT:MAX/);
  });

  it('optimize-tensorrt refuses an input name its profiles cannot carry before it asks for calibration data', () => {
    const m = fixedBatchMbf();
    m.graph.renameTensor(m.graph.inputs[0]!.name, 'in,put');
    const model = path.join(tmp, 'cli-comma.onnx');
    writeFileSync(model, m.toBytes());
    // int8 without --faces or --stats: the name is refused first (it used to fail only after calibration)
    const r = faceopt(['optimize', '--tensorrt', '--model', model, '--out', path.join(tmp, 'cli-comma'), '--role', 'recognizer']);
    expect(r.code, r.stderr).toBe(65);
    expect(r.stderr).toMatch(/^faceopt: FACEOPT_ERR_TENSOR_NAME: Input name "in,put" cannot be written into trtexec/m);
    expect(r.stderr).not.toMatch(/opset/);
    expect(existsSync(path.join(tmp, 'cli-comma'))).toBe(false);
  });
});

describe('scripts/gpu-check.sh', () => {
  const script = path.resolve('scripts/gpu-check.sh');
  // the fake PATH keeps /usr/bin and /bin for the script's own tools: on a host with a real nvidia-smi
  // there, the no-GPU path cannot be shown
  const realSmi = ['/usr/bin/nvidia-smi', '/bin/nvidia-smi'].find((f) => existsSync(f));
  if (realSmi) console.log(`[faceopt tests] gpu-check.sh without a GPU: not checked here (${realSmi} exists)`);
  it.skipIf(realSmi !== undefined)('passes bash -n and records what it found when there is no GPU or TensorRT', () => {
    execFileSync('bash', ['-n', script]);
    const out = path.join(tmp, 'gpu-none');
    const r = spawnSync('bash', [script, rec.dir], { encoding: 'utf8', env: { PATH: `${fakeBin(null, { python3: 'exit 1' })}:/usr/bin:/bin`, OUT: out, HOME: tmp } });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(readFileSync(path.join(out, 'gpu-check.json'), 'utf8'));
    expect(j.env.gpu).toBe('absent');
    expect(j.bundles).toEqual([{ bundle: rec.dir, status: 'skipped: no GPU (nvidia-smi absent)' }]);
  });

  it('builds with trtexec and parses the GPU compute time summary into latency numbers', () => {
    const bin = fakeBin(100300, { 'nvidia-smi': 'case "$*" in *name*) echo "NVIDIA H200";; *driver*) echo 550.54;; esac' });
    // the fake trtexec prints a performance summary when it loads an engine
    writeFileSync(path.join(bin, 'trtexec'), `${readFileSync(path.join(bin, 'trtexec'), 'utf8')}case "$*" in *--loadEngine*) echo "[I] Throughput: 3980.25 qps"; echo "[I] GPU Compute Time: min = 0.2 ms, max = 0.5 ms, mean = 0.25 ms, median = 0.24 ms, percentile(90%) = 0.26 ms, percentile(95%) = 0.27 ms, percentile(99%) = 0.3 ms";; esac\n`);
    const out = path.join(tmp, 'gpu-fake');
    const r = spawnSync('bash', [script, rec.dir], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, OUT: out, HOME: tmp, FAKE_LOG: path.join(tmp, 'fake.log') } });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(readFileSync(path.join(out, 'gpu-check.json'), 'utf8'));
    expect(j.env).toMatchObject({ gpu: 'NVIDIA H200', driver: '550.54', trtexec_banner: 'TensorRT v100300' });
    expect(j.bundles[0]).toMatchObject({ tool: 'trtexec', build_rc: 0, time_rc: 0, engine: 'engines/mbf.int8.plan' });
    expect(j.bundles[0].latency_ms).toMatchObject({ min: 0.2, median: 0.24, mean: 0.25, p90: 0.26, p99: 0.3, throughput_qps: 3980.25 });
  });
});
