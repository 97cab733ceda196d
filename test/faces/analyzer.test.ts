/**
 * The FaceAnalyzer facade on real photos (shared data): every face in t1.jpg gets a unit-length
 * 128-d embedding, batching the recognizer changes nothing, the same person scores far above two
 * different people, the description is plain JSON, and a fixed-batch recognizer pads its last chunk.
 * The pair runs without onnxruntime thread spinning unless asked.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzerSessionOptions, FaceAnalyzer } from '../../pipeline/faces/analyzer.js';
import { ArcFaceRecognizer, cosineSimilarity } from '../../pipeline/faces/arcface.js';
import { describeShared, shared } from '../helpers/shared.js';

describe('analyzerSessionOptions', () => {
  it('turns thread spinning off for a detector + recognizer pair unless the caller chose', () => {
    expect(analyzerSessionOptions({ recognizer: 'r.onnx', session: { intraOpThreads: 2 } })).toEqual({ intraOpThreads: 2, spinning: false });
    expect(analyzerSessionOptions({ recognizer: 'r.onnx', session: { spinning: true } })).toEqual({ spinning: true });
    expect(analyzerSessionOptions({ recognizer: 'r.onnx' })).toEqual({ spinning: false });
    expect(analyzerSessionOptions({ session: { intraOpThreads: 1 } })).toEqual({ intraOpThreads: 1 });
  });
});

describeShared('FaceAnalyzer (scrfd_500m_bnkps + mobileface_paddle_128d)', () => {
  let fa: FaceAnalyzer;
  beforeAll(async () => {
    fa = await FaceAnalyzer.load({ detector: shared('models', 'scrfd_500m_bnkps.onnx'), recognizer: shared('models', 'mobileface_paddle_128d.onnx') });
    await fa.warmUp();
  });
  afterAll(async () => { await fa?.release(); });

  it('extract(t1.jpg): 6 faces with unit 128-d embeddings and raw norms', async () => {
    const faces = await fa.extract(shared('faces', 'groups', 't1.jpg'));
    expect(faces).toHaveLength(6);
    for (const f of faces) {
      expect(f.embedding).toHaveLength(128);
      expect(Math.abs(Math.hypot(...f.embedding) - 1)).toBeLessThan(1e-5);
      expect(f.norm).toBeGreaterThan(1);
    }
    // six different people: all pairwise cosines well below a match
    for (let i = 0; i < 6; i++) for (let j = i + 1; j < 6; j++) expect(cosineSimilarity(faces[i].embedding, faces[j].embedding)).toBeLessThan(0.3);
  });

  it('one batch of 6 crops embeds exactly like 6 batches of 1', async () => {
    const img = await fa.decode(shared('faces', 'groups', 't1.jpg'));
    const crops = fa.alignFaces(img, await fa.detect(img));
    const rec = fa.requireRecognizer();
    const together = await rec.embed(crops);
    for (const [i, c] of crops.entries()) {
      const alone = await rec.embed([c]);
      expect(cosineSimilarity(alone.embeddings[0], together.embeddings[i])).toBeGreaterThan(0.99999);
      expect(Math.abs(alone.norms[0] - together.norms[i])).toBeLessThan(1e-3);
    }
  });

  it('same person scores high, different people low (LFW)', async () => {
    const lfw = (p: string) => shared('faces', 'lfw', p);
    const one = async (p: string) => (await fa.extract(lfw(p), { maxFaces: 1 }))[0].embedding;
    const a = await one('Abdullah_Gul/Abdullah_Gul_0013.jpg');
    const b = await one('Abdullah_Gul/Abdullah_Gul_0014.jpg');
    const rows = readFileSync(lfw('pairs_devtest.tsv'), 'utf8').trim().split('\n');
    const [l, r] = rows[rows.length - 1].split('\t');
    const same = cosineSimilarity(a, b);
    const diff = cosineSimilarity(await one(l), await one(r));
    expect(same).toBeGreaterThan(0.5);
    expect(diff).toBeLessThan(0.3);
  });

  it('describe() is JSON-serialisable and names both profiles', () => {
    const d = JSON.parse(JSON.stringify(fa.describe()));
    expect(d.detector.profile.role).toBe('detector');
    expect(d.detector.detSize).toEqual([640, 640]);
    expect(d.recognizer.profile).toMatchObject({ role: 'recognizer', inputName: 'x', inputSize: [112, 112], embeddingSize: 128 });
  });

  it('a detector passed as the recognizer is refused with FACEOPT_ERR_MODEL_ROLE', async () => {
    await expect(FaceAnalyzer.load({ detector: shared('models', 'scrfd_500m_bnkps.onnx'), recognizer: shared('models', 'scrfd_500m_bnkps.onnx') }))
      .rejects.toMatchObject({ code: 'FACEOPT_ERR_MODEL_ROLE', params: { expected: 'recognizer', actual: 'detector' } });
  });

  it('detection alone needs no recognizer; embedding without one is a coded error', async () => {
    const det = await FaceAnalyzer.load({ detector: shared('models', 'scrfd_500m_bnkps_dynamic.onnx'), detSize: 320 });
    expect((await det.detect(shared('faces', 'chips', 'John_Simm', readdirSync(shared('faces', 'chips', 'John_Simm'))[0]))).length).toBe(1);
    await expect(det.extract(shared('faces', 'groups', 't1.jpg'))).rejects.toMatchObject({ code: 'FACEOPT_ERR_MODEL_ROLE' });
    await det.release();
  });
});

describeShared('recognizer with a fixed batch size', () => {
  it('pads the last chunk: 6 crops through a batch-4 graph embed like the dynamic-batch graph', async () => {
    const m = onnxProto.onnx.ModelProto.decode(readFileSync(shared('models', 'mobileface_paddle_128d.onnx')));
    for (const v of [...(m.graph?.input ?? []), ...(m.graph?.output ?? [])]) {
      const d = v.type?.tensorType?.shape?.dim?.[0];
      if (d) { d.dimParam = null; d.dimValue = 4; }
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-rec4-'));
    const file = path.join(dir, 'rec4.onnx');
    writeFileSync(file, onnxProto.onnx.ModelProto.encode(m).finish());
    const fixed = await ArcFaceRecognizer.load(file);
    const dynamic = await ArcFaceRecognizer.load(shared('models', 'mobileface_paddle_128d.onnx'));
    const fa = await FaceAnalyzer.load({ detector: shared('models', 'scrfd_500m_bnkps.onnx') });
    const img = await fa.decode(shared('faces', 'groups', 't1.jpg'));
    const crops = fa.alignFaces(img, await fa.detect(img));
    expect(fixed.profile.batch).toBe(4);
    const a = await fixed.embed(crops);
    const b = await dynamic.embed(crops);
    expect(a.embeddings).toHaveLength(6);
    a.embeddings.forEach((e, i) => expect(cosineSimilarity(e, b.embeddings[i])).toBeGreaterThan(0.99999));
    await Promise.all([fixed.release(), dynamic.release(), fa.release()]);
    rmSync(dir, { recursive: true, force: true });
  });
});
