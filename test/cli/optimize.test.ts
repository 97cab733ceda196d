import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, makeNode, saveModel } from '../../pipeline/onnx/index.js';
import { createSession } from '../../pipeline/runtime.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';

const work = mkdtempSync(path.join(tmpdir(), 'faceopt-optimize-'));
const env = { FACEOPT_MODELS: path.join(work, 'models'), FACEOPT_REPORTS: path.join(work, 'reports') };

describe('faceopt optimize on a model that is not a face model', () => {
  it('quantizes on the generic path with a warning, and the result loads', async () => {
    const m = tinyModel({
      opset: 11, input: { name: 'x', shape: ['N', 16] }, outputs: ['y'],
      nodes: [makeNode('Gemm', ['x', 'w', 'b'], ['h'], 'fc1', { transB: 1 }), makeNode('Relu', ['h'], ['r'], 'relu'), makeNode('Gemm', ['r', 'w2'], ['y'], 'fc2', { transB: 1 })],
      initializers: [{ name: 'w', dims: [32, 16], data: seededFloats(512, 1) }, { name: 'b', dims: [32], data: seededFloats(32, 2) }, { name: 'w2', dims: [4, 32], data: seededFloats(128, 3) }],
    });
    const file = path.join(work, 'mlp.onnx');
    await saveModel(m, file);
    const r = faceopt(['optimize', '--int8', '--model', file, '--quiet'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: not a face model/);
    const out = path.join(work, 'models', 'mlp.int8.onnx');
    const q = loadModel(out);
    expect(q.graph.opHistogram().QuantizeLinear).toBeGreaterThan(0);
    await (await createSession(out)).release();
    const report = JSON.parse(readFileSync(path.join(work, 'reports', 'mlp.int8', 'report.json'), 'utf8'));
    expect(report.role).toBe('generic');
    expect(report.warnings.join(' ')).toMatch(/face-specific evaluation unavailable/);
    // with its own --out, the report is named after that file: the default variant's report stays
    const other = path.join(work, 'elsewhere', 'mlp-try.int8.onnx');
    const r2 = faceopt(['optimize', '--int8', '--model', file, '--out', other, '--quiet'], { env });
    expect(r2.code).toBe(0);
    expect(JSON.parse(readFileSync(path.join(work, 'reports', 'mlp-try.int8', 'report.json'), 'utf8')).variant.path).toBe(other);
    expect(JSON.parse(readFileSync(path.join(work, 'reports', 'mlp.int8', 'report.json'), 'utf8')).variant.path).toBe(out);
  });
  it('a grouped convolution stays float on the CPU path, and the report says why', async () => {
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 8, 10, 10] }, outputs: ['y'],
      nodes: [
        makeNode('Conv', ['x', 'wg', 'bg'], ['g'], 'grouped', { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 }),
        makeNode('Conv', ['g', 'w1', 'b1'], ['y'], 'pointwise', { kernel_shape: [1, 1] }),
      ],
      initializers: [
        { name: 'wg', dims: [8, 2, 3, 3], data: seededFloats(144, 1) }, { name: 'bg', dims: [8], data: seededFloats(8, 2) },
        { name: 'w1', dims: [4, 8, 1, 1], data: seededFloats(32, 3) }, { name: 'b1', dims: [4], data: seededFloats(4, 4) },
      ],
    });
    const file = path.join(work, 'grouped.onnx');
    await saveModel(m, file);
    const r = faceopt(['optimize', '--int8', '--model', file, '--quiet'], { env });
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(path.join(work, 'reports', 'grouped.int8', 'report.json'), 'utf8'));
    const layers = report.provenance.floatLayers as { layer: string; reason: string }[];
    expect(layers.find((l) => l.layer === 'grouped')?.reason).toMatch(/grouped convolution \(2 input and 2 output channels per group\)/);
    expect(loadModel(path.join(work, 'models', 'grouped.int8.onnx')).graph.node('grouped')!.input![1]).toBe('wg');
  });

  it('--float-prefix: auto times the candidates and reports the choice; N pins it; anything else is refused', async () => {
    const conv = (name: string, input: string, out: string, cin: number, cout: number, stride: number, seed: number) => ({
      node: makeNode('Conv', [input, `w_${name}`, `b_${name}`], [out], name, { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [stride, stride] }),
      inits: [{ name: `w_${name}`, dims: [cout, cin, 3, 3], data: seededFloats(cout * cin * 9, seed) }, { name: `b_${name}`, dims: [cout], data: seededFloats(cout, seed + 1) }],
    });
    const layers = [conv('s1', 'x', 'a', 3, 8, 2, 1), conv('mid', 'a', 'b', 8, 8, 1, 3), conv('s2', 'b', 'c', 8, 8, 2, 5), conv('last', 'c', 'y', 8, 8, 1, 7)];
    const m = tinyModel({ opset: 13, input: { name: 'x', shape: [1, 3, 32, 32] }, outputs: ['y'], nodes: layers.map((l) => l.node), initializers: layers.flatMap((l) => l.inits) });
    const file = path.join(work, 'strided.onnx');
    await saveModel(m, file);
    const pinned = faceopt(['optimize', '--int8', '--model', file, '--float-prefix', '1', '--quiet'], { env });
    expect(pinned.code).toBe(0);
    expect(pinned.stderr).toMatch(/float prefix: through 1 strided conv \(int8 from s1's output on\), as given/);
    const report = JSON.parse(readFileSync(path.join(work, 'reports', 'strided.int8', 'report.json'), 'utf8'));
    expect(report.provenance.calibration.config.floatPrefix).toBe('1 (through s1)');
    expect((report.provenance.floatLayers as { layer: string; reason: string }[]).find((l) => l.layer === 's1')?.reason).toMatch(/float prefix through 1 strided conv .*as given/);
    const auto = faceopt(['optimize', '--int8', '--model', file, '--quiet'], { env });
    expect(auto.code).toBe(0);
    expect(auto.stderr).toMatch(/float prefix: .*the fastest of 3 timed, shortest within 3% \(0: [\d.]+ ms, 1: [\d.]+ ms, 2: [\d.]+ ms/);
    const cfg = JSON.parse(readFileSync(path.join(work, 'reports', 'strided.int8', 'report.json'), 'utf8')).provenance.calibration.config.floatPrefix;
    expect(cfg).toMatch(/^auto: [012]/);
    const tail = faceopt(['optimize', '--int8', '--model', file, '--float-prefix', '0', '--float-suffix', '1', '--quiet'], { env });
    expect(tail.code).toBe(0);
    expect(tail.stderr).toMatch(/float suffix: after the last strided conv \(float from s2's output on\), as given/);
    const tailReport = JSON.parse(readFileSync(path.join(work, 'reports', 'strided.int8', 'report.json'), 'utf8'));
    expect(tailReport.provenance.calibration.config.floatSuffix).toBe('1 (after s2)');
    expect((tailReport.provenance.floatLayers as { layer: string; reason: string }[]).find((l) => l.layer === 'last')?.reason).toMatch(/float suffix after the last strided conv/);
    const bad = faceopt(['optimize', '--int8', '--model', file, '--float-prefix', 'deep', '--quiet'], { env });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('--float-prefix');
  });

  it('a model onnxruntime cannot load is refused at once, naming the file, in one line (it said "<buffer>", beside onnxruntime\'s own log line)', async () => {
    const file = path.join(work, 'unknown-op.onnx');
    await saveModel(tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 4] }, outputs: ['y'],
      nodes: [makeNode('NoSuchOp', ['x'], ['y'], 'mystery')],
    }), file);
    for (const mode of ['--int8', '--fp32', '--tensorrt']) {
      const r = faceopt(['optimize', mode, '--model', file, '--out', path.join(work, `unknown-op${mode === '--tensorrt' ? '.trt' : '.x.onnx'}`), '--quiet'], { env });
      expect(r.code, r.stderr).toBe(70);
      expect(r.stderr).toMatch(new RegExp(`^faceopt: FACEOPT_ERR_INFERENCE: Inference failed in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*NoSuchOp`, 'm'));
      expect(r.stderr).not.toMatch(/onnxruntime:/); // onnxruntime's own log line
      expect(r.stderr).not.toMatch(/^calibration:/m);
    }
  });

  it('refuses an already quantized model and a missing mode with coded errors', () => {
    const q = path.join(work, 'models', 'mlp.int8.onnx');
    const again = faceopt(['optimize', '--int8', '--model', q, '--quiet'], { env });
    expect(again.code).toBe(65);
    expect(again.stderr).toContain('FACEOPT_ERR_ALREADY_QUANTIZED');
    const none = faceopt(['optimize', '--model', q], { env });
    expect(none.code).toBe(64);
    expect(none.stderr).toContain('exactly one of --int8, --fp32, --tensorrt for mode but received none');
    const two = faceopt(['optimize', '--int8', '--fp32', '--model', q], { env });
    expect(two.code).toBe(64);
    expect(two.stderr).toContain('but received --int8 and --fp32.');
  });

  it('refuses an option the chosen mode does not read, naming the modes that do (it was ignored)', () => {
    const m = path.join(work, 'not-quantized.onnx');
    saveModel(tinyModel({ opset: 13, input: { name: 'x', shape: [1, 2] }, outputs: ['y'], nodes: [makeNode('Relu', ['x'], ['y'], 'r')] }), m);
    const cases: [string[], string][] = [
      [['--int8', '--precision', 'fp16'], 'Expected options that --int8 reads for optimize --int8 but received --precision, which only --tensorrt reads; leave it out or use that mode.'],
      [['--fp32', '--faces', work], 'Expected options that --fp32 reads for optimize --fp32 but received --faces, which only --int8 and --tensorrt read; leave it out or use that mode.'],
      [['--tensorrt', '--float-prefix', '0'], 'but received --float-prefix, which only --int8 reads;'],
      [['--fp32', '--no-evaluate'], 'but received --no-evaluate, which only --int8 and --tensorrt read;'],
      [['--tensorrt', '--no-prune-float'], 'but received --no-prune-float, which only --int8 reads;'],
      [['--tensorrt', '--prune-float'], 'but received --prune-float, which only --int8 reads;'],
    ];
    for (const [args, message] of cases) {
      const r = faceopt(['optimize', '--model', m, ...args], { env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(64);
      expect(r.stderr).toContain(message);
    }
  });
});

describeShared('faceopt optimize on the shared models (small calibration, checks the artefacts)', () => {
  it('an --out folder, an output folder that cannot be made, a missing --face-free photo: coded errors before calibration', () => {
    const base = ['optimize', '--int8', '--model', shared('models', 'scrfd_500m_bnkps.onnx'), '--faces', shared('faces', 'lfw'), '--calibration-size', '8', '--quiet'];
    const file = path.join(work, 'a-file');
    writeFileSync(file, 'x');
    const cases: [string[], number, RegExp][] = [
      [['--out', work], 64, /FACEOPT_ERR_BAD_ARGUMENT: .*--out.*a folder/],
      [['--out', path.join(file, 'x.onnx')], 73, /FACEOPT_ERR_WRITE_FAILED: .*is a file, not a folder/],
      [['--report-dir', path.join(file, 'r')], 73, /FACEOPT_ERR_WRITE_FAILED/],
      [['--face-free', path.join(work, 'no-such-photo.jpg')], 66, /FACEOPT_ERR_FILE_NOT_FOUND/],
      // a typo in --exclude used to quantize the layer meant to stay float, without a word
      [['--exclude', 'Conv_0,Conv_99999'], 64, /FACEOPT_ERR_BAD_ARGUMENT: Expected node names or op types of scrfd_500m_bnkps\.onnx \(its op types: .*\) for --exclude but received Conv_99999, which names no node/],
      // a --stats file that is not one fails before the photos are read (it was checked after them)
      [['--stats', shared('faces', 'groups', 'dogs.jpg')], 65, /FACEOPT_ERR_STATS: .*dogs\.jpg cannot be used: not JSON: a binary file/],
      // a size the fixed detector cannot take failed in calibration (exit 70, the runtime's message cut off)
      [['--det-size', '320'], 64, /FACEOPT_ERR_BAD_ARGUMENT: Expected 640x640 \(this detector's fixed input size/],
    ];
    for (const [extra, exit, message] of cases) {
      const r = faceopt([...base, ...extra], { env });
      expect(r.code, `${extra.join(' ')}: ${r.stderr}`).toBe(exit);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/^calibration:/m);
      expect(r.stderr).not.toMatch(/^rewrites:/m);
    }
    // a dynamic detector was quantized at 100, which no detector run accepts; a recognizer ignored it
    const dyn = faceopt(['optimize', '--int8', '--model', shared('models', 'scrfd_500m_bnkps_dynamic.onnx'), '--det-size', '100', '--no-evaluate', '--quiet'], { env });
    expect(dyn.code, dyn.stderr).toBe(64);
    expect(dyn.stderr).toMatch(/FACEOPT_ERR_BAD_ARGUMENT: Expected a multiple of 32 for --det-size but received 100x100/);
    // --tensorrt too (WxH): a 320x320 plan of the fixed detector was written, and failed at the engine build
    const trt = faceopt(['optimize', '--tensorrt', '--precision', 'fp16', '--model', shared('models', 'scrfd_500m_bnkps.onnx'), '--det-size', '320x320', '--no-evaluate', '--out', path.join(work, 'd320.trt'), '--quiet'], { env });
    expect(trt.code, trt.stderr).toBe(64);
    expect(trt.stderr).toMatch(/Expected 640x640 \(this detector's fixed input size/);
    for (const mode of ['--int8', '--fp32', '--tensorrt']) {
      const rec = faceopt(['optimize', mode, '--model', shared('models', 'mobileface_paddle_128d.onnx'), '--det-size', '640', '--quiet'], { env });
      expect(rec.code, rec.stderr).toBe(64);
      expect(rec.stderr).toMatch(/Expected no --det-size for a recognizer \(its faces are aligned to its 112x112 input/);
    }
    const t = faceopt(['optimize', '--tensorrt', '--model', shared('models', 'scrfd_500m_bnkps.onnx'), '--faces', shared('faces', 'lfw'), '--out', path.join(file, 'b.trt'), '--quiet'], { env });
    expect(t.code, t.stderr).toBe(73);
    const typo = faceopt(['optimize', '--tensorrt', '--model', shared('models', 'scrfd_500m_bnkps.onnx'), '--faces', shared('faces', 'lfw'), '--exclude', 'relu_1', '--out', path.join(work, 'typo.trt'), '--quiet'], { env });
    expect(typo.code, typo.stderr).toBe(64);
    expect(typo.stderr).toContain('received relu_1, which names no node and no op type of it; node names containing it: Relu_1');
  });
  it('a face model without --faces is calibrated on synthetic inputs with a warning that says so', () => {
    const out = path.join(work, 'nofaces', 'm.onnx');
    const r = faceopt(['optimize', '--int8', '--model', shared('models', 'mobileface_paddle_128d.onnx'), '--out', out, '--no-evaluate', '--quiet', '--float-prefix', '0', '--float-suffix', '0'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: a recognizer calibrated on synthetic N\(0,1\) inputs instead of faces: .* pass --faces DIR/m);
    expect(r.stderr).toMatch(/^calibration: 16 synthetic batches \(N\(0,1\) inputs\), method mse$/m);
    expect(r.stderr).not.toContain('undefined');
  });
  it('a --faces folder with nothing left to evaluate on fails before calibration, after warning about so few photos', () => {
    const one = path.join(work, 'one-photo', 'Aaron_Peirsol');
    mkdirSync(one, { recursive: true });
    copyFileSync(shared('faces', 'lfw', 'Abdullah_Gul', 'Abdullah_Gul_0013.jpg'), path.join(one, 'a.jpg'));
    for (const mode of ['--int8', '--tensorrt']) {
      const r = faceopt(['optimize', mode, '--model', shared('models', 'mobileface_paddle_128d.onnx'), '--faces', path.dirname(one), '--quiet', '--out', path.join(work, `one${mode}`)], { env });
      expect(r.code, r.stderr).toBe(64);
      expect(r.stderr).toMatch(/FACEOPT_ERR_BAD_ARGUMENT: Expected photos held apart for the evaluation .* whose 1 photo\(s\) all go into calibration/);
      expect(r.stderr).not.toMatch(/^calibration:/m);
      expect(r.stderr).toMatch(/^warning: calibration on 1 photo\(s\)/m);
    }
  });
  it('a malformed --pairs or --boxes file fails before calibration, for --int8 and --tensorrt', () => {
    const bad = path.join(work, 'bad-pairs.tsv');
    writeFileSync(bad, 'garbage line\n');
    for (const [mode, flag] of [['--int8', '--pairs'], ['--tensorrt', '--pairs'], ['--int8', '--boxes']] as const) {
      const model = flag === '--boxes' ? 'scrfd_500m_bnkps.onnx' : 'mobileface_paddle_128d.onnx'; // --boxes: detectors only
      const r = faceopt(['optimize', mode, '--model', shared('models', model), '--faces', shared('faces', 'lfw'),
        '--calibration-list', shared('faces', 'lfw', 'calibration.txt'), flag, bad, '--quiet', '--out', path.join(work, `early${mode}`)], { env });
      expect(r.code, `${mode} ${flag}: ${r.stderr}`).toBe(64);
      expect(r.stderr).toMatch(/FACEOPT_ERR_BAD_ARGUMENT: .*bad-pairs\.tsv/);
      expect(r.stderr).not.toMatch(/^calibration:/m);
    }
  });
  it('mobileface: calibrated on aligned LFW faces, QDQ model that loads; --fp32 is exact and faster-form', async () => {
    const r = faceopt(['optimize', '--int8', '--model', shared('models', 'mobileface_paddle_128d.onnx'), '--faces', shared('faces', 'lfw'),
      '--calibration-list', shared('faces', 'lfw', 'calibration.txt'), '--calibration-size', '40', '--max-float-layers', '0', '--no-evaluate', '--quiet'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/33 PRelu as residual-dw\n/); // none fell back to sign-dw
    const out = path.join(work, 'models', 'mobileface_paddle_128d.int8.onnx');
    const q = loadModel(out);
    expect(q.opset()).toBeGreaterThanOrEqual(13);
    expect(q.graph.opHistogram().DequantizeLinear).toBeGreaterThan(50);
    expect(existsSync(path.join(work, 'reports', 'mobileface_paddle_128d.int8', 'stats.json'))).toBe(true);
    const f = faceopt(['optimize', '--fp32', '--model', shared('models', 'mobileface_paddle_128d.onnx')], { env });
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(/max output difference/);
    const fg = loadModel(path.join(work, 'models', 'mobileface_paddle_128d.fp32.onnx')).graph;
    expect(fg.opHistogram().PRelu).toBeUndefined();
    // the rewritten PRelus' slopes are gone with them (onnxruntime warned about each unused one)
    expect(fg.initializerNames().filter((t) => !fg.consumers(t).length)).toEqual([]);
  });
  it('scrfd_500m: calibrated on letterboxed frames, evaluated on group photos with a report', async () => {
    const r = faceopt(['optimize', '--int8', '--model', shared('models', 'scrfd_500m_bnkps.onnx'), '--faces', shared('faces', 'lfw'),
      '--calibration-list', shared('faces', 'lfw', 'calibration.txt'), '--calibration-size', '24', '--max-float-layers', '0',
      '--boxes', shared('faces', 'groups', 'testing.xml'), '--quiet'], { env });
    expect([0, 3]).toContain(r.code); // the report decides; with no float budget the gates may fail
    const report = JSON.parse(readFileSync(path.join(work, 'reports', 'scrfd_500m_bnkps.int8', 'report.json'), 'utf8'));
    expect(report.role).toBe('detector');
    expect(report.detector.vsGroundTruth.reference.recall).toBe(1);
    // annotations have no score: no score drift against them (it read 1 - the mean detector score)
    expect(report.detector.vsGroundTruth.reference.scoreDrift).toBeNull();
    expect(report.detector.vsReference.scoreDrift.meanAbs).toEqual(expect.any(Number));
    expect(report.detector.vsReference.recall).toBeGreaterThan(0.9);
    // the evaluation data counts and names the annotated photos the detections were compared on too
    // (it said 200 held-apart photos where 200 + the annotated ones were compared)
    expect(report.evaluationData.split.evaluationImages).toBe(report.detector.vsReference.images);
    // the config records the search budget and target in effect (re-evaluations keep it; the flag was lost)
    expect(report.provenance.calibration.config).toMatchObject({ maxFloatLayers: 0, targetCosine: expect.any(Number) });
    expect(report.evaluationData.split.description).toMatch(/; plus \d+ annotated photos of testing\.xml$/);
    expect(r.code === 0).toBe(report.gates.pass);
  });
});
