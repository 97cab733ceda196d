/**
 * The SCRFD fixtures against the real SCRFD-500M-KPS exports in the shared data folder: same op
 * histogram, same node sequence, same conv weight shapes in the same order, same inputs/outputs, and the
 * same float parameters up to the two 16-value biases the PyTorch exporter de-duplicated in the originals.
 */
import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { encodeModel, FIXTURES } from '../fixtures/index.js';
import { describeShared, shared } from '../helpers/shared.js';
import { decode, dims, floatParams, initializerDims, opHistogram, type DecodedModel } from './decode.js';

/** Conv weight shapes in node order. */
function convShapes(m: DecodedModel): string[] {
  const init = initializerDims(m);
  return m.graph!.node!.filter((n) => n.opType === 'Conv').map((n) => init.get(n.input![1])!.join('x'));
}

describeShared('SCRFD fixtures match the real SCRFD-500M-KPS exports', () => {
  it('static fixture vs scrfd_500m_bnkps.onnx', async () => {
    const real = decode(await readFile(shared('models', 'scrfd_500m_bnkps.onnx')));
    const fx = decode(encodeModel(FIXTURES.scrfd()));
    expect(opHistogram(fx)).toEqual(opHistogram(real));
    expect(fx.graph!.node!.map((n) => n.opType)).toEqual(real.graph!.node!.map((n) => n.opType));
    expect(convShapes(fx)).toEqual(convShapes(real));
    expect(fx.graph!.input!.map((v) => [v.name, dims(v)])).toEqual(real.graph!.input!.map((v) => [v.name, dims(v)]));
    expect(fx.graph!.output!.map((v) => [v.name, dims(v)])).toEqual(real.graph!.output!.map((v) => [v.name, dims(v)]));
    expect(Number(fx.irVersion)).toBe(Number(real.irVersion));
    expect(floatParams(fx) - floatParams(real)).toBe(32);
  });

  it('dynamic fixture vs scrfd_500m_bnkps_dynamic.onnx', async () => {
    const real = decode(await readFile(shared('models', 'scrfd_500m_bnkps_dynamic.onnx')));
    const fx = decode(encodeModel(FIXTURES.scrfd_dynamic()));
    expect(opHistogram(fx)).toEqual(opHistogram(real));
    expect(convShapes(fx)).toEqual(convShapes(real));
    expect(dims(fx.graph!.input![0])).toEqual(dims(real.graph!.input![0]));
    for (const m of [fx, real]) for (const o of m.graph!.output!) expect(o.name).toMatch(/^\d+$/);
    // Same output order (scores, boxes, keypoints per stride) and widths; the original fixes the anchor
    // counts to the 640x640 values, the fixture names them symbolically.
    expect(fx.graph!.output!.map((o) => dims(o)[1])).toEqual(real.graph!.output!.map((o) => dims(o)[1]));
    expect(floatParams(fx) - floatParams(real)).toBe(32);
  });
});
