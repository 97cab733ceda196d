/**
 * The source model every `optimize` mode starts from, checked before any long work: a float graph (not
 * already quantized), one float input, and one onnxruntime can load (refused naming the file).
 */
import { FaceoptError } from '../errors.js';
import { loadModel, type OnnxModel } from '../onnx/model.js';
import { assertFloatModel, assertOneFloatInput } from '../quantize/index.js';
import { assertLoads, runFailure } from '../runtime.js';

export async function loadFloatSource(file: string): Promise<OnnxModel> {
  const source = loadModel(file);
  assertFloatModel(source, file);
  assertOneFloatInput(source, file);
  await assertLoads(file);
  return source;
}

/**
 * A model that is not a face model, with a dynamic height or width in its NCHW input, run once at the
 * size faceopt feeds it (`dims`): where it cannot take that size (a fixed Reshape after its convolutions)
 * the error says to pass --det-size; it failed inside calibration with onnxruntime's message alone (exit 70).
 */
export async function assertRunsAtSize(source: OnnxModel, dims: readonly number[], file: string): Promise<void> {
  const input = source.graph.inputs[0]!;
  const shape = input.shape ?? [];
  if (shape.length !== 4 || (typeof shape[2] === 'number' && shape[2] > 0 && typeof shape[3] === 'number' && shape[3] > 0)) return;
  const failed = await runFailure(source.toBytes(), input.name, dims, file);
  if (failed) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `${file} does not run at input ${dims.join('x')} (${failed.reason}); its input's height and width are dynamic and faceopt feeds ${dims[2]}x${dims[3]}: pass --det-size N with the size the model takes` }, { cause: failed.error });
}
