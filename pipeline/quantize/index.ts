/**
 * The quantizer's public face: prepare a float graph (opset upgrade + exact rewrites that make it fast
 * on CPUs) and quantize a prepared graph from calibrated ranges. The rewrites are switchable and the
 * same ones make a lossless `--fp32` optimisation.
 */
import { FaceoptError } from '../errors.js';
import type { OnnxModel } from '../onnx/model.js';
import { upgradeOpset } from '../onnx/opset.js';
import { quantizationEvidence } from '../onnx/summary.js';
import { batchNormsToDepthwise, foldBatchNorms, type BatchNormFoldResult } from './rewrites/batchnorm.js';
import { mergeSiblingConvs, type SiblingMerge } from './rewrites/siblings.js';
import { padChannels, type PaddedChannels } from './rewrites/pad-channels.js';
import { rewritePrelus, type PreluRewriteResult } from './rewrites/prelu.js';
import { insertQdq, type QdqResult, type RangeTable } from './qdq.js';
import { resolveQuantizeOptions, type QuantizeOptions } from './options.js';

export type PreluRewrite = 'keep' | 'affine-relu' | 'affine-dw' | 'sign-dw' | 'sign-concat' | 'residual-dw' | 'relu-min' | 'split-relu' | 'max';

export interface FloatRewriteOptions {
  /** Fold BatchNormalization into neighbouring Conv/Gemm where exact. */
  foldBatchNorm: boolean;
  /** Also fold BN into a following zero-padded Conv (approximate at image borders). */
  preConvPaddedBatchNorm: boolean;
  /** How PRelu is expressed: onnxruntime's PRelu kernel is slow, and has no int8 form. */
  prelu: PreluRewrite;
  /** Cross-layer equalization from measured channel ranges (needs calibration data; INT8 only). */
  equalize?: boolean;
  /** BatchNorm that cannot be folded becomes an (exact) depthwise 1x1 Conv, which has an int8 kernel. */
  batchNormAsConv?: boolean;
  /** Convolutions reading one tensor with one geometry become one Conv + Split (exact; rewrites/siblings.ts). */
  mergeSiblingConvs?: boolean;
  /** Channel counts around depthwise convolutions padded to multiples of 16 with zeros (exact; rewrites/pad-channels.ts). */
  padChannels?: boolean;
}

/**
 * Rewrites for INT8. `residual-dw` (x + Relu((a-1)*x), one depthwise 1x1 convolution and an Add, with
 * the channels whose slope is above 1 negated around it; `sign-dw` where that cannot be done) since
 * 2026-12-05: onnxruntime's profiler had mobileface's int8 PRelus (three depthwise convolutions and an Add
 * each) at ~46% of a batch-1 run. README command with each form, the two int8 files side by side
 * (a one-off script, blocks alternating, 22:1x): batch 1 3.77 -> 2.94 ms (1.28x), batch 8 18.8 -> 15.4
 * ms (1.22x), one thread 4.22 -> 3.13 ms (1.35x); gates pass (mean cosine 0.99554 vs 0.99578, min 0.98095
 * vs 0.98020, LFW -0.10 vs 0.00 pp, inside that row's noise). IResNet-50 fixture, every layer int8,
 * batch 6, one thread: 198.2 -> 189.4 ms (1.05x).
 *
 * Before that (measured on this project's CPU with mobileface_paddle_128d): `sign-dw`
 * (Relu(x) + (-a)*Relu(-x), every part a depthwise 1x1 convolution) runs entirely in int8 kernels, keeps
 * every slope at 8 bits and has no cancelling terms: all-int8 embedding cosine 0.976 against 0.925 for
 * `affine-dw` (a*x + (1-a)*Relu(x)) at the same speed.
 *
 * `sign-dw` is also the fastest float form, and exact in float (each term is one product with +-1 or the
 * slope). onnxruntime fuses each depthwise 1x1 Conv with its Relu or the Add into one NCHWc kernel, where
 * `relu-min` (Relu(x) + a*Min(x,0)) runs four elementwise passes. Measured with `optimize --fp32`
 * (2026-11-29, speed-up over the original at batch 1 / 8): mobileface_paddle_128d 2.73x / 2.83x
 * against 2.06x / 1.90x for `relu-min`; the MobileFaceNet fixture 3.08x / 3.01x against 2.62x / 2.37x;
 * the IResNet-50 fixture 1.27x / 1.29x against 1.23x / 1.23x.
 */
export const INT8_REWRITES: Readonly<FloatRewriteOptions> = Object.freeze({ foldBatchNorm: true, preConvPaddedBatchNorm: false, prelu: 'residual-dw', equalize: true, batchNormAsConv: true, mergeSiblingConvs: true, padChannels: true });
export const FP32_REWRITES: Readonly<FloatRewriteOptions> = Object.freeze({ foldBatchNorm: true, preConvPaddedBatchNorm: false, prelu: 'sign-dw', equalize: false, mergeSiblingConvs: true });

export interface PrepareReport {
  opset: { from: number; to: number; rewritten: number };
  batchNorm: BatchNormFoldResult['folded'];
  /** BatchNorm nodes turned into depthwise 1x1 convolutions. */
  batchNormAsConv: string[];
  prelu: PreluRewriteResult;
  /** Sibling convolutions merged (INT8: their parts share one int8 range after normalizeSiblingRanges). */
  siblings: SiblingMerge[];
  /** Channel sets padded to a multiple of 16. */
  padded: PaddedChannels[];
}

