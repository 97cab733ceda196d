/**
 * optimize --int8 / --fp32 at their edges, on small graphs built in code: models whose inputs faceopt
 * cannot feed are refused before any work; a generic model never claims photos; `--out DIR/` names a
 * folder; a run without evaluation leaves no report of another file behind; a --stats path that cannot be
 * written fails before calibration; the quantized graph runs once before it is written.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { loadModel, makeNode, makeValueInfo, readTensor } from '../../pipeline/onnx/index.js';
import { TARGET_MARGIN } from '../../pipeline/quantize/mixed.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { optimizeFp32 } from '../../pipeline/optimize/fp32.js';
import { checkRuns, optimizeInt8, type Int8Options } from '../../pipeline/optimize/int8.js';
import { createSession, warmUp } from '../../pipeline/runtime.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-int8-edges-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const C = 8;
const convs = () => tinyModel({
  opset: 13, input: { name: 'x', shape: [1, 3, 16, 16] }, outputs: ['y'],
  nodes: [
    makeNode('Conv', ['x', 'w1', 'b1'], ['a'], 'c1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), makeNode('Relu', ['a'], ['r'], 'r1'),
    makeNode('Conv', ['r', 'w2', 'b2'], ['y'], 'c2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
  ],
  initializers: [
    { name: 'w1', dims: [C, 3, 3, 3], data: seededFloats(C * 27, 1) }, { name: 'b1', dims: [C], data: seededFloats(C, 2) },
    { name: 'w2', dims: [C, C, 3, 3], data: seededFloats(C * C * 9, 3) }, { name: 'b2', dims: [C], data: seededFloats(C, 4) },
  ],
});

function save(name: string, extraInput?: { name: string; type: number }): string {
  const m = convs();
  if (extraInput) {
    m.graph.proto.input!.push(makeValueInfo(extraInput.name, extraInput.type, [1]));
    // read it, so the input is really needed
    m.graph.proto.node!.push(makeNode('Identity', [extraInput.name], ['extra_out'], 'id'));
    m.graph.proto.output!.push(makeValueInfo('extra_out', extraInput.type, null));
  }
  const file = path.join(dir, `${name}.onnx`);
  writeFileSync(file, m.toBytes());
  return file;
}

const quiet = { quiet: true, log: () => {}, quantize: {}, threads: 1 } as const;
// reports (and the stats beside them) go under the test's folder, not the checkout's reports/
const reportFor = (o: { model: string; out?: string }) => path.join(dir, 'reports', path.basename(o.out && !o.out.endsWith('/') ? o.out : o.model).replace(/\.onnx$/i, ''));
const run = (o: Partial<Int8Options> & { model: string }) => optimizeInt8({ method: 'minmax', ...quiet, reportDir: reportFor(o), ...o } as Int8Options);

describe('models whose inputs faceopt cannot feed', () => {
  it.each([
    ['two float inputs', { name: 'z', type: DataType.FLOAT }],
    ['an int64 input beside the image', { name: 'ids', type: DataType.INT64 }],
  ])('%s: refused before any work by --int8, --fp32 (FACEOPT_ERR_GRAPH naming the inputs), not an exit-70 inference error', async (label, extra) => {
    const file = save(label.replace(/\W+/g, '_'), extra);
    const lines: string[] = [];
    for (const attempt of [
      () => run({ model: file, out: path.join(dir, 'never.int8.onnx'), evaluate: false, log: (l) => lines.push(l) }),
      () => optimizeFp32({ model: file, out: path.join(dir, 'never.fp32.onnx'), log: (l) => lines.push(l) }),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(isFaceoptError(err, 'FACEOPT_ERR_GRAPH'), String(err)).toBe(true);
      expect((err as Error).message).toContain(extra.name);
      expect((err as Error).message).toContain('exactly one float32 input');
    }
    expect(lines).toEqual([]);
    expect(existsSync(path.join(dir, 'never.int8.onnx')) || existsSync(path.join(dir, 'never.fp32.onnx'))).toBe(false);
  });
});

describe('the written graph runs', () => {
  it('checkRuns refuses a graph that loads but cannot run (FACEOPT_ERR_QUANTIZE, naming the run\'s failure)', async () => {
    const X = { name: 'x', shape: [1, 1, 2, 2] };
    const broken = tinyModel({
      opset: 13, input: X, outputs: ['y'],
      nodes: [
        makeNode('QuantizeLinear', ['x', 's1', 'z1'], ['q'], 'q'),
        makeNode('DequantizeLinear', ['q', 's5', 'z5'], ['y'], 'dq', { axis: 1 }), // 5 scales for 1 channel
      ],
      initializers: [
        { name: 's1', dims: [], data: [0.1] }, { name: 'z1', dims: [], data: [128], dataType: DataType.UINT8 },
        { name: 's5', dims: [5], data: [0.1, 0.1, 0.1, 0.1, 0.1] }, { name: 'z5', dims: [5], data: [128, 128, 128, 128, 128], dataType: DataType.UINT8 },
      ],
    });
    const err = await checkRuns(broken.toBytes(), 'x', X.shape).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_QUANTIZE'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/does not run in onnxruntime at input 1x1x2x2 \(.+\); nothing was written/);
  });

  it('a generic model with a float Gemm(transA) between int8 tensors is written runnable (it loaded and failed every run)', async () => {
    const V = { name: 'v', shape: [1, 32] };
    const m = tinyModel({
      opset: 13, input: V, outputs: ['y'],
      nodes: [
        makeNode('Transpose', ['v'], ['vt'], 'transpose', { perm: [1, 0] }),
        makeNode('Gemm', ['vt', 'w', 'c'], ['h'], 'gemmA', { transA: 1 }),
        makeNode('Relu', ['h'], ['r'], 'relu'),
        makeNode('Gemm', ['r', 'w2', 'c2'], ['y'], 'gemm2', { transB: 1 }),
      ],
      initializers: [
        { name: 'w', dims: [32, 16], data: seededFloats(512, 1) }, { name: 'c', dims: [16], data: seededFloats(16, 2) },
        { name: 'w2', dims: [8, 16], data: seededFloats(128, 3) }, { name: 'c2', dims: [8], data: seededFloats(8, 4) },
      ],
    });
    const file = path.join(dir, 'gemm_transA.onnx');
    writeFileSync(file, m.toBytes());
    const out = path.join(dir, 'gemm_transA.int8.onnx');
    await run({ model: file, out, evaluate: false });
    const s = await createSession(out);
    try {
      await warmUp(s, { v: V.shape });
    } finally {
      await s.release();
    }
  });
});

describe('inputs whose size faceopt cannot know', () => {
  const mlp = (shape: (number | string)[] | null) => {
    const m = tinyModel({
      opset: 13, input: { name: 'v', shape: [1, 16] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['v', 'w', 'c'], ['y'], 'fc', { transB: 1 })],
      initializers: [{ name: 'w', dims: [4, 16], data: seededFloats(64, 1) }, { name: 'c', dims: [4], data: seededFloats(4, 2) }],
    });
    m.graph.proto.input = [makeValueInfo('v', DataType.FLOAT, shape)];
    return m;
  };
  it.each([
    ['a dynamic feature width', ['N', 'F'], /input v \[N, F\] has dynamic dimension 1 \('F'\).*make_dynamic_shape_fixed/],
    ['no declared shape', null, /input v declares no shape.*export it with its input shape declared/],
  ])('%s: refused before any work by --int8 and --fp32 (FACEOPT_ERR_GRAPH saying what to do), not filled with 3 and failed in onnxruntime (exit 70)', async (label, shape, message) => {
    const file = path.join(dir, `${label.replace(/\W+/g, '_')}.onnx`);
    writeFileSync(file, mlp(shape as (number | string)[] | null).toBytes());
    for (const attempt of [
      () => run({ model: file, out: path.join(dir, 'never.int8.onnx'), evaluate: false }),
      () => optimizeFp32({ model: file, out: path.join(dir, 'never.fp32.onnx'), log: () => {} }),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(isFaceoptError(err, 'FACEOPT_ERR_GRAPH'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(message);
    }
    expect(existsSync(path.join(dir, 'never.int8.onnx')) || existsSync(path.join(dir, 'never.fp32.onnx'))).toBe(false);
    // a dynamic batch alone is filled (1)
    const batch = path.join(dir, 'batch_only.onnx');
    writeFileSync(batch, mlp(['N', 16]).toBytes());
    await run({ model: batch, out: path.join(dir, 'batch_only.int8.onnx'), evaluate: false });
  });

  it('an image model with dynamic H/W that cannot take --det-size (a fixed Reshape) is told to pass it; with it, it quantizes', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: [1, 3, 8, 8] }, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'w1', 'b1'], ['a'], 'c1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('Reshape', ['a', 'shape'], ['f'], 'flat'),
        makeNode('Gemm', ['f', 'w2', 'c2'], ['y'], 'fc', { transB: 1 }),
      ],
      initializers: [
        { name: 'w1', dims: [2, 3, 3, 3], data: seededFloats(54, 1) }, { name: 'b1', dims: [2], data: seededFloats(2, 2) },
        { name: 'shape', dims: [2], data: [1, 128], dataType: DataType.INT64 },
        { name: 'w2', dims: [4, 128], data: seededFloats(512, 3) }, { name: 'c2', dims: [4], data: seededFloats(4, 4) },
      ],
    });
    m.graph.proto.input = [makeValueInfo('x', DataType.FLOAT, [1, 3, 'H', 'W'])];
    const file = path.join(dir, 'fixed_reshape.onnx');
    writeFileSync(file, m.toBytes());
    for (const attempt of [
      () => run({ model: file, out: path.join(dir, 'never.int8.onnx'), evaluate: false }),
      () => optimizeFp32({ model: file, out: path.join(dir, 'never.fp32.onnx'), log: () => {} }),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(isFaceoptError(err, 'FACEOPT_ERR_GRAPH'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/does not run at input 1x3x640x640 \(.*Reshape.*\); its input's height and width are dynamic and faceopt feeds 640x640: pass --det-size N/);
    }
    await run({ model: file, out: path.join(dir, 'fixed_reshape.int8.onnx'), evaluate: false, detSize: 8 });
    expect(existsSync(path.join(dir, 'fixed_reshape.int8.onnx'))).toBe(true);
  });
});

describe('a generic model', () => {
  it('is calibrated on synthetic inputs even with --faces, and its report says so instead of claiming photos', async () => {
    const file = save('generic');
    const faces = path.join(dir, 'faces');
    const out = path.join(dir, 'generic-out', 'generic.int8.onnx');
    const lines: string[] = [];
    const r = await run({ model: file, facesDir: faces, out, reportDir: path.join(dir, 'generic-report'), log: (l) => lines.push(l) });
    const report = r.report!;
    expect(report.role).toBe('generic');
    expect(report.warnings.join('\n')).toContain('--faces is read for face models only and was not used');
    expect(report.warnings.join('\n')).toContain('no accuracy search');
    expect(report.evaluationData.facesSource).toBeNull();
    expect(JSON.stringify(report)).not.toMatch(/held-apart photos|images chosen by identity/);
    expect(lines.find((l) => l.startsWith('calibration: 16 synthetic batches'))).toBeDefined();
  });
});

describe('--out and the report folder', () => {
  it('--out DIR/ writes the default file name inside DIR', async () => {
    const file = save('slash');
    const r = await run({ model: file, out: `${path.join(dir, 'slash-out')}/`, reportDir: path.join(dir, 'slash-report'), evaluate: false });
    expect(r.modelPath).toBe(path.join(dir, 'slash-out', 'slash.int8.onnx'));
    expect(existsSync(r.modelPath)).toBe(true);
    const fp = await optimizeFp32({ model: file, out: `${path.join(dir, 'slash-out')}/`, log: () => {} });
    expect(fp.modelPath).toBe(path.join(dir, 'slash-out', 'slash.fp32.onnx'));
  });

  it('a run without evaluation removes a report that describes another file, and keeps one of the same bytes', async () => {
    const file = save('stale');
    const out = path.join(dir, 'stale-out', 'stale.int8.onnx');
    const reportDir = path.join(dir, 'stale-report');
    await run({ model: file, out, reportDir });
    const json = path.join(reportDir, 'report.json');
    expect(existsSync(json)).toBe(true);
    const lines: string[] = [];
    await run({ model: file, out, reportDir, evaluate: false, log: (l) => lines.push(l) }); // same bytes
    expect(existsSync(json)).toBe(true);
    await run({ model: file, out, reportDir, evaluate: false, quantize: { perChannel: false }, log: (l) => lines.push(l) }); // other bytes
    for (const f of ['report.json', 'report.md', 'report.html']) expect(existsSync(path.join(reportDir, f)), f).toBe(false);
    expect(lines.join('\n')).toContain('removed the report of an earlier run');
  });

  it('a --stats path whose folder cannot be made fails before calibration', async () => {
    const file = save('stats');
    const blocker = path.join(dir, 'a-file');
    writeFileSync(blocker, 'x');
    const lines: string[] = [];
    const err = await run({ model: file, out: path.join(dir, 'stats-out', 'm.int8.onnx'), statsFile: path.join(blocker, 'stats.json'), evaluate: false, log: (l) => lines.push(l) }).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_WRITE_FAILED'), String(err)).toBe(true);
    expect(lines.some((l) => l.startsWith('calibration'))).toBe(false);
    expect(readFileSync(blocker, 'utf8')).toBe('x');
  });
});

describe('--percentile', () => {
  it('is refused where the ranges come from a method that reads none (it was ignored without a word)', async () => {
    const file = save('pct');
    const lines: string[] = [];
    for (const o of [{ method: 'mse', methodGiven: true }, { method: 'minmax', methodGiven: true }] as const) {
      const err = await run({ model: file, ...o, collector: { percentile: 99 }, out: path.join(dir, 'pct-never.int8.onnx'), evaluate: false, log: (l) => lines.push(l) }).catch((e: unknown) => e);
      expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT'), String(err)).toBe(true);
      expect((err as Error).message).toContain(`Expected --method percentile with --percentile (this run's ranges come from ${o.method}, which reads no percentile)`);
    }
    expect(lines.some((l) => l.startsWith('calibration'))).toBe(false);
    await run({ model: file, method: 'percentile', methodGiven: true, collector: { percentile: 99 }, out: path.join(dir, 'pct.int8.onnx'), evaluate: false });
  });
});

describe('--stats reuse with another --method or --percentile', () => {
  it('re-chooses the ranges from the file\'s histograms: the same model as a fresh run with that method', async () => {
    const file = save('rethreshold');
    const statsFile = path.join(dir, 'rethreshold-stats.json');
    const at = (n: string) => path.join(dir, 'rethreshold-out', `${n}.int8.onnx`);
    await run({ model: file, method: 'percentile', statsFile, out: at('percentile'), evaluate: false });
    await run({ model: file, method: 'mse', methodGiven: true, out: at('mse-fresh'), statsFile: path.join(dir, 'fresh-mse.json'), evaluate: false });
    const lines: string[] = [];
    await run({ model: file, method: 'mse', methodGiven: true, statsFile, out: at('mse-reused'), evaluate: false, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toContain('re-chosen by mse');
    expect(readFileSync(at('mse-reused')).equals(readFileSync(at('mse-fresh')))).toBe(true);
    expect(readFileSync(at('mse-reused')).equals(readFileSync(at('percentile')))).toBe(false);
    // another percentile, the same way
    await run({ model: file, method: 'percentile', methodGiven: true, collector: { percentile: 99.9 }, out: at('p999-fresh'), statsFile: path.join(dir, 'fresh-p999.json'), evaluate: false });
    await run({ model: file, method: 'percentile', methodGiven: true, collector: { percentile: 99.9 }, statsFile, out: at('p999-reused'), evaluate: false });
    expect(readFileSync(at('p999-reused')).equals(readFileSync(at('p999-fresh')))).toBe(true);
  });

  it('refuses a method that needs histograms the file does not hold', async () => {
    const file = save('nohist');
    const statsFile = path.join(dir, 'nohist-stats.json');
    await run({ model: file, method: 'minmax', statsFile, out: path.join(dir, 'nohist-out', 'a.int8.onnx'), evaluate: false });
    const err = await run({ model: file, method: 'entropy', methodGiven: true, statsFile, out: path.join(dir, 'nohist-out', 'b.int8.onnx'), evaluate: false }).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_STATS'), String(err)).toBe(true);
  });
});

describe('review mends', () => {
  it('--exclude takes the names given to unnamed nodes (they are what reports list)', async () => {
    const m = convs();
    for (const n of m.graph.proto.node!) n.name = '';
    const file = path.join(dir, 'unnamed.onnx');
    writeFileSync(file, m.toBytes());
    const r = await run({ model: file, out: path.join(dir, 'unnamed-out', 'u.int8.onnx'), evaluate: false, quantize: { exclude: ['Conv_0'] } });
    expect(existsSync(r.modelPath)).toBe(true);
  });

  it('ranges re-chosen from a --stats file are saved beside the report, which names that file', async () => {
    const file = save('rechosen');
    const statsFile = path.join(dir, 'rechosen-stats.json');
    await run({ model: file, method: 'percentile', statsFile, out: path.join(dir, 'rechosen-out', 'a.int8.onnx'), evaluate: false });
    const reportDir = path.join(dir, 'rechosen-report');
    const r = await run({ model: file, method: 'mse', methodGiven: true, statsFile, out: path.join(dir, 'rechosen-out', 'b.int8.onnx'), reportDir });
    const saved = path.join(reportDir, 'stats.json');
    expect(JSON.stringify(r.report)).toContain(saved);
    expect(r.report!.provenance.calibration!.statsPath).toBe(saved);
    expect(JSON.parse(readFileSync(saved, 'utf8')).method).toBe('mse');
    expect(JSON.parse(readFileSync(statsFile, 'utf8')).method).toBe('percentile');
  });
});

describe('calibration choices the run records (mutation audit)', () => {
  const stats = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as { method: string; settings: { percentile: number }; tensors: Record<string, { count: number }> };

  it('a generic model: 16 synthetic batches at the default percentile 99.99; the written graph is named after the source\'s', async () => {
    const file = save('audit_default');
    const statsFile = path.join(dir, 'audit-default-stats.json');
    const r = await run({ model: file, method: 'percentile', statsFile, out: path.join(dir, 'audit-out', 'default.int8.onnx'), evaluate: false });
    const s = stats(statsFile);
    expect(s.settings.percentile).toBe(99.99);
    expect(s.tensors.x!.count).toBe(16 * 3 * 16 * 16);
    expect(loadModel(r.modelPath).graph.proto.name).toBe('tiny-int8');
  });

  it('a reused --stats file keeps its own method and percentile unless asked, also as the report\'s config', async () => {
    const file = save('audit_reuse');
    const at = (n: string) => path.join(dir, 'audit-reuse-out', `${n}.int8.onnx`);
    const statsFile = path.join(dir, 'audit-reuse-p999.json');
    await run({ model: file, method: 'percentile', methodGiven: true, collector: { percentile: 99.9 }, statsFile, out: at('p999'), evaluate: false });
    // no --method (the generic default here is minmax) and no --percentile: the file's percentile 99.9 ranges
    const lines: string[] = [];
    const r = await run({ model: file, statsFile, out: at('reused'), reportDir: path.join(dir, 'audit-reuse-report'), log: (l) => lines.push(l) });
    expect(lines.join('\n')).toContain(`reusing ${statsFile}`);
    expect(lines.join('\n')).not.toContain('re-chosen');
    expect(readFileSync(at('reused')).equals(readFileSync(at('p999')))).toBe(true);
    expect(r.report!.provenance.calibration!.config).toMatchObject({ method: 'percentile', percentile: 99.9, perChannel: true, targetMargin: TARGET_MARGIN });
    // --method percentile without --percentile: still the file's 99.9
    await run({ model: file, method: 'percentile', methodGiven: true, statsFile, out: at('same-method'), evaluate: false });
    expect(readFileSync(at('same-method')).equals(readFileSync(at('p999')))).toBe(true);
    // --percentile without --method reads the file's method (percentile): accepted, re-chosen at it
    await run({ model: file, method: 'percentile', collector: { percentile: 99.99 }, out: at('p9999-fresh'), statsFile: path.join(dir, 'audit-reuse-fresh.json'), evaluate: false });
    const pct: string[] = [];
    await run({ model: file, collector: { percentile: 99.99 }, statsFile, out: at('p9999-reused'), evaluate: false, log: (l) => pct.push(l) });
    expect(pct.join('\n')).toContain('re-chosen by percentile 99.99');
    expect(readFileSync(at('p9999-reused')).equals(readFileSync(at('p9999-fresh')))).toBe(true);
  });

  it('ranges re-chosen from the report folder\'s own stats.json are saved beside it, not over it', async () => {
    const file = save('audit_samefile');
    const reportDir = path.join(dir, 'audit-samefile-report');
    const statsFile = path.join(reportDir, 'stats.json');
    await run({ model: file, method: 'percentile', statsFile, reportDir, out: path.join(dir, 'audit-samefile', 'a.int8.onnx'), evaluate: false });
    await run({ model: file, method: 'mse', methodGiven: true, statsFile, reportDir, out: path.join(dir, 'audit-samefile', 'a.int8.onnx'), evaluate: false });
    expect(stats(statsFile).method).toBe('percentile');
    expect(stats(path.join(reportDir, 'stats.mse.json')).method).toBe('mse');
  });

  it('bias correction moves the conv biases off the float ones; without it they are the float ones', async () => {
    const file = save('audit_bias');
    const at = (n: string) => path.join(dir, 'audit-bias', `${n}.int8.onnx`);
    // no equalization or channel padding, which rescale or extend the biases themselves
    const rewrites = { equalize: false, padChannels: false };
    await run({ model: file, out: at('corrected'), statsFile: path.join(dir, 'audit-bias.json'), evaluate: false, rewrites });
    await run({ model: file, out: at('plain'), statsFile: path.join(dir, 'audit-bias.json'), evaluate: false, rewrites, biasCorrection: false });
    // each conv's bias: int32 values and their scale, read by a DequantizeLinear
    const biasOff = (f: string) => {
      const g = loadModel(f).graph;
      const float = convs().graph;
      return [['c1', 'b1'], ['c2', 'b2']].map(([conv, b]) => {
        const dq = g.nodes.find((d) => d.output?.[0] === g.node(conv!)!.input![2])!;
        const q = readTensor(g.initializer(dq.input![0]!)!).data as Int32Array;
        const s = g.getFloat(dq.input![1]!);
        const want = float.getFloat(b!);
        // largest distance from the float bias, in bias quantization steps
        return Math.max(...Array.from(q, (v, i) => Math.abs(v * s[s.length === 1 ? 0 : i]! - want[i]!) / s[s.length === 1 ? 0 : i]!));
      });
    };
    for (const off of biasOff(at('plain'))) expect(off).toBeLessThanOrEqual(0.5 + 1e-3);
    expect(Math.max(...biasOff(at('corrected')))).toBeGreaterThan(1);
  });

  it('an int8 variant with every Conv excluded warns that it is in effect the float model', async () => {
    const file = save('audit_noconv');
    const lines: string[] = [];
    await run({ model: file, out: path.join(dir, 'audit-noconv', 'a.int8.onnx'), evaluate: false, quantize: { exclude: ['Conv'] }, log: (l) => lines.push(l) });
    expect(lines.filter((l) => l.startsWith('warning: nothing compute-heavy was quantized'))).toHaveLength(1);
  });

  it('the report records the run\'s own warnings for a later evaluate', async () => {
    const file = save('audit_madeby');
    const r = await run({ model: file, out: path.join(dir, 'audit-madeby', 'a.int8.onnx'), reportDir: path.join(dir, 'audit-madeby-report'), command: 'faceopt optimize --int8 audit_madeby.onnx' });
    expect(r.report!.provenance.madeBy?.command).toBe('faceopt optimize --int8 audit_madeby.onnx');
    expect(r.report!.provenance.madeBy?.warnings).toEqual(expect.arrayContaining([expect.stringContaining('not a face model faceopt recognises')]));
  });
});

describe('--fp32 checks (mutation audit)', () => {
  it('refuses rewrites that move the outputs past the tolerance, writing nothing; a fixed batch is timed at batch 1 alone', async () => {
    const file = save('audit_fp32');
    const out = path.join(dir, 'audit-fp32', 'a.fp32.onnx');
    const err = await optimizeFp32({ model: file, out, tolerance: -1, log: () => {} }).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_QUANTIZE'), String(err)).toBe(true);
    expect(existsSync(out)).toBe(false);
    const ok = await optimizeFp32({ model: file, out, log: () => {} });
    expect(ok.speed.speedup.batch8).toBeNull();
  });
});
