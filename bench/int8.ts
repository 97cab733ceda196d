/**
 * `npm run bench:int8`: INT8 vs FP32, measured side by side in one run (the two models take turns in blocks
 * of runs; the ratio is the median of the per-block ratios, the latencies p50s over all runs). Speed rows
 * use synthetic calibration where only speed matters (fixtures);
 * accuracy rows come from the reports `faceopt optimize --int8` wrote (run it first, see README), and the
 * calibrate+quantize row times `faceopt optimize --int8 --no-evaluate` (the CLI, start to exit) on the
 * shared LFW calibration list.
 *
 *   node dist/bench/int8.js [--shared DIR] [--reports DIR] [--skip-pipeline] [--runs N] [--threads N]
 *
 * `--threads N` times every session with N intra-op threads (default: onnxruntime's, one per core);
 * `--threads 1` is what each lane of `faceopt serve`'s default layout on a small machine runs with.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadModel, saveModel } from '../pipeline/onnx/model.js';
import { prepareFloatGraph, quantizeModel, INT8_REWRITES } from '../pipeline/quantize/index.js';
import { collectActivationStats, type InputBatch } from '../pipeline/calibrate/run.js';
import { measureSpeed, SPEED_BLOCK } from '../pipeline/evaluate/speed.js';
import { checkNumber } from '../pipeline/errors.js';
import { ratioRange } from '../pipeline/report/format.js';
import { alignCentralFaces } from '../pipeline/evaluate/recognizer-eval.js';
import { ArcFaceRecognizer } from '../pipeline/faces/arcface.js';
import { fixtureFile } from '../test/fixtures/index.js';
import type { Report } from '../pipeline/report/types.js';
import { benchArgs } from './args.js';

const args = benchArgs('int8', 'INT8 vs FP32 side by side: speed on fixtures and the shared models, size, accuracy from the reports, calibrate+quantize time.', {
  shared: { value: 'DIR', help: 'the shared data folder', default: process.env.FACEOPT_SHARED ?? '../shared' },
  reports: { value: 'DIR', help: 'where `faceopt optimize --int8` wrote its reports', default: 'reports' },
  'skip-pipeline': { help: 'skip the calibrate+quantize row (the slowest)' },
  runs: { value: 'N', help: 'timed runs per model and row (in blocks of 10; the ratio is the median block ratio)', default: '30' },
  threads: { value: 'N', help: 'intra-op threads for every session (default: one per core)' },
});
const runs = checkNumber('--runs', args.runs, { min: 1, max: 100_000, integer: true });
const threads = args.threads === undefined ? undefined : checkNumber('--threads', args.threads, { min: 1, max: 256, integer: true });
const shared = path.resolve(args.shared);
// the shared-model rows need the data; say so at the start rather than leave them out after minutes of fixture rows
if (!existsSync(path.join(shared, 'models'))) process.stderr.write(`bench:int8: ${shared} has no models folder: the shared-model rows are skipped (pass --shared DIR or set FACEOPT_SHARED)\n`);
const work = mkdtempSync(path.join(tmpdir(), 'faceopt-bench-int8-'));

function synthetic(dims: number[], count: number): InputBatch[] {
  let s = 3;
  return Array.from({ length: count }, () => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; data[i] = (s / 2 ** 32) * 2 - 1; }
    return { data, dims };
  });
}

/** Quantize with the INT8 defaults on synthetic inputs (speed only) and save next to the bench files. */
async function quantizeForSpeed(file: string, dims: number[]): Promise<string> {
  const m = loadModel(file);
  prepareFloatGraph(m, { ...INT8_REWRITES, equalize: false });
  const stats = await collectActivationStats(m, synthetic(dims, 2), { method: 'minmax' });
  const q = quantizeModel(m, Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.range])));
  const out = path.join(work, `${path.basename(file, '.onnx')}.int8.onnx`);
  await saveModel(q.model, out);
  return out;
}

