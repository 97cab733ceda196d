/**
 * evaluateRecognizer on the real mobileface recognizer and real LFW photos: how a broken (NaN) embedding
 * is counted in the per-face cosine summary the gates read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DataType } from '../../pipeline/onnx/proto.js';
import { loadModel, saveModel } from '../../pipeline/onnx/model.js';
import { alignCentralFaces, evaluateRecognizer } from '../../pipeline/evaluate/recognizer-eval.js';
import { describeShared, shared } from '../helpers/shared.js';
import { isFaceoptError } from '../../pipeline/errors.js';

const LFW = shared('faces', 'lfw');
const MOBILEFACE = shared('models', 'mobileface_paddle_128d.onnx');
const SCRFD = shared('models', 'scrfd_500m_bnkps.onnx');
let tmp = '';

beforeAll(async () => { tmp = await mkdtemp(path.join(tmpdir(), 'faceopt-receval-')); });
afterAll(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

/** A copy whose first float weight tensor of rank >= 2 has one NaN: every output value becomes NaN. */
async function nanCopy(src: string, out: string): Promise<void> {
  const model = loadModel(src);
  const g = model.graph;
  const name = g.initializerNames().find((n) => { const t = g.initializer(n)!; return t.dataType === DataType.FLOAT && (t.dims?.length ?? 0) >= 2; })!;
  const t = g.initializer(name)!;
  const w = g.getFloat(name).slice();
  w[0] = NaN;
  g.setTensor(name, DataType.FLOAT, (t.dims ?? []).map(Number), w);
  await saveModel(model, out);
}

describeShared('evaluateRecognizer', () => {
  it('counts a NaN embedding as a broken face (nonFinite, cosine -1), not as a quiet cosine of 0', async () => {
    const broken = path.join(tmp, 'mobileface.nan.onnx');
    await nanCopy(MOBILEFACE, broken);
    const images = ['Abdullah_Gul/Abdullah_Gul_0013.jpg', 'Abdullah_Gul/Abdullah_Gul_0014.jpg', 'Abdullah_Gul/Abdullah_Gul_0016.jpg'];
    const aligned = await alignCentralFaces(SCRFD, LFW, images);
    expect(aligned.imagesWithoutFace).toEqual([]);
    const r = await evaluateRecognizer({ reference: MOBILEFACE, variant: broken, aligned });
    // before: the recognizer's zero vector for a NaN output gave cosine 0, nonFinite 0, mean 0
    expect(r.faces).toBe(3);
    expect(r.cosine).toMatchObject({ count: 3, nonFinite: 3, mean: -1, min: -1, max: -1 });
    // the reference is untouched: same-person cosines well above 0
    const progress: string[] = [];
    const self = await evaluateRecognizer({ reference: MOBILEFACE, variant: MOBILEFACE, aligned, onProgress: (m, d, t) => progress.push(`${m} ${d}/${t}`) });
    expect(progress).toEqual(['reference 3/3', 'variant 3/3']); // the step told nothing for minutes on a large model
    expect(self.cosine).toMatchObject({ count: 3, nonFinite: 0 });
    expect(self.cosine.min).toBeCloseTo(1, 5);
  }, 120_000);
  it('with no face found in any photo, says so and names --faces (it said "at least one value for cosines")', async () => {
    const aligned = { crops: new Map([['a/a_0001.jpg', null], ['b/b_0001.jpg', null]]), imagesWithoutFace: ['a/a_0001.jpg', 'b/b_0001.jpg'] };
    const err = await evaluateRecognizer({ reference: MOBILEFACE, variant: MOBILEFACE, aligned }).then(() => null, (e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    expect((err as Error).message).toBe('Expected evaluation photos in which the detector finds a face (a folder of face photos, or a --detector that finds them) for --faces but received 2 photo(s), none with a face found.');
  }, 60_000);
});
