/**
 * `optimize --int8`: the whole INT8 pipeline for one model.
 *   load -> refuse quantized input -> recognise role/profile -> upgrade opset + float rewrites ->
 *   calibrate on real photos (or reuse a stats file) -> quantize (QDQ) with accuracy-aware mixed
 *   precision -> save atomically and check it loads -> evaluate against the float model -> report.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { sha256, sha256File } from '../fsutil.js';
import { lockOutputs } from '../output-lock.js';
import { checkOutputs, withReleases } from './outputs.js';
import { modelOutPath, reportsDir } from '../paths.js';
import { saveModel } from '../onnx/model.js';
import { summarizeModel as graphSummary } from '../faces/graph-summary.js';
import { checkOptimizeDetSize } from '../faces/det-size.js';
import { detectProfile, guessRole, type ModelProfile } from '../faces/profile.js';
import { createSession, runFailure } from '../runtime.js';
import { activationTensors, type InputBatch } from '../calibrate/run.js';
import { checkStatsModel, loadStats } from '../calibrate/stats.js';
import type { CalibrationMethod, CollectorSettings } from '../calibrate/collectors.js';
import { detectorBatches, FacelessPhotos, recognizerBatches } from '../calibrate/sources.js';
import { feedDims, prepareFloatGraph, INT8_REWRITES, type FloatRewriteOptions } from '../quantize/index.js';
import { assertRunsAtSize, loadFloatSource } from './source.js';
import { collect, int8Stats, syntheticBatches } from './int8-stats.js';
import { evaluateInt8 } from './int8-evaluate.js';
import { rewritePrelus } from '../quantize/rewrites/prelu.js';
import { equalizeGraph, findEqualizablePairs } from '../quantize/rewrites/equalize.js';
import { collectChannelAmax, collectChannelMeans } from '../calibrate/channels.js';
import { describeMerges, normalizeSiblingRanges } from '../quantize/rewrites/siblings.js';
import { describePadding } from '../quantize/rewrites/pad-channels.js';
import { quantizeToTarget, searchTarget } from '../quantize/mixed.js';
import { floatPrefixCandidates, floatSuffixCandidates } from '../quantize/prefix.js';
import { floatPart, floatSuffixAfterSearch } from './float-parts.js';
import type { QuantizeOptions } from '../quantize/options.js';
import { checkRoleFlags, type RoleFlag } from '../evaluate/gate-options.js';
import { WEIGHTED_OPS } from '../onnx/graph.js';
import { readEvaluationInputs } from '../evaluate/data.js';
import { checkedCalibrationSplit } from '../evaluate/split.js';
import type { GateThresholds } from '../evaluate/gates.js';
import type { Report } from '../report/types.js';
import { removeReportUnlessFor } from '../report/io.js';
import { countProgress } from '../progress.js';
import { findDetectorFor } from './detector-for.js';
import { UnreadablePhotos } from '../faces/decode.js';
import { carryExclusions, checkExclusions, replacementsOf } from '../quantize/exclusions.js';

export interface Int8Options {
  /** Role-only evaluation flags the user gave (gate-options.ts): the other role's are refused before any work. */
  roleFlags?: RoleFlag[];
  model: string;
  out?: string;
  reportDir?: string;
  facesDir?: string;
  calibrationList?: string;
  calibrationSize?: number;
  method: CalibrationMethod;
  /** True when the user chose the method (otherwise detectors default to minmax). */
  methodGiven?: boolean;
  collector?: Partial<CollectorSettings>;
  statsFile?: string;
  detector?: string;
  pairsFile?: string;
  boxFiles?: string[];
  faceFree?: string[];
  targetCosine?: number;
  /** Added to the target for the search on the small held-apart slice (default TARGET_MARGIN). */
  targetMargin?: number;
  maxFloatLayers?: number;
  /** Mixed-precision ranking (see quantize/mixed.ts). */
  mixedRanking?: 'alone' | 'leave-one-out';
  /**
   * After the search, return kept-float layers the target does not need to int8 (quantize/mixed.ts
   * pruneKept). Default: on for detectors (scrfd_500m: 18 -> 12 tensors float, gates held; with the other
   * detector defaults 1.53x faster than FP32 where it was 1.03x), off for recognizers (mobileface: 16 -> 6
   * float, a few % faster, but 4 s more puts calibrate+quantize past 4x one FP32 pass).
   */
  pruneFloat?: boolean;
  /**
   * How far the graph stays float before int8 begins (quantize/prefix.ts): 'auto' (default) times no
   * prefix and a prefix through each of the first strided convolutions and keeps the fastest; a number
   * N keeps the prefix through the first N strided convolutions (0: none) without timing.
   */
  floatPrefix?: 'auto' | number;
  /**
   * Where the graph turns float again at its end (quantize/prefix.ts floatSuffixCandidates): 'auto'
   * (default) judges none and float after the last strided convolution (MAX_SUFFIX_CANDIDATES) after the accuracy
   * search (floatSuffixAfterSearch); a number N: float after the N-th strided convolution from the end
   * (0: none), before the search, untimed.
   */
  floatSuffix?: 'auto' | number;
  quantize: Partial<QuantizeOptions>;
  rewrites?: Partial<FloatRewriteOptions>;
  gates?: GateThresholds;
  detSize?: number;
  threads?: number;
  evaluate?: boolean;
  /** Correct biases for the mean shift of rounded weights (default true). */
  biasCorrection?: boolean;
  command?: string;
  log?: (line: string) => void;
  quiet?: boolean;
}

