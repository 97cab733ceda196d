/**
 * `optimize --int8`'s last step: the written int8 file evaluated against the float model on held-apart
 * faces, with what the run knows and `faceopt evaluate` of the file alone would not (its float layers and
 * why, the search's sensitivities, the calibration settings), and the report written.
 */
import { evaluateVariant } from '../evaluate/evaluate.js';
import { floatComputeLayers } from '../evaluate/model-facts.js';
import { evaluationSetWith } from '../evaluate/split.js';
import type { AnnotatedImage, Pair } from '../evaluate/data.js';
import type { CalibrationSplit } from '../calibrate/sources.js';
import { statsHash, type CalibrationStats } from '../calibrate/stats.js';
import type { OnnxModel } from '../onnx/model.js';
import type { MixedPrecisionResult } from '../quantize/mixed.js';
import { TARGET_MARGIN } from '../quantize/mixed.js';
import type { PrefixCandidate } from '../quantize/prefix.js';
import { INT8_REWRITES, WEIGHT_QMAX, weightBitsFor } from '../quantize/index.js';
import type { Report } from '../report/types.js';
import { writeReport } from '../report/index.js';
import { partConfig, partLayers } from './float-parts.js';
import type { Int8Options } from './int8.js';

type FloatLayer = { layer: string; op: string; reason: string };
type Part = PrefixCandidate & { why: string };

export interface Int8Evaluation {
  o: Int8Options;
  role: 'recognizer' | 'detector' | 'generic';
  outPath: string;
  reportDir: string;
  mixed: MixedPrecisionResult;
  prefix: Part;
  suffix: Part;
  stats: CalibrationStats;
  statsFile: string;
  photosDir?: string;
  split: CalibrationSplit | null;
  pairs: Pair[] | null;
  annotated: AnnotatedImage[];
  detectorPath?: string;
  /** The input's dims with dynamic ones filled in, and whether its batch is dynamic. */
  inputDims: number[];
  dynamicBatch: boolean;
  detSize: number;
  /** The run's warnings so far (the report carries them). */
  warnings: string[];
  /** Why the search did not reach its target, when it did not (a warning in the report). */
  missed: string | null;
  /** The accuracy target in effect (--target-cosine or the role's default). */
  target: number;
  log: (line: string) => void;
}

/** Evaluate the written int8 file and write its report. */
export async function evaluateInt8(e: Int8Evaluation): Promise<Report> {
  const { o, role, mixed, prefix, suffix, stats } = e;
  // the search keeps a layer's weights float by excluding it: list that layer once, with the search's
  // reason; layers left float because their int8 kernel is slow are listed with theirs
  const searched = new Set(mixed.keptFloat.map((k) => k.layer));
  const kept = [
    ...partLayers(mixed.result, prefix),
    ...partLayers(mixed.result, suffix),
    ...mixed.keptFloat,
    ...mixed.result.floatNodes.filter((f) => (f.cause === 'excluded' || f.cause === 'slow-int8') && !searched.has(f.name)).map((f) => ({ layer: f.name, op: f.op, reason: f.reason })),
  ].filter((f, i, all) => all.findIndex((g) => g.layer === f.layer) === i);
  const floatLayers = byComputeLayer(mixed.model, kept);
  // annotated and face-free photos join the held-apart ones as in `faceopt evaluate` (the report counted
  // 200 evaluation photos where the detections compared 209 and a face-free one)
  const { set, annotated, faceFree, warnings: setWarnings } = evaluationSetWith({
    facesDir: e.photosDir, split: e.split, calibrationList: o.calibrationList, calibrationSize: o.calibrationSize,
    pairs: o.pairsFile && e.pairs ? { file: o.pairsFile, pairs: e.pairs } : null,
    maxImages: role === 'detector' ? 200 : 500,
    role, boxFiles: o.boxFiles ?? [], annotated: e.annotated, faceFree: o.faceFree ?? [],
  });
  const report = await evaluateVariant({
    role, reference: o.model, variant: e.outPath, variantName: 'int8', variantPrecision: o.quantize.activationType === 'int8' ? 'int8-qdq-symmetric' : 'int8-qdq',
    detector: e.detectorPath, facesDir: e.photosDir, evalImages: set.evalImages, pairs: set.pairs,
    annotated, boxFiles: o.boxFiles, faceFree,
    inputDims: e.inputDims, dynamicBatch: e.dynamicBatch, detSize: e.detSize, session: o.threads ? { intraOpThreads: o.threads } : undefined, gates: o.gates,
    split: set.split,
    calibration: { method: stats.method, images: stats.source.images, config: flatConfig(stats, o, prefix, suffix, e.target), statsPath: e.statsFile, statsSha256: statsHash(stats) },
    floatLayers,
    sensitivity: mixed.sensitivity ? { metric: 'output cosine loss (1 - cosine) on the held-apart slice when only this layer is int8', layers: mixed.sensitivity } : null,
    warnings: [...e.warnings, ...setWarnings, ...(e.missed ? [e.missed] : [])],
    command: o.command ?? null,
    log: e.log,
  });
  // what a later `faceopt evaluate` of this file keeps: its own warnings mix with the evaluation's above
  report.provenance.madeBy = { command: o.command ?? null, warnings: [...e.warnings] };
  await writeReport(e.reportDir, report);
  return report;
}