/** Refuse a graph that already carries quantization. */
export function assertFloatModel(model: OnnxModel, label: string): void {
  const evidence = quantizationEvidence(model);
  if (evidence.length) throw new FaceoptError('FACEOPT_ERR_ALREADY_QUANTIZED', { path: label, ops: evidence.slice(0, 3).join(', ') });
}

/**
 * Refuse a model whose inputs faceopt cannot feed: calibration, the accuracy comparison and the speed
 * runs all make one float tensor (photos, aligned faces or N(0,1) values). A second input or an integer
 * one (token ids, indices) failed deep inside onnxruntime as an internal error (exit 70).
 */
export function assertOneFloatInput(model: OnnxModel, label: string): void {
  const inputs = model.graph.inputs;
  const FLOAT = 1;
  if (inputs.length === 1 && inputs[0]!.elemType === FLOAT) {
    assertFeedableShape(inputs[0]!.name, inputs[0]!.shape, label);
    return;
  }
  const names = inputs.map((i) => `${i.name} (${TYPE_NAMES[i.elemType] ?? `type ${i.elemType}`})`).join(', ') || 'none';
  throw new FaceoptError('FACEOPT_ERR_GRAPH', {
    reason: `${label} has ${inputs.length === 1 ? 'the input' : `${inputs.length} inputs:`} ${names}; faceopt calibrates, compares and times models with exactly one float32 input (an image or face tensor), so this model cannot be optimized or evaluated by it`,
  });
}

/**
 * The input dims faceopt feeds a model (calibration, comparisons, timing): the declared ones, batch 1 where
 * the batch is dynamic and, for an NCHW image, 3 channels and `size` x `size` where those are dynamic.
 */
export function feedDims(shape: readonly (number | string | null)[] | null, size: number): number[] {
  return (shape ?? []).map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? 1 : i >= 2 ? size : 3));
}

/**
 * Refuse an input faceopt could not fill (feedDims): no declared shape, or a dynamic dimension other than
 * the batch in an input that is not NCHW (a feature width filled with 3 failed inside onnxruntime, exit 70).
 */
function assertFeedableShape(name: string, shape: readonly (number | string | null)[] | null, label: string): void {
  const fixIt = 'export it with that dimension fixed (onnxruntime\'s `python -m onnxruntime.tools.make_dynamic_shape_fixed --dim_param NAME --dim_value N in.onnx out.onnx` does it)';
  if (shape === null) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `${label}'s input ${name} declares no shape, so faceopt cannot make inputs for it: export it with its input shape declared` });
  }
  if (shape.length === 4) return;
  const free = shape.map((d, i) => ({ d, i })).filter(({ d, i }) => i > 0 && !(typeof d === 'number' && d > 0));
  if (!free.length) return;
  const dims = free.map(({ d, i }) => `${i}${typeof d === 'string' && d ? ` ('${d}')` : ''}`).join(', ');
  throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `${label}'s input ${name} [${shape.map((d) => d ?? '?').join(', ')}] has dynamic dimension ${dims}: faceopt fills a dynamic batch with 1 and the height and width of an NCHW image with --det-size, but cannot know this one; ${fixIt}` });
}

const TYPE_NAMES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16' };

/** Upgrade to `opset` and apply the float rewrites in place. */
export function prepareFloatGraph(model: OnnxModel, rw: FloatRewriteOptions, opset = 13): PrepareReport {
  // nodes are told apart by name (mixed precision, exclusions, reports): none unnamed, none repeated
  model.graph.nameNodes();
  const up = upgradeOpset(model, opset);
  // weights written as Constant nodes are initializers to every pass below (and to the quantizer)
  model.graph.constantsToInitializers();
  const bn = rw.foldBatchNorm ? foldBatchNorms(model.graph, { preConvPadded: rw.preConvPaddedBatchNorm }).folded : [];
  const bnAsConv = rw.batchNormAsConv ? batchNormsToDepthwise(model.graph) : [];
  const prelu = rw.prelu === 'keep' ? { rewritten: [], skipped: [] } : rewritePrelus(model.graph, rw.prelu);
  const siblings = rw.mergeSiblingConvs ? mergeSiblingConvs(model.graph) : [];
  const padded = rw.padChannels ? padChannels(model.graph) : [];
  model.graph.toposort();
  return { opset: { from: up.from, to: up.to, rewritten: up.rewritten.length }, batchNorm: bn, batchNormAsConv: bnAsConv, prelu, siblings, padded };
}

/** Quantize a prepared float model (not modified) into a new QDQ model. */
export function quantizeModel(floatModel: OnnxModel, ranges: RangeTable, options: Partial<QuantizeOptions> = {}): { model: OnnxModel; result: QdqResult } {
  const opts = resolveQuantizeOptions(options);
  const model = floatModel.clone();
  if (model.opset() < opts.opset) upgradeOpset(model, opts.opset);
  const result = insertQdq(model.graph, ranges, opts);
  model.proto.producerName = 'faceopt';
  return { model, result };
}

export { resolveQuantizeOptions, DEFAULT_QUANTIZE_OPTIONS, type QuantizeOptions } from './options.js';
export { REDUCED_WEIGHT_QMAX, WEIGHT_QMAX, weightBitsFor } from './qparams.js';
export type { QdqResult, RangeTable } from './qdq.js';
