/**
 * Every quantizer option, typed, with its default in one place (no string-keyed option bags).
 */
import { FaceoptError } from '../errors.js';

export type ActivationType = 'uint8' | 'int8';
export type PreluForm = 'keep' | 'split-relu' | 'max';

export interface QuantizeOptions {
  /** Per-channel weight scales (axis 0 for Conv, output axis for Gemm/MatMul). */
  perChannel: boolean;
  /**
   * Largest int8 weight magnitude (default 127). 64 (`--reduce-range`, onnxruntime's reduce_range): 7-bit
   * weights, for x86 CPUs without VNNI, where onnxruntime's uint8 x int8 kernels add pairs of products
   * in a saturating int16 (VPMADDUBSW): 255 x 127 x 2 overflows it, 255 x 64 x 2 does not.
   */
  weightQmax?: number;
  /** uint8 asymmetric (CPU, U8S8) or int8 symmetric with zero point 0 (TensorRT). */
  activationType: ActivationType;
  /** Node names or op types left in float. */
  exclude: string[];
  /** Target opset (raised automatically; per-channel Q/DQ needs 13). */
  opset: number;
  /** Fold Relu (and Clip(0, max)) into the producer's quantization range (uint8 only: Q saturates at 0). */
  foldRelu: boolean;
  /** Quantize graph outputs too (ORT-style); when false, final layers keep float outputs. */
  quantizeGraphOutputs: boolean;
  /** Activation tensors kept in float (no Q/DQ); their producers keep float weights too. */
  floatTensors: string[];
  /**
   * Per-channel means of Conv inputs (float model, calibration data). When given, each Conv's bias absorbs
   * the expected output shift its rounded weights cause: b -= (Wq - W) . E[x] (bias correction).
   */
  inputMeans?: ReadonlyMap<string, Float32Array>;
  /**
   * Keep float Conv/ConvTranspose/Gemm layers really float under onnxruntime. Since 1.20 its
   * WeightBiasQuantization transformer (basic level) quantizes the float weights of such a layer fed by a
   * per-tensor DequantizeLinear (and read by a QuantizeLinear) to *per-tensor* int8, so a layer kept float for accuracy silently ran
   * with worse weights than the int8 layers (mobileface's global depthwise conv kept float: embedding
   * cosine 0.985 -> 0.933). When true, such a layer reads its input through its own per-channel
   * DequantizeLinear (the same scale repeated), which that transformer skips. TensorRT wants per-tensor
   * activation scales, so its export turns this off.
   */
  shieldFloatLayers: boolean;
  /**
   * Relu(x) and Relu(-x) written as depthwise 1x1 convolutions of weight +1/-1 (the `sign-dw` PRelu
   * halves) take x's scale, so they add no rounding of their own (uint8 only).
   */
  exactSignConvs: boolean;
  /**
   * Layers kept float by mixed precision (their output activation, or the activation they read, is
   * float) store their weights as per-channel int8 behind a DequantizeLinear (weight-only int8), with
   * the float bias corrected for the rounding: `true` for every such layer, `false` for none, 'auto'
   * (default) for large 1x1 and depthwise convolutions only. onnxruntime dequantizes such weights at
   * every run and cannot pack them into its NCHWc layout, so float islands of 3x3 and high-resolution
   * layers ran on its slow generic convolution. Measured on mobileface with the same search (README
   * main command, 2026-11-29): `false` 16 tensors float, 2.54x at batch 1 and 2.74x at batch 8, file
   * 0.51x; `true` (one build earlier) 18 float, 2.03x / 2.17x, file 0.38x; 'auto' as fast as `false`,
   * file 0.39x (see qdq.ts storesWeightOnly). Layers excluded by name or op type, and layers whose weights the
   * search found sensitive, keep float weights either way.
   */
  weightOnlyFloatLayers: boolean | 'auto';
  /**
   * Weight-only int8 weights reach their float layer through Cast + Mul (int8 -> float, times the
   * per-channel scale) instead of a DequantizeLinear: the same float values, which onnxruntime's
   * constant folding turns into an ordinary float initializer when the session loads, so the file keeps
   * int8 weights while the layer runs on prepacked float weights with nothing to dequantize per run.
   * A DequantizeLinear on a weight is never folded (onnxruntime keeps it for its Q/DQ fusions) and
   * runs at every inference. Measured on mobileface's shipped INT8 file (2026-12-05, 4 weight-only
   * layers, quiet phase, `measureSpeed` 20 runs x 6): outputs bit-identical, 1.01-1.05x faster at
   * batch 1 and 1.01-1.05x at batch 8. `false` keeps the DequantizeLinear form.
   */
  foldableWeightOnly: boolean;
  /**
   * Leave float the layers onnxruntime's CPU int8 kernels run slower than float (see
   * handlers.slowInt8Reason: grouped convolutions that are neither dense nor depthwise). TensorRT has
   * fast kernels for them, so its export turns this off.
   */
  floatSlowInt8: boolean;
  /**
   * Store int32 biases without a zero point (ONNX says int32 has none) and weights with one scale where
   * every output channel has the same one (the +-1 sign convs of sign-dw): the same values in fewer
   * bytes (mobileface 0.386x -> 0.354x of FP32 with weight zero points dropped too, outputs
   * bit-identical). int8 weights keep their zero point since 2026-12-05: onnxruntime's symmetric-weight
   * conv kernels need it as a constant input (weights.ts). TensorRT's export turns this off: its rules
   * ask for an explicit int8 zero point on every Q/DQ node.
   */
  compactConstants: boolean;
  /**
   * No QuantizeLinear/DequantizeLinear on an activation that only float layers write and read (a layer
   * that reads a float activation, writing into one whose weights the search kept float): no int8
   * kernel would use it, so the pair only costs a pass over the tensor and adds rounding. On scrfd_500m
   * one such pair sat inside the float prefix at 160x160 (2026-12-05; docs/int8.md, "Float prefix and
   * float borders"). A Relu folded into such a tensor's range comes back as a node (qdq.ts restores every
   * folded Relu whose range ends up unquantized), and the Relu/Clip after an excluded layer runs with it
   * in float rather than between a pair of its own.
   */
  skipFloatOnlyActivations: boolean;
  /**
   * With floatSlowInt8, a stride-2 depthwise convolution that reads a float layer's output stays float
   * too, so the float region hands over to int8 after it, on a tensor a quarter the size: every border
   * costs onnxruntime a layout reorder, a QuantizeLinear and a Transpose of that tensor, and its int8
   * depthwise kernel is slower than the float one anyway (docs/int8.md, "Float prefix and float borders").
   */
  floatStridedBorders: boolean;
  /**
   * A Split that alone reads a per-tensor DequantizeLinear splits the quantized tensor instead, with one
   * DequantizeLinear per part that is read: exact (DequantizeLinear is elementwise). onnxruntime's
   * layout optimizer moves a Split after a channels-last int8 convolution into channels-last, where
   * each pixel is several small copies; on the 8-bit tensor they are cheaper. SCRFD-500M's merged heads
   * (2026-12-05, two threads, onnxruntime's profiler, quiet phase): Splits and DequantizeLinears 308 ->
   * 199 us of a ~5 ms frame, outputs identical; whole-model rotations moved by 2-3% in loaded phases
   * (8.05 -> 7.85, 5.73 -> 5.59 ms) and within noise in quiet ones. TensorRT's export turns this off
   * (its Q/DQ placement rules).
   */
  splitQuantized: boolean;
  /**
   * Int8 convolutions over a graph input with a channel count that is not a multiple of 4 (an RGB
   * image) read it padded with zero-point channels and get zero weights for them (pad-input.ts): exact;
   * IResNet-50's int8 stem 3.3 -> 2.0 ms at batch 5. TensorRT's export turns this off (its own kernels
   * take 3 channels).
   */
  padInputChannels: boolean;
}