function flatConfig(stats: CalibrationStats, o: Int8Options, prefix: PrefixCandidate, suffix: PrefixCandidate, target: number): Record<string, string | number | boolean | null> {
  const q = o.quantize;
  return {
    method: stats.method, percentile: stats.settings.percentile, bins: stats.settings.bins,
    perChannel: q.perChannel ?? true, weightBits: weightBitsFor(q.weightQmax ?? WEIGHT_QMAX), activationType: q.activationType ?? 'uint8', exclude: (q.exclude ?? []).join(',') || null,
    prelu: o.rewrites?.prelu ?? INT8_REWRITES.prelu, foldBatchNorm: o.rewrites?.foldBatchNorm ?? INT8_REWRITES.foldBatchNorm,
    // the target and float budget in effect, given or default (a re-evaluation keeps this config: it is how a
    // reader learns that --max-float-layers 0 made the search miss)
    calibrationList: o.calibrationList ?? null, calibrationSize: o.calibrationSize ?? null, targetCosine: o.targetCosine ?? target, maxFloatLayers: o.maxFloatLayers ?? null,
    targetMargin: o.targetMargin ?? TARGET_MARGIN, pruneFloat: o.pruneFloat ?? false, floatPrefix: partConfig(o.floatPrefix, prefix, 'through'), floatSuffix: partConfig(o.floatSuffix, suffix, 'after'),
    mergeSiblingConvs: o.rewrites?.mergeSiblingConvs ?? INT8_REWRITES.mergeSiblingConvs ?? false,
    padChannels: o.rewrites?.padChannels ?? INT8_REWRITES.padChannels ?? false,
  };
}

/**
 * The report's float layers as the weighted layers that compute in float in the written graph (what
 * `inspect` and `evaluate` of the file alone list), each with the reason `kept` gives: its own entry
 * (float prefix or tail, exclusion, slow int8 kernel, weights kept float by the search), or that of an
 * activation kept float which it reads or writes. The search keeps activations float by tensor name, so
 * its list and the graph's used to differ (mobileface: 19 entries, three of them tensors, against 20
 * layers). Entries that match no such layer (an activation between two float-free ops) stay as they are.
 */
export function byComputeLayer(model: OnnxModel, kept: readonly FloatLayer[]): FloatLayer[] {
  const g = model.graph;
  const computing = floatComputeLayers(model, 'int8-qdq') ?? [];
  const own = new Map(kept.map((k) => [k.layer, k]));
  const used = new Set<string>();
  const rows = computing.map((c): FloatLayer => {
    const mine = own.get(c.layer);
    if (mine) { used.add(c.layer); return { layer: c.layer, op: c.op, reason: mine.reason }; }
    const n = g.node(c.layer);
    const reads = kept.find((k) => n?.input?.[0] === k.layer);
    const writes = kept.find((k) => n?.output?.includes(k.layer));
    const via = reads ?? writes;
    if (via) {
      used.add(via.layer);
      return { layer: c.layer, op: c.op, reason: `${reads ? 'reads' : 'writes'} activation ${via.layer}, kept float: ${via.reason}` };
    }
    return { layer: c.layer, op: c.op, reason: 'computes in float next to a layer kept float (its input or output is not quantized)' };
  });
  return [...rows, ...kept.filter((k) => !used.has(k.layer) && !computing.some((c) => c.layer === k.layer))];
}