const rows: string[][] = [['measure', 'FP32', 'INT8', 'ratio', 'goal']];
const row = (...r: string[]) => { rows.push(r); console.error(r.join(' | ')); };

async function speedRow(label: string, fp32: string, int8: string, dims: number[], batch: 1 | 8, goal: string) {
  const s = await measureSpeed({ reference: fp32, variant: int8, dims: [1, ...dims.slice(1)], batch8: batch === 8, runs, ...(threads ? { session: { intraOpThreads: threads } } : {}) });
  const r = batch === 8 ? s.reference.batch8! : s.reference.batch1;
  const v = batch === 8 ? s.variant.batch8! : s.variant.batch1;
  const blocks = (batch === 8 ? s.blockSpeedups?.batch8 : s.blockSpeedups?.batch1) ?? [];
  // the median of the block ratios (measureSpeed's speed-up); the latencies are p50s over all runs
  row(label, `${r.p50Ms.toFixed(2)} ms`, `${v.p50Ms.toFixed(2)} ms`, `${(batch === 8 ? s.speedup.batch8! : s.speedup.batch1).toFixed(2)}x (blocks ${ratioRange(blocks)})`, goal);
}

// --- speed: fixtures and shared models ------------------------------------------------------
const sizeRow = (label: string, fp32: string, int8: string) =>
  row(`model file size, ${label}`, `${(statSync(fp32).size / 1e6).toFixed(2)} MB`, `${(statSync(int8).size / 1e6).toFixed(2)} MB`, `${(statSync(int8).size / statSync(fp32).size).toFixed(3)}`, '<= 0.27');

