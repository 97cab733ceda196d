/**
 * FaceAnalyzer with a detector alone (shared scrfd_500m_bnkps at 320): per-call detection options win
 * over the analyzer's defaults, a decode names the source it is given, aligned crops default to
 * 112x112, and embedding without a recognizer is a coded error.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FaceAnalyzer } from '../../pipeline/faces/analyzer.js';
import { describeShared, shared } from '../helpers/shared.js';

describeShared('FaceAnalyzer without a recognizer (scrfd_500m_bnkps_dynamic, 320)', () => {
  let fa: FaceAnalyzer;
  beforeAll(async () => {
    fa = await FaceAnalyzer.load({
      detector: shared('models', 'scrfd_500m_bnkps_dynamic.onnx'), detSize: 320, detect: { maxFaces: 1 }, decode: { source: 'default-name' },
    });
  });
  afterAll(async () => { await fa?.release(); });

  it('the analyzer\'s detection defaults apply, and a call\'s own options win over them', async () => {
    const photo = shared('faces', 'groups', 't1.jpg');
    expect(await fa.detect(photo)).toHaveLength(1);
    expect((await fa.detect(photo, { maxFaces: 3 })).length).toBe(3);
  });

  it('decode names the source it is given, else the configured one', async () => {
    await expect(fa.decode(new Uint8Array([1, 2, 3]), 'upload.jpg')).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_IMAGE', params: { source: 'upload.jpg' } });
    await expect(fa.decode(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ params: { source: 'default-name' } });
  });

  it('aligned crops are 112x112 without a recognizer; embedding needs one (FACEOPT_ERR_MODEL_ROLE)', async () => {
    const img = await fa.decode(shared('faces', 'groups', 't1.jpg'));
    const faces = await fa.detect(img);
    const [crop] = fa.alignFaces(img, faces);
    expect([crop!.width, crop!.height]).toEqual([112, 112]);
    await expect(fa.embedFaces(img, faces)).rejects.toMatchObject({ code: 'FACEOPT_ERR_MODEL_ROLE' });
    expect(fa.describe().recognizer).toBeNull();
  });
});
