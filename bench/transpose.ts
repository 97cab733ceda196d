/**
 * `npm run bench:transpose`: onnxruntime's Transpose kernel with one and with two intra-op threads, on
 * the layout moves an INT8 graph makes at the border of a float region (NCHW -> NHWC before an int8
 * convolution, which onnxruntime runs channels-last, and back). Each case is a one-node graph timed by
 * onnxruntime's own profiler (kernel time only, no session overhead), uint8 and float.
 *
 *   node dist/bench/transpose.js [--runs N] [--threads A,B]
 *
 * Why it exists: on this project's 2-core machine the INT8 files gained much less from a second thread
 * than the float ones, and the border Transposes were the reason (docs/int8.md, "Threads").
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { checkNumber } from '../pipeline/errors.js';
import { makeNode, DataType } from '../pipeline/onnx/index.js';
import { tinyModel } from '../test/fixtures/tiny.js';
import { benchArgs } from './args.js';

const values = benchArgs('transpose', 'onnxruntime\'s Transpose kernel on the layout moves at the border of a float region, uint8 and float.', {
  runs: { value: 'N', help: 'profiled runs per case', default: '100' },
  threads: { value: 'A,B', help: 'intra-op thread counts', default: '1,2' },
});
const runs = checkNumber('--runs', values.runs, { min: 10, max: 10000, integer: true });
const threadCounts = values.threads.split(',').map((t) => checkNumber('--threads', t, { min: 1, max: 256, integer: true }));

/** Mean kernel time (us) of the Transpose node over `runs` profiled runs after 20 warm-up runs. */
async function transposeMicros(shape: number[], perm: number[], uint8: boolean, threads: number): Promise<number> {
  // uint8: Quantize -> Transpose -> Dequantize, so the Transpose itself moves bytes
  const nodes = uint8
    ? [makeNode('QuantizeLinear', ['x', 's', 'zp'], ['q'], 'q'), makeNode('Transpose', ['q'], ['t'], 't', { perm }), makeNode('DequantizeLinear', ['t', 's', 'zp'], ['y'], 'dq')]
    : [makeNode('Transpose', ['x'], ['y'], 't', { perm })];
  const initializers = uint8 ? [{ name: 's', dims: [], data: [0.02] }, { name: 'zp', dims: [], data: [128], dataType: DataType.UINT8 }] : [];
  const model = tinyModel({ opset: 13, input: { name: 'x', shape }, outputs: ['y'], nodes, initializers });
  const x = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 2), shape);
  const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-transpose-'));
  try {
    const s = await ort.InferenceSession.create(model.toBytes(), { intraOpNumThreads: threads, graphOptimizationLevel: 'disabled', enableProfiling: true, profileFilePrefix: path.join(dir, 'p') });
    for (let i = 0; i < 20; i++) await s.run({ x });
    for (let i = 0; i < runs; i++) await s.run({ x });
    s.endProfiling();
    await s.release();
    const file = readdirSync(dir).map((f) => path.join(dir, f)).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime wrote no profile');
    const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
    const times = events.filter((e) => e.cat === 'Node' && e.args?.op_name === 'Transpose' && e.name.endsWith('_kernel_time')).map((e) => e.dur);
    return times.slice(20).reduce((a, b) => a + b, 0) / Math.max(1, times.length - 20);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases: [string, number[], number[]][] = [
  ['NCHW -> NHWC, 72 x 80 x 80', [1, 72, 80, 80], [0, 2, 3, 1]],
  ['NHWC -> NCHW, 72 x 80 x 80', [1, 80, 80, 72], [0, 3, 1, 2]],
  ['NCHW -> NHWC, 16 x 320 x 320', [1, 16, 320, 320], [0, 2, 3, 1]],
  ['NHWC -> NCHW, 16 x 320 x 320', [1, 320, 320, 16], [0, 3, 1, 2]],
  ['NCHW -> NHWC, 128 x 28 x 28', [1, 128, 28, 28], [0, 2, 3, 1]],
];
ort.env.logLevel = 'error';
const header = ['move', ...threadCounts.flatMap((t) => [`uint8 ${t}t`, `float ${t}t`])];
const rows: string[][] = [header];
for (const [label, shape, perm] of cases) {
  const row = [label];
  for (const t of threadCounts) for (const u8 of [true, false]) row.push(`${(await transposeMicros(shape, perm, u8, t)).toFixed(0)} us`);
  rows.push(row);
}
const w = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(`onnxruntime ${ort.env.versions.common} Transpose kernel time, mean of ${runs} runs (profiler)`);
console.log(rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join(' | ')).join('\n'));
