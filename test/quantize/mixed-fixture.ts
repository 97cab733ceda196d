/** The conv 3x3 -> PRelu (as sign-dw) -> conv 3x3 graph the mixed-precision search tests run: small enough to search in a test. */
import { makeNode } from '../../pipeline/onnx/index.js';
import type { InputBatch } from '../../pipeline/calibrate/run.js';
import { rewritePrelus } from '../../pipeline/quantize/rewrites/prelu.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

export function convPreluConv(): ReturnType<typeof tinyModel> {
  const m = tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 4, 12, 12] }, outputs: ['y'],
    nodes: [
      makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'conv1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('PRelu', ['c1', 'slope'], ['p'], 'prelu'),
      makeNode('Conv', ['p', 'w2', 'b2'], ['y'], 'conv2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    ],
    initializers: [
      { name: 'w1', dims: [8, 4, 3, 3], data: seededFloats(288, 1) }, { name: 'b1', dims: [8], data: seededFloats(8, 2) },
      { name: 'slope', dims: [8, 1, 1], data: seededFloats(8, 3).map((v) => v * 3) },
      { name: 'w2', dims: [8, 8, 3, 3], data: seededFloats(576, 4) }, { name: 'b2', dims: [8], data: seededFloats(8, 5) },
    ],
  });
  rewritePrelus(m.graph, 'sign-dw');
  return m;
}

/** `n` seeded input batches of 4 for convPreluConv, from `seed` on. */
export const convPreluConvBatches = (seed: number, n: number): InputBatch[] =>
  Array.from({ length: n }, (_, i) => ({ data: seededFloats(4 * 4 * 144, seed + i), dims: [4, 4, 12, 12] }));
