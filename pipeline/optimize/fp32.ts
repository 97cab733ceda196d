/**
 * `optimize --fp32`: the exact float rewrites alone (BatchNorm folding, PRelu as Relu(x) + (-a)*Relu(-x)
 * in depthwise 1x1 convolutions, sibling convolutions merged; see FP32_REWRITES),
 * which make the float model faster on CPUs without changing what it computes. The rewritten model is
 * checked against the original on seeded inputs before it is kept.
 */
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { checkOptimizeDetSize } from '../faces/det-size.js';
import { summarizeModel as graphSummary } from '../faces/graph-summary.js';
import { detectProfile, guessRole } from '../faces/profile.js';
import { lockOutputs } from '../output-lock.js';
import { modelOutPath } from '../paths.js';
import { saveModel } from '../onnx/model.js';
import { createSession, floatTensor, runSession } from '../runtime.js';
import { feedDims, prepareFloatGraph, FP32_REWRITES, type FloatRewriteOptions, type PrepareReport } from '../quantize/index.js';
import { assertRunsAtSize, loadFloatSource } from './source.js';
import { measureSpeed, SPEED_RUNS } from '../evaluate/speed.js';
import { describeMerges } from '../quantize/rewrites/siblings.js';
import type { SpeedResults } from '../report/types.js';

export interface Fp32Result {
  modelPath: string;
  prepare: PrepareReport;
  maxAbsDiff: number;
  speed: SpeedResults;
}

/** Largest |a-b| over all outputs on seeded inputs in [-1, 1). */
async function maxDiff(a: Uint8Array | string, b: Uint8Array | string, dims: number[]): Promise<number> {
  const sa = await createSession(a);
  const sb = await createSession(b);
  try {
    const n = dims.reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    let s = 99;
    for (let i = 0; i < n; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; data[i] = (s / 2 ** 32) * 2 - 1; }
    const ra = await runSession(sa, { [sa.inputNames[0]!]: floatTensor(data, dims) });
    const rb = await runSession(sb, { [sb.inputNames[0]!]: floatTensor(data, dims) });
    let m = 0;
    for (const k of sa.outputNames) {
      const x = ra[k]!.data as Float32Array; const y = rb[k]!.data as Float32Array;
      for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
    }
    return m;
  } finally {
    await sa.release();
    await sb.release();
  }
}

/** Rewrite, verify (outputs within `tolerance`) and save the faster float model. */
export async function optimizeFp32(o: { model: string; out?: string; rewrites?: Partial<FloatRewriteOptions>; detSize?: number; tolerance?: number; threads?: number; log?: (l: string) => void }): Promise<Fp32Result> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const source = await loadFloatSource(o.model);
  const gs = graphSummary(source.proto);
  checkOptimizeDetSize(guessRole(gs) ? detectProfile(gs, {}, undefined, o.model) : null, o.detSize);
  const name = path.basename(o.model).replace(/\.onnx$/i, '');
  const out = modelOutPath(o.out, `${name}.fp32.onnx`);
  // the output is this run's until it ends: two runs into one --out replaced the file under the other's speed runs
  const release = lockOutputs([{ path: out, flag: '--out' }]);
  try {
    const model = source.clone();
    const prep = prepareFloatGraph(model, { ...FP32_REWRITES, ...o.rewrites, preConvPaddedBatchNorm: false });
    const shape = model.graph.inputs[0]!.shape ?? [];
    const size = o.detSize ?? 640;
    const dims = feedDims(shape, size);
    if (!guessRole(gs)) await assertRunsAtSize(source, dims, o.model);
    const diff = await maxDiff(source.toBytes(), model.toBytes(), dims);
    const tolerance = o.tolerance ?? 1e-4;
    if (!(diff <= tolerance)) {
      throw new FaceoptError('FACEOPT_ERR_QUANTIZE', { node: name, reason: `the float rewrites changed outputs by ${diff} (> ${tolerance}); rerun with --prelu keep or --no-fold-bn and report this model` });
    }
    await saveModel(model, out, { source: o.model });
    log(`fp32: ${prep.batchNorm.length} BatchNorm folded, ${prep.prelu.rewritten.length} PRelu rewritten, ${describeMerges(prep.siblings)}; outputs within ${diff.toExponential(2)} of the original; written ${out}`);
    const dynamicBatch = typeof shape[0] !== 'number' || shape[0] <= 0;
    const speed = await measureSpeed({ reference: o.model, variant: out, dims, batch8: dynamicBatch, runs: SPEED_RUNS, session: o.threads ? { intraOpThreads: o.threads } : undefined });
    return { modelPath: out, prepare: prep, maxAbsDiff: diff, speed };
  } finally {
    release();
  }
}