const r50 = await fixtureFile('iresnet50');
const r50int8 = await quantizeForSpeed(r50, [8, 3, 112, 112]);
await speedRow('IResNet-50 fixture, batch 8', r50, r50int8, [8, 3, 112, 112], 8, '>= 3.0x');
sizeRow('IResNet-50 fixture (w600k_r50 architecture, every layer int8)', r50, r50int8);
const mbf = await fixtureFile('mobilefacenet512');
await speedRow('MobileFaceNet-512 fixture, batch 1', mbf, await quantizeForSpeed(mbf, [1, 3, 112, 112]), [1, 3, 112, 112], 1, '>= 2.5x');
const mobileface = path.join(shared, 'models', 'mobileface_paddle_128d.onnx');
const scrfd = path.join(shared, 'models', 'scrfd_500m_bnkps.onnx');
const reportOf = (name: string): Report | null => {
  const f = path.join(args.reports, `${name}.int8`, 'report.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Report) : null;
};
/** Which INT8 file a shared-model row timed: the variant its report describes, else a speed-only quantization (said so below the table). */
const sources: string[] = [];
async function sharedInt8(name: string, file: string, dims: number[], makeIt: string): Promise<string> {
  const r = reportOf(name);
  if (r && existsSync(r.variant.path)) {
    sources.push(`${name}: ${r.variant.path} (the variant of ${path.join(args.reports, `${name}.int8`)})`);
    return r.variant.path;
  }
  sources.push(`${name}: no ${path.join(args.reports, `${name}.int8`, 'report.json')}, so a speed-only quantization (every layer int8, synthetic calibration, no float prefix or suffix): not the variant faceopt ships; for that run first \`${makeIt}\``);
  return quantizeForSpeed(file, dims);
}
const sharedFaces = path.join(shared, 'faces');
const lfwArgs = `--faces ${path.join(sharedFaces, 'lfw')} --calibration-list ${path.join(sharedFaces, 'lfw', 'calibration.txt')}`;
if (existsSync(mobileface)) {
  const int8 = await sharedInt8('mobileface_paddle_128d', mobileface, [1, 3, 112, 112], `faceopt optimize --int8 --model ${mobileface} ${lfwArgs}`);
  await speedRow('mobileface_paddle_128d, batch 1', mobileface, int8, [1, 3, 112, 112], 1, '>= 2.5x');
  sizeRow('mobileface', mobileface, int8);
}
if (existsSync(scrfd)) {
  const int8 = await sharedInt8('scrfd_500m_bnkps', scrfd, [1, 3, 640, 640], `faceopt optimize --int8 --model ${scrfd} ${lfwArgs} --calibration-size 100 --boxes ${path.join(sharedFaces, 'groups', 'training.xml')} --boxes ${path.join(sharedFaces, 'groups', 'testing.xml')} --face-free ${path.join(sharedFaces, 'groups', 'dogs.jpg')}`);
  await speedRow('scrfd_500m_bnkps at 640, batch 1', scrfd, int8, [1, 3, 640, 640], 1, '>= 1.8x');
  sizeRow('scrfd_500m', scrfd, int8);
}

// --- accuracy: from the reports ---------------------------------------------------------------
const rec = reportOf('mobileface_paddle_128d');
if (rec?.recognizer) {
  const c = rec.recognizer.cosine;
  row('mobileface embeddings, INT8 vs FP32 cosine', '1', `mean ${c.mean.toFixed(5)}, min ${c.min.toFixed(5)}`, '', 'mean >= 0.995, min >= 0.97');
  const v = rec.recognizer.verification;
  if (v) row('LFW DevTest 10-fold accuracy', `${(v.reference.kFold.accuracyMean * 100).toFixed(2)}%`, `${(v.variant.kFold.accuracyMean * 100).toFixed(2)}%`, `${(v.delta.delta * 100).toFixed(3)} pp`, '>= -0.2 pp');
} else row('mobileface accuracy rows', '-', '-', '-', 'run `faceopt optimize --int8` first (README)');
const det = reportOf('scrfd_500m_bnkps');
if (det?.detector) {
  const d = det.detector.vsReference;
  row('SCRFD-500M detections vs FP32', '-', `recall ${((d.recall ?? 0) * 100).toFixed(2)}%, kps error ${((d.keypointError?.mean ?? 0) * 100).toFixed(2)}%`, '', 'recall >= 99.5%, kps <= 2%');
}

// --- calibrate + quantize time vs one FP32 pass over the same 300 faces -----------------------
if (!args['skip-pipeline'] && existsSync(mobileface)) {
  const faces = path.join(shared, 'faces', 'lfw');
  const list = path.join(faces, 'calibration.txt');
  const images = readFileSync(list, 'utf8').trim().split('\n');
  let t0 = performance.now();
  const aligned = await alignCentralFaces(scrfd, faces, images);
  const rec32 = await ArcFaceRecognizer.load(mobileface);
  await rec32.embed([...aligned.crops.values()].filter((c) => c !== null) as never);
  await rec32.release();
  const fp32Pass = performance.now() - t0;
  // the command a user runs (its launcher included), start to exit, without the evaluation
  t0 = performance.now();
  const cli = spawnSync(process.execPath, [path.resolve('bin/faceopt.js'), 'optimize', '--int8', '--quiet', '--no-evaluate', '--model', mobileface,
    '--faces', faces, '--calibration-list', list, '--detector', scrfd, '--out', path.join(work, 'pipeline.int8.onnx'), '--report-dir', path.join(work, 'pipeline-report')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const pipeline = performance.now() - t0;
  if (cli.status !== 0) throw new Error(`faceopt optimize --int8 exited ${cli.status ?? cli.signal}`);
  row('calibrate (300 faces) + quantize mobileface', `${(fp32Pass / 1000).toFixed(1)} s (one FP32 pass)`, `${(pipeline / 1000).toFixed(1)} s`, `${(pipeline / fp32Pass).toFixed(2)}x`, '<= 60 s, <= 4x');
}

const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
console.log(`speed rows: ${threads ? `${threads} intra-op thread(s) per session` : "onnxruntime's default intra-op threads (one per core)"}, ${runs} timed runs per model in blocks of ${SPEED_BLOCK.runs}; ratio = median of the block ratios, FP32/INT8 = p50 over all runs`);
console.log(rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join(' | ')).join('\n'));
for (const line of sources) console.log(`int8 file, ${line}`);
