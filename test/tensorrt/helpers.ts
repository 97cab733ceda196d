/**
 * Shared setup for the TensorRT suites: fixture graphs prepared the way `optimize --tensorrt` prepares
 * them (opset 13, BatchNorm folded, PRelu kept), synthetic calibration stats from seeded batches, and
 * a fixed-batch MobileFaceNet (batch 1 and a Reshape to [1,-1], as a fixed-batch PyTorch export has).
 */
import onnxProto from 'onnx-proto';
import { collectActivationStats } from '../../pipeline/calibrate/run.js';
import type { TensorStats } from '../../pipeline/calibrate/collectors.js';
import { TENSORRT_REWRITES } from '../../pipeline/cli/optimize-tensorrt.js';
import { OnnxModel, loadModel } from '../../pipeline/onnx/model.js';
import { DataType, makeValueInfo } from '../../pipeline/onnx/index.js';
import { prepareFloatGraph } from '../../pipeline/quantize/index.js';
import { seededInput } from '../../pipeline/tensorrt/probe.js';
import { buildMobileFaceNet, type MobileFaceNetOptions } from '../fixtures/mobilefacenet.js';
import { fixtureFile } from '../fixtures/index.js';

/** A small MobileFaceNet (same layer structure, fewer blocks/channels) so CPU tests stay fast. */
export const SMALL_MBF: MobileFaceNetOptions = { blocks: [1, 1, 2, 1], scale: 1, numFeatures: 128 };

/** A fixture model (from the on-disk fixture cache), prepared for TensorRT (opset 13, BN folded, PRelu kept). */
export async function preparedFixture(name: string): Promise<OnnxModel> {
  const m = loadModel(await fixtureFile(name));
  prepareFloatGraph(m, TENSORRT_REWRITES, 13);
  return m;
}

/** A small MobileFaceNet, prepared. */
export function preparedSmallMbf(): OnnxModel {
  const m = new OnnxModel(buildMobileFaceNet(SMALL_MBF).build());
  prepareFloatGraph(m, TENSORRT_REWRITES, 13);
  return m;
}

/** Minmax stats of `model` over `n` seeded batches of `dims`. */
export async function syntheticStats(model: OnnxModel, dims: number[], n = 2): Promise<Record<string, TensorStats>> {
  const size = dims.reduce((a, b) => a * b, 1);
  const batches = Array.from({ length: n }, (_, i) => ({ data: seededInput(size, 100 + i), dims }));
  return collectActivationStats(model, batches, { method: 'minmax' });
}

/** Chosen ranges of stats. */
export function rangesOf(stats: Record<string, TensorStats>): Record<string, [number, number]> {
  return Object.fromEntries(Object.entries(stats).map(([k, s]) => [k, s.range]));
}

/**
 * The small MobileFaceNet as a fixed-batch export: input [1,3,112,112], the flatten as Reshape(x, [1,-1])
 * (constant), output [1,F], and value_info recording batch-1 shapes.
 */
export function fixedBatchMbf(): OnnxModel {
  const m = preparedSmallMbf();
  const g = m.graph;
  const reshape = g.nodes.find((n) => n.opType === 'Reshape')!;
  g.setTensor('flatten_shape_fixed', DataType.INT64, [2], BigInt64Array.from([1n, -1n]));
  reshape.input = [reshape.input![0]!, 'flatten_shape_fixed'];
  g.invalidate();
  g.pruneUnused();
  const input = g.proto.input!.find((v) => v.name === g.inputs[0]!.name)!;
  input.type!.tensorType!.shape!.dim![0] = onnxProto.onnx.TensorShapeProto.Dimension.create({ dimValue: 1 });
  const out = g.proto.output![0]!;
  out.type!.tensorType!.shape = onnxProto.onnx.TensorShapeProto.create({ dim: [{ dimValue: 1 }, { dimValue: SMALL_MBF.numFeatures! }] });
  g.proto.valueInfo!.push(makeValueInfo(reshape.output![0]!, DataType.FLOAT, [1, 512]));
  g.invalidate();
  return m;
}
