/**
 * Test helper for the evaluation audits: a one-Gemm float model (input [batch, 16], output [batch, 8])
 * saved to a file. Not a face model (role `generic` unless forced), so an evaluation of it runs only the
 * speed side, in well under a second.
 */
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

/**
 * Save a Gemm model with input shape `[batch, 16]` (`batch` a number fixes it) to `file`, with a bias
 * (a larger file) when `bias`; returns `file`.
 */
export async function tinyGemm(file: string, batch: number | string = 'N', seed = 1, bias = false): Promise<string> {
  await saveModel(tinyModel({
    opset: 13, input: { name: 'x', shape: [batch, 16] }, outputs: ['y'],
    nodes: [makeNode('Gemm', ['x', 'w', ...(bias ? ['b'] : [])], ['y'], 'fc', { transB: 1 })],
    initializers: [{ name: 'w', dims: [8, 16], data: seededFloats(128, seed) }, ...(bias ? [{ name: 'b', dims: [8], data: seededFloats(8, seed + 1) }] : [])],
  }), file);
  return file;
}