export const DEFAULT_QUANTIZE_OPTIONS: Readonly<QuantizeOptions> = Object.freeze({
  perChannel: true,
  activationType: 'uint8',
  exclude: [],
  opset: 13,
  foldRelu: true,
  quantizeGraphOutputs: true,
  floatTensors: [],
  shieldFloatLayers: true,
  exactSignConvs: true,
  weightOnlyFloatLayers: 'auto',
  foldableWeightOnly: true,
  floatSlowInt8: true,
  compactConstants: true,
  skipFloatOnlyActivations: true,
  floatStridedBorders: true,
  splitQuantized: true,
  padInputChannels: true,
});

/** Merge user options over the defaults, validating each field and naming it in the error. */
export function resolveQuantizeOptions(partial: Partial<QuantizeOptions> = {}): QuantizeOptions {
  const o = { ...DEFAULT_QUANTIZE_OPTIONS, ...partial, exclude: [...(partial.exclude ?? DEFAULT_QUANTIZE_OPTIONS.exclude)], floatTensors: [...(partial.floatTensors ?? [])] };
  if (o.activationType !== 'uint8' && o.activationType !== 'int8') {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: '"uint8" or "int8"', name: 'activationType', received: String(o.activationType) });
  }
  if (!Number.isInteger(o.opset) || o.opset < 13 || o.opset > 21) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'integer between 13 and 21', name: 'opset', received: String(o.opset) });
  }
  if (o.weightQmax !== undefined && !(Number.isInteger(o.weightQmax) && o.weightQmax >= 1 && o.weightQmax <= 127)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'integer between 1 and 127', name: 'weightQmax', received: String(o.weightQmax) });
  }
  return o;
}
