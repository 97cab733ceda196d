/**
 * The Q/DQ graph TensorRT builds for INT8 (the only INT8 path on TensorRT 11, the recommended one on
 * 8.6 and 10): the float graph, weights laid out for axis-0 per-channel scales (`prepareForTensorrt`),
 * then `insertQdq` with symmetric int8 activations (zero point 0, scale = amax/127 — the same scale
 * the legacy calibration cache records) and TensorRT's placement table. `checkSymmetricQdq` proves
 * the result follows TensorRT's rules; the exporter refuses to return a graph that does not.
 */
import { FaceoptError } from '../errors.js';
import type { OnnxModel } from '../onnx/model.js';
import { upgradeOpset } from '../onnx/opset.js';
import { DataType, attrInt, type NodeProto } from '../onnx/proto.js';
import { insertQdq, type QdqResult, type RangeTable } from '../quantize/qdq.js';
import { resolveQuantizeOptions } from '../quantize/options.js';
import { TENSORRT_HANDLERS } from './placement.js';
import { prepareForTensorrt } from './prepare.js';

export interface QdqCheck {
  quantizeNodes: number;
  dequantizeNodes: number;
  /** DequantizeLinear nodes on int8 weight initializers (per channel). */
  weightDequantizers: number;
  /** Everything that breaks TensorRT's explicit-quantization rules; empty when the graph is fine. */
  violations: string[];
}

/**
 * Check a Q/DQ graph against TensorRT's rules: every QuantizeLinear/DequantizeLinear is int8 with a
 * zero point that is an all-zero int8 initializer and a scale initializer with every value finite and
 * > 0; activation scales are scalars; weight DequantizeLinear (on an int8 initializer) is per channel
 * on axis 0 with one scale per output channel; no graph output comes out of a DequantizeLinear.
 */
export function checkSymmetricQdq(model: OnnxModel): QdqCheck {
  const g = model.graph;
  const violations: string[] = [];
  let q = 0;
  let dq = 0;
  let weights = 0;
  const bad = (n: NodeProto, why: string) => violations.push(`${n.opType} ${n.name}: ${why}`);
  for (const n of g.nodes) {
    if (n.opType !== 'QuantizeLinear' && n.opType !== 'DequantizeLinear') continue;
    if (n.opType === 'QuantizeLinear') q++; else dq++;
    const [x, scale, zp] = n.input ?? [];
    if (!zp) { bad(n, 'no zero point (it would default to uint8)'); continue; }
    if (!g.hasInitializer(zp)) { bad(n, `zero point ${zp} is not an initializer`); continue; }
    const z = g.getTensor(zp);
    if (z.dataType !== DataType.INT8) bad(n, `zero point ${zp} is not int8`);
    if (Array.from(z.data as ArrayLike<number>).some((v) => v !== 0)) bad(n, `zero point ${zp} is not 0`);
    if (!scale || !g.hasInitializer(scale)) { bad(n, 'scale is not an initializer'); continue; }
    const s = g.getFloat(scale);
    if (s.length === 0 || Array.from(s).some((v) => !(v > 0) || !Number.isFinite(v))) bad(n, `scale ${scale} has a value that is not a finite number > 0`);
    const isWeight = n.opType === 'DequantizeLinear' && !!x && g.hasInitializer(x);
    if (isWeight) {
      weights++;
      const w = g.getTensor(x!);
      if (w.dataType !== DataType.INT8) bad(n, `weight ${x} is not int8`);
      if (attrInt(n, 'axis', 1) !== 0) bad(n, `weight ${x} is quantized on axis ${attrInt(n, 'axis', 1)}, not 0`);
      if (s.length !== 1 && s.length !== w.dims[0]) bad(n, `weight ${x} has ${s.length} scales for ${w.dims[0]} output channels`);
      if (z.dims.length !== g.getTensor(scale).dims.length) bad(n, `zero point and scale of ${x} have different shapes`);
    } else if (s.length !== 1) {
      bad(n, `activation scale ${scale} has ${s.length} values; TensorRT takes per-tensor activation scales`);
    }
    if (n.opType === 'DequantizeLinear' && g.isGraphOutput(n.output?.[0] ?? '')) bad(n, 'feeds a graph output (TensorRT placement keeps outputs float)');
  }
  return { quantizeNodes: q, dequantizeNodes: dq, weightDequantizers: weights, violations };
}

export interface SymmetricQdqExport {
  model: OnnxModel;
  quantization: QdqResult;
  check: QdqCheck;
  /** Float rewrites done before quantizing (weight layouts). */
  rewrites: string[];
}

/**
 * Build the TensorRT Q/DQ graph from a float model (not modified) and calibrated ranges (chosen
 * range per activation tensor). `exclude` lists node names or op types to keep float.
 */
export function exportSymmetricQdq(floatModel: OnnxModel, ranges: RangeTable, opts: { exclude?: string[] } = {}): SymmetricQdqExport {
  const model = floatModel.clone();
  if (model.opset() < 13) upgradeOpset(model, 13);
  const { rewrites } = prepareForTensorrt(model.graph);
  const options = resolveQuantizeOptions({
    activationType: 'int8', foldRelu: false, perChannel: true, quantizeGraphOutputs: false,
    opset: Math.max(13, model.opset()), exclude: opts.exclude ?? [],
    // TensorRT takes per-tensor activation scales and keeps float layers float itself
    shieldFloatLayers: false,
    // TensorRT has fast int8 kernels for grouped convolutions
    floatSlowInt8: false,
    // explicit int8 zero points everywhere
    compactConstants: false,
    splitQuantized: false,
    padInputChannels: false,
  });
  const quantization = insertQdq(model.graph, ranges, options, TENSORRT_HANDLERS);
  const check = checkSymmetricQdq(model);
  if (check.violations.length) {
    throw new FaceoptError('FACEOPT_ERR_QUANTIZE', { node: check.violations[0]!.split(':')[0], reason: `the TensorRT Q/DQ graph breaks ${check.violations.length} rule(s): ${check.violations.slice(0, 3).join('; ')}` });
  }
  return { model, quantization, check, rewrites };
}
