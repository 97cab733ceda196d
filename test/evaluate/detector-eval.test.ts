/**
 * evaluateDetector on the real scrfd_500m and real photos: what goes into the variant-vs-reference
 * comparison the recall gate reads.
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { evaluateDetector } from '../../pipeline/evaluate/detector-eval.js';
import { readBoxAnnotations } from '../../pipeline/evaluate/data.js';
import { describeShared, shared } from '../helpers/shared.js';

const GROUPS = shared('faces', 'groups');
const SCRFD = shared('models', 'scrfd_500m_bnkps.onnx');

describeShared('evaluateDetector', () => {
  it('keeps face-free photos out of the recall denominator: a detection there is a false positive, not a face', async () => {
    const annotated = readBoxAnnotations(path.join(GROUPS, 'testing.xml')).slice(0, 1); // 2008_002470.jpg, 6 faces
    const r = await evaluateDetector({ reference: SCRFD, variant: SCRFD, images: [], annotated, faceFree: [path.join(GROUPS, 'dogs.jpg')] });
    // scrfd_500m finds one "face" on the dogs photo (a false positive of the reference itself)
    expect(r.faceFree).toEqual({ images: 1, referenceDetections: 1, variantDetections: 1 });
    // before: images 2 and referenceFaces 7, so a variant that stopped making the reference's mistake
    // "missed a face" (6 of 7 = 85.7% recall, failing the 99.5% gate)
    expect(r.vsReference).toMatchObject({ images: 1, referenceFaces: 6, candidateFaces: 6, matched: 6, recall: 1 });
    expect(r.vsGroundTruth!.reference).toMatchObject({ images: 1, referenceFaces: 6, matched: 6 });
  }, 60_000);
});
