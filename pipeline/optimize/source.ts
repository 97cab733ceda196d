/**
 * The source model every `optimize` mode starts from, checked before any long work: a float graph (not
 * already quantized), one float input, and one onnxruntime can load (refused naming the file).
 */
import { loadModel, type OnnxModel } from '../onnx/model.js';
import { assertFloatModel, assertOneFloatInput } from '../quantize/index.js';
import { assertLoads } from '../runtime.js';

export async function loadFloatSource(file: string): Promise<OnnxModel> {
  const source = loadModel(file);
  assertFloatModel(source, file);
  assertOneFloatInput(source, file);
  await assertLoads(file);
  return source;
}
