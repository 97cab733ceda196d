/**
 * Faithfulness to InsightFace itself: fixtures/insightface-reference.json holds what InsightFace's
 * Python pipeline (scrfd.py detect, face_align.norm_crop, ArcFaceONNX, with OpenCV's dnn module running
 * the graphs) found on a few shared photos — regenerate it with fixtures/make-insightface-reference.py.
 * faceopt must find the same faces with the same keypoints and, through norm_crop, the same embeddings.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FaceAnalyzer } from '../../pipeline/faces/analyzer.js';
import { cosineSimilarity } from '../../pipeline/faces/arcface.js';
import { describeShared, shared } from '../helpers/shared.js';

interface RefFace { box: number[]; score: number; kps: number[][]; embedding: number[] }
const ref = JSON.parse(readFileSync(new URL('./fixtures/insightface-reference.json', import.meta.url), 'utf8')) as {
  photos: { photo: string; faces: RefFace[] }[];
};

describeShared('same faces and embeddings as InsightFace (Python, OpenCV)', () => {
  let fa: FaceAnalyzer;
  beforeAll(async () => {
    fa = await FaceAnalyzer.load({ detector: shared('models', 'scrfd_500m_bnkps.onnx'), recognizer: shared('models', 'mobileface_paddle_128d.onnx') });
  });
  afterAll(async () => { await fa?.release(); });

  for (const photo of ref.photos) {
    it(`${photo.photo}: ${photo.faces.length} face(s), keypoints within 0.05 px, embedding cosine > 0.9999`, async () => {
      const faces = await fa.extract(shared('faces', ...photo.photo.split('/')));
      expect(faces).toHaveLength(photo.faces.length);
      // same order: both sort by score and run the same NMS
      photo.faces.forEach((r, i) => {
        const f = faces[i];
        expect(Math.abs(f.score - r.score)).toBeLessThan(1e-3);
        f.box.forEach((v, k) => expect(Math.abs(v - r.box[k])).toBeLessThan(0.05));
        f.kps?.forEach((p, k) => expect(Math.hypot(p[0] - r.kps[k][0], p[1] - r.kps[k][1])).toBeLessThan(0.05));
        expect(cosineSimilarity(f.embedding, r.embedding)).toBeGreaterThan(0.9999);
      });
    });
  }
});