/** Default percentile for --method percentile. */
export const INT8_PERCENTILE = 99.99;

export interface Int8Result {
  modelPath: string;
  reportDir: string;
  report: Report | null;
  timings: { calibrateMs: number; quantizeMs: number; evaluateMs: number };
}

/** Run the INT8 pipeline. Throws FACEOPT_ERR_GATE_FAILED (after writing model and report) when gates fail. */
export async function optimizeInt8(o: Int8Options): Promise<Int8Result> {
  // the output model and report folder are this run's until it ends (lockOutputs), however it ends
  return withReleases((release) => runInt8(o, release));
}

async function runInt8(o: Int8Options, release: (() => void)[]): Promise<Int8Result> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  // 99.99 measured better than ORT's 99.999 on InsightFace recognizers (heavy-tailed activations)
  const percentileGiven = o.collector?.percentile !== undefined;
  o = { ...o, collector: { percentile: INT8_PERCENTILE, ...o.collector } };
  const source = await loadFloatSource(o.model);
  // unnamed nodes get the names the prepared copy gives them (by position), so --exclude can name them
  source.graph.nameNodes();
  const name = path.basename(o.model).replace(/\.onnx$/i, '');
  const outPath = modelOutPath(o.out, `${name}.int8.onnx`);
  // named after the model file written (reports/<name>.int8 by default), so a run with its own --out does
  // not overwrite the report (and stats) of the default variant, which `faceopt promote` would then
  // take for this run's file
  const reportDir = path.resolve(o.reportDir ?? path.join(reportsDir(), path.basename(outPath).replace(/\.onnx$/i, '')));
  const gs = graphSummary(source.proto);
  let profile: ModelProfile | null = null;
  const warnings: string[] = [];
  if (guessRole(gs)) profile = detectProfile(gs, {}, undefined, o.model);
  const role = profile?.role ?? 'generic';
  // photos are read for face models only: a generic model's preprocessing is unknown, so it is calibrated
  // (and its slice for the accuracy search drawn) on N(0,1) inputs, whatever --faces says
  const photosDir = role === 'generic' ? undefined : o.facesDir;
  if (role === 'generic') warnings.push(`not a face model faceopt recognises: quantized on the generic path, calibrated on synthetic N(0,1) inputs${o.facesDir ? ' (--faces is read for face models only and was not used)' : ''}`);
  checkRoleFlags(role, o.roleFlags ?? [], 'optimize --int8');
  checkOptimizeDetSize(profile, o.detSize);
  // detectors: rare large values (face logits, box offsets) are the signal, so their ranges come from
  // min/max rather than a percentile, and the heads' outputs stay float (scores near the threshold)
  if (role === 'detector') o = { ...o, method: o.methodGiven ? o.method : 'minmax', quantize: { quantizeGraphOutputs: false, ...o.quantize } };
  // recognizers: the range with the least expected squared error (mse) measured best with mixed
  // precision on mobileface (held-apart mean cosine 0.9945 vs 0.9929 for percentile 99.99, same search)
  if (role === 'recognizer' && !o.methodGiven) o = { ...o, method: 'mse' };
  // pruning the kept-float set paid off for detectors only (see Int8Options.pruneFloat)
  o = { ...o, pruneFloat: o.pruneFloat ?? role === 'detector' };
  log(`faceopt: ${name}: ${role}${profile?.role === 'recognizer' ? ` (${profile.embeddingSize ?? '?'}-d)` : ''}, opset ${source.opset()}`);
  if (role === 'generic') log(`warning: ${warnings[0]}`);
  // the evaluation's pairs and box annotations are read now, so a malformed file fails in seconds, not
  // after calibration and the search
  const { pairs, annotated } = o.evaluate !== false ? readEvaluationInputs(o) : { pairs: null, annotated: [] };
  // and the places it writes to: the model's folder and the report folder can be made and written
  checkOutputs(outPath, reportDir, o.statsFile, o.model);
  release.push(lockOutputs([{ path: outPath, flag: '--out' }, { path: reportDir, flag: o.reportDir ? '--report-dir' : 'the report folder (named after --out; --report-dir chooses another)' }]));
  // --exclude names nodes or op types of this model; a --stats file that exists must be a stats file
  // (whether it was made for this graph is known after the rewrites, which need the faces)
  checkExclusions(source.graph, o.quantize.exclude ?? [], o.model);
  const reusedStats = o.statsFile && existsSync(o.statsFile) ? await loadStats(o.statsFile) : null;

  // float graph the quantizer works on: opset, BatchNorm folding, then (after equalization) PRelu
  const prepared = source.clone();
  const rewrites = { ...INT8_REWRITES, ...o.rewrites };
  const prep = prepareFloatGraph(prepared, { ...rewrites, prelu: 'keep' }, o.quantize.opset ?? 13);
  // a --stats file of another model is refused now, before any photo is read
  if (reusedStats && o.statsFile) checkStatsModel(reusedStats, o.statsFile, activationTensors(prepared));
  // --percentile is read by the percentile method alone (a reused stats file keeps its own without --method):
  // `--percentile 99` on a recognizer calibrated with mse and said nothing
  const rangeMethod = reusedStats && !o.methodGiven ? reusedStats.method : o.method;
  if (percentileGiven && rangeMethod !== 'percentile') {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `--method percentile with --percentile (this run's ranges come from ${rangeMethod}${o.methodGiven ? '' : reusedStats ? `, the method of ${o.statsFile}` : `, the ${role} default`}, which reads no percentile)`, name: '--percentile', received: String(o.collector!.percentile) });
  }

  // calibration data
  const detSize = o.detSize ?? profile?.inputSize?.[0] ?? 640;
  if (role === 'generic') await assertRunsAtSize(source, feedDims(source.graph.inputs[0]!.shape, detSize), o.model);
  let detectorPath: string | undefined;
  const split = checkedCalibrationSplit({
    facesDir: photosDir, calibrationList: o.calibrationList, calibrationSize: o.calibrationSize, statsFile: o.statsFile,
    evaluate: o.evaluate !== false && role !== 'generic', pairs: pairs !== null, explicit: role === 'detector' ? annotated.length + (o.faceFree?.length ?? 0) : 0,
    warn: (few) => {
      warnings.push(few);
      log(`warning: ${few}`);
    },
  });
  if (role === 'recognizer' && o.facesDir) {
    detectorPath = o.detector ?? findDetectorFor(o.model);
    if (!detectorPath) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a face detector to align calibration faces (--detector FILE|PACK/FILE, or a SCRFD model next to the recognizer)', name: '--detector', received: 'nothing' });
    }
  }
  // photos that cannot be read are left out of calibration, listed once each in the log and the report
  const unreadable = new UnreadablePhotos();
  const { onUnreadable } = unreadable;
  const faceless = new FacelessPhotos();
  const batchesFor = (images: readonly string[], label: string): AsyncIterable<InputBatch> | Iterable<InputBatch> => {
    const bar = countProgress(label, images.length, { silent: o.quiet });
    if (profile?.role === 'recognizer' && o.facesDir) {
      // a recognizer exported with a fixed batch takes its faces that many at a time (batches of 16 failed)
      return recognizerBatches({ facesDir: o.facesDir, images, detector: detectorPath!, profile, ...(profile.batch ? { batch: profile.batch, exact: true } : {}), onUnreadable, onNoFace: faceless.onNoFace, onProgress: (d, _t, f) => { bar.update(d, `${f} faces`); if (d === images.length) bar.done(`${f} faces`); } });
    }
    if (profile?.role === 'detector' && o.facesDir) {
      return detectorBatches({ facesDir: o.facesDir, images, profile, detSize: [detSize, detSize], onUnreadable, onProgress: (d) => { bar.update(d); if (d === images.length) bar.done(); } });
    }
    const shape = prepared.graph.inputs[0]!.shape ?? [];
    const dims = feedDims(shape, detSize);
    return syntheticBatches(dims, 16);
  };
  const calImages = split?.calibration ?? [];
  const sliceCount = calImages.length >= 32 ? (role === "detector" ? 8 : Math.min(32, Math.max(8, Math.floor(calImages.length / 10)))) : 0;
  const statsImages = calImages.slice(0, calImages.length - sliceCount);
  const sliceImages = calImages.slice(calImages.length - sliceCount);
  // recognizer crops are small: align once and keep them; detector frames are streamed
  const t0 = performance.now();
  const statsBatches = role === 'recognizer' && o.facesDir ? await collect(batchesFor(statsImages, 'aligning calibration faces')) : null;
  // photos in which the detector found no face add nothing to calibration: say how many (it was silent)
  const noFace = faceless.warning(statsImages.length);
  if (noFace) {
    warnings.push(noFace);
    log(`warning: ${noFace}`);
  }
  const calibrationInput = () => statsBatches ?? batchesFor(statsImages, 'calibrating');

  let equalized = { pairs: 0, spreadBefore: 1, spreadAfter: 1 };
  if (rewrites.equalize) {
    const pairs = findEqualizablePairs(prepared.graph);
    const sample = statsBatches ? statsBatches.slice(0, 4) : await collect(batchesFor(statsImages.slice(0, 16), 'channel ranges'));
    const amax = await collectChannelAmax(prepared, sample, pairs.flatMap((p) => [p.tensor, p.preActivation]), o.threads);
    equalized = equalizeGraph(prepared.graph, amax);
  }
  const preluResult = rewrites.prelu === 'keep' ? { rewritten: [], skipped: [] } : rewritePrelus(prepared.graph, rewrites.prelu);
  prepared.graph.toposort();
  log(`rewrites: opset ${prep.opset.from} -> ${prep.opset.to}, ${prep.batchNorm.length} BatchNorm folded, ${prep.batchNormAsConv.length} as depthwise conv, ${equalized.pairs} layer pairs equalized (channel spread ${equalized.spreadBefore.toFixed(1)} -> ${equalized.spreadAfter.toFixed(1)}), ${preluResult.rewritten.length} PRelu as ${rewrites.prelu}${preluResult.fallback?.length ? ` (${preluResult.fallback.length} of them as sign-dw: ${preluResult.fallback[0]!.reason})` : ''}${prep.siblings.length ? `, ${describeMerges(prep.siblings)}` : ''}${prep.padded.length ? `, ${describePadding(prep.padded)}` : ''}`);
  const carried = carryExclusions(source.graph, prepared.graph, o.quantize.exclude ?? [], replacementsOf(prep));
  o = { ...o, quantize: { ...o.quantize, exclude: carried.exclude } };
  for (const note of carried.notes) {
    warnings.push(note);
    log(`warning: ${note}`);
  }
  const preparedSha = sha256(prepared.toBytes());

  const { stats, statsFile } = await int8Stats({
    o, percentileGiven, reused: reusedStats, role, prepared, preparedSha, statsImages, photosDir, description: split?.description,
    statsBatches, input: calibrationInput, reportDir, startedAt: t0, warnings, log,
  });
  // bias correction: per-channel means of every Conv input on (a subset of) the calibration inputs
  const convInputs = [...new Set(prepared.graph.nodes.filter((n) => n.opType === 'Conv').map((n) => n.input![0]!))];
  const meanSample = statsBatches ? statsBatches.slice(0, 8) : await collect(batchesFor(statsImages.slice(0, 16), 'channel means'));
  const tm = performance.now();
  const inputMeans = o.biasCorrection === false ? undefined : await collectChannelMeans(prepared, meanSample, convInputs, o.threads);
  const calibrateMs = performance.now() - t0;
  log(`calibration: done in ${(calibrateMs / 1000).toFixed(1)} s (channel means for bias correction ${((performance.now() - tm) / 1000).toFixed(1)} s)`);
  const ranges: Record<string, readonly [number, number]> = Object.fromEntries(Object.entries(stats.tensors).map(([k, v]) => [k, v.range] as const));
  // merged sibling convolutions: each part of the output mapped to [-1, 1] so one int8 scale fits all
  const restored = normalizeSiblingRanges(prepared.graph, prep.siblings, ranges);

  // quantize, keeping the fewest layers float that meet the target
  const t1 = performance.now();
  const slice = sliceImages.length ? await collect(batchesFor(sliceImages, 'held-apart slice')) : [];
  if (!slice.length && (role === 'generic' || photosDir)) {
    // without held-apart inputs the search cannot weigh any layer: say so in the report, not only the log
    const why = role === 'generic'
      ? 'no accuracy search: a generic model is calibrated on synthetic inputs and has no held-apart data to check its layers on, so every quantizable layer is int8 and its accuracy was not checked against a target'
      : calImages.length < 32
        ? `no accuracy search: ${calImages.length} calibration photos, and the search needs at least 32, so every quantizable layer is int8 whatever the target (8 to 32 of them are held apart to check each layer); pass --calibration-size 32 or more (or a longer --calibration-list)`
        : `no accuracy search: none of the ${sliceImages.length} photos held apart for it gave a usable input (unreadable, or no face found), so every quantizable layer is int8 whatever the target`;
    warnings.push(why);
    log(`warning: ${why}`);
  }
  const unreadableNote = unreadable.warning('calibration');
  if (unreadableNote) log(`warning: ${unreadableNote}`);
  // the role's target (defaultTargetCosine) plus TARGET_MARGIN
  const { target, margin, aimed } = searchTarget(role, o, `${sliceImages.length}-face slice`, log);
  const shape0 = prepared.graph.inputs[0]!.shape ?? [];
  const inputDims = feedDims(shape0, detSize);
  const baseOptions = { ...o.quantize, inputMeans, floatTensors: [...(o.quantize.floatTensors ?? []), ...restored] };
  // timed at batch 1, or at the model's own batch where it fixes one (it refuses any other)
  const dims1 = [typeof shape0[0] === 'number' && shape0[0] > 0 ? shape0[0] : 1, ...inputDims.slice(1)];
  // a given N may reach past the candidates timed by default
  const prefix = await floatPart('prefix', floatPrefixCandidates(prepared.graph, typeof o.floatPrefix === 'number' ? o.floatPrefix : undefined), prepared, ranges, baseOptions, dims1, o, log);
  const withPrefix = { ...baseOptions, floatTensors: [...baseOptions.floatTensors, ...prefix.floatTensors] };
  const suffixCandidates = floatSuffixCandidates(prepared.graph, prefix.border, typeof o.floatSuffix === 'number' ? o.floatSuffix : undefined);
  const givenSuffix = (o.floatSuffix ?? 'auto') !== 'auto';
  const suffix0 = givenSuffix ? await floatPart('suffix', suffixCandidates, prepared, ranges, withPrefix, dims1, o, log) : { ...suffixCandidates[0]!, why: '' };
  const searched0 = await quantizeToTarget({ floatModel: prepared, ranges, options: { ...withPrefix, floatTensors: [...withPrefix.floatTensors, ...suffix0.floatTensors] }, slice, target: aimed, maxFloat: o.maxFloatLayers, ranking: o.mixedRanking, prune: o.pruneFloat, log });
  const { mixed, suffix } = givenSuffix ? { mixed: searched0, suffix: suffix0 }
    : await floatSuffixAfterSearch(searched0, suffixCandidates, { prepared, ranges, options: withPrefix, slice, aimed, dims: dims1, o, log });
  mixed.model.graph.proto.name = `${prepared.graph.proto.name ?? 'graph'}-int8`;
  await checkRuns(mixed.model.toBytes(), prepared.graph.inputs[0]!.name, dims1);
  await saveModel(mixed.model, outPath, { source: o.model });
  // a report of an earlier run in the report folder described the file just replaced: removed now (unless
  // it describes these bytes), so a run stopped before its own report is written (Ctrl-C, a failed
  // evaluation) does not leave that verdict beside a file it does not describe; removed after the save,
  // not before, so a save that fails (a full disk) leaves the old model with its report
  const staleReport = await removeReportUnlessFor(reportDir, () => sha256File(outPath));
  const check = await createSession(outPath); // the model is checked after it is saved
  await check.release();
  const quantizeMs = performance.now() - t1;
  const paddedInputs = mixed.result.paddedInputs.map((p) => `, input ${p.input} read as ${p.to} channels by ${p.convs.join(', ')}`).join('');
  log(`quantized: ${mixed.result.quantizedNodes.length} nodes int8, ${mixed.keptFloat.length} activations or weights kept float (mixed precision)${paddedInputs}, written ${outPath}`);
  // an "int8" variant whose every weighted layer stays float is the float model under another name
  const int8Weighted = mixed.result.quantizedNodes.filter((n) => WEIGHTED_OPS.has(prepared.graph.node(n)?.opType ?? '')).length;
  if (int8Weighted === 0) {
    const none = `nothing compute-heavy was quantized: no Conv, Gemm or MatMul of this model runs in int8 (${mixed.result.quantizedNodes.length} nodes int8 in all; float prefix, exclusions, mixed precision or unsupported forms kept every one float), so this int8 variant is in effect the float model`;
    warnings.push(none);
    log(`warning: ${none}`);
  }

  // evaluate
  let report: Report | null = null;
  const t2 = performance.now();
  if (o.evaluate !== false) {
    report = await evaluateInt8({
      o, role, outPath, reportDir, mixed, prefix, suffix, stats, statsFile, photosDir, split, pairs, annotated, detectorPath,
      inputDims, dynamicBatch: typeof shape0[0] !== 'number' || shape0[0] <= 0, detSize,
      warnings: [...warnings, ...(unreadableNote ? [unreadableNote] : [])],
      target,
      missed: mixed.met || !slice.length ? null : `mixed precision did not reach the search target output cosine ${aimed.toFixed(4)} (target ${target} + margin ${margin}; reached ${mixed.cosine.toFixed(5)} with ${mixed.keptFloat.length} layers in float)`,
      log,
    });
  } else {
    if (staleReport) log(`report: removed the report of an earlier run from ${reportDir} (it described another file; this run did not evaluate: run \`faceopt evaluate\` for a new one)`);
  }
  const evaluateMs = performance.now() - t2;
  return { modelPath: outPath, reportDir, report, timings: { calibrateMs, quantizeMs, evaluateMs } };
}

/**
 * Run the quantized graph once on zeros before it is written: where the mixed-precision search ran no
 * candidate (no held-apart slice: a model that is not a face model) a quantizer fault gave a file that
 * loaded but failed every run, left at --out (a float Gemm with transA reading an int8 activation).
 */
export async function checkRuns(bytes: Uint8Array, input: string, dims: readonly number[]): Promise<void> {
  const failed = await runFailure(bytes, input, dims, 'the quantized graph');
  if (failed) throw new FaceoptError('FACEOPT_ERR_QUANTIZE', { node: 'the written graph', reason: `it does not run in onnxruntime at input ${dims.join('x')} (${failed.reason}); nothing was written. This is a quantizer fault: leave the layer it names float with --exclude NAME, and report the model` }, { cause: failed.error });
}
