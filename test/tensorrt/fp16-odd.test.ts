/**
 * The float16 conversion on graph forms it used to ship broken: an initializer also declared as a graph
 * input (its declaration stayed float32 while its data became float16: onnxruntime refused the file), and
 * If/Loop/Scan bodies (not converted: the outer graph no longer type-checked), now refused up front.
 */
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { makeNode, makeValueInfo } from '../../pipeline/onnx/index.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import { createSession } from '../../pipeline/runtime.js';
import { toFloat16 } from '../../pipeline/tensorrt/fp16.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const conv = () => tinyModel({
  opset: 13, irVersion: 7, input: { name: 'x', shape: [1, 3, 8, 8] }, outputs: ['y'],
  nodes: [makeNode('Conv', ['x', 'w', 'b'], ['y'], 'c', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })],
  initializers: [{ name: 'w', dims: [4, 3, 3, 3], data: seededFloats(108, 1) }, { name: 'b', dims: [4], data: seededFloats(4, 2) }],
});

describe('toFloat16 on odd graphs', () => {
  it('initializers declared as graph inputs: the float16 file loads', async () => {
    const m = conv();
    m.graph.proto.input!.push(makeValueInfo('w', DataType.FLOAT, [4, 3, 3, 3]), makeValueInfo('b', DataType.FLOAT, [4]));
    const h = toFloat16(m);
    const s = await createSession(h.model.toBytes());
    expect(s.inputNames).toEqual(['x']);
    await s.release();
  });

  it('a graph with an If body is refused (FACEOPT_ERR_GRAPH naming the node), not shipped unloadable', () => {
    const m = conv();
    const branch = (name: string) => ({ name, node: [makeNode('Identity', ['y'], [`${name}_o`], `${name}_id`)], output: [makeValueInfo(`${name}_o`, DataType.FLOAT, null)] });
    const iff = makeNode('If', ['flag'], ['z'], 'iff');
    iff.attribute!.push({ name: 'then_branch', type: 5, g: branch('then') }, { name: 'else_branch', type: 5, g: branch('else') });
    m.graph.proto.node!.push(iff);
    m.graph.proto.initializer!.push({ name: 'flag', dataType: DataType.BOOL, dims: [], int32Data: [1] });
    m.graph.proto.output!.push(makeValueInfo('z', DataType.FLOAT, null));
    let err: unknown;
    try { toFloat16(m); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_GRAPH'), String(err)).toBe(true);
    expect((err as Error).message).toContain('iff');
  });
});
