/**
 * The server on the real models (SCRFD-500M + MobileFaceNet-128) and real photos, through inject:
 * /embed gives the face pipeline's embedding of the main face, /v1/verify decides LFW pairs exactly as
 * `faceopt compare` does, /v1/extract finds the six people of t1.jpg, embed_only on an aligned crop is
 * the recognizer's own embedding, a cache hit is identical, and a burst past the queue gets 503s.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_MATCH_THRESHOLD } from '../../pipeline/cli/compare.js';
import { FaceAnalyzer } from '../../pipeline/faces/analyzer.js';
import { cosineSimilarity } from '../../pipeline/faces/arcface.js';
import { buildApp, type FaceoptApp } from '../../server/app.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';
import { multipart } from './helpers.js';

const DET = shared('models', 'scrfd_500m_bnkps.onnx');
const REC = shared('models', 'mobileface_paddle_128d.onnx');
const lfw = (p: string) => shared('faces', 'lfw', p);

describeShared('server on scrfd_500m_bnkps + mobileface_paddle_128d', () => {
  let app: FaceoptApp;
  let fa: FaceAnalyzer;
  beforeAll(async () => {
    app = await buildApp({ detector: DET, recognizer: REC, logLevel: 'silent' });
    fa = await FaceAnalyzer.load({ detector: DET, recognizer: REC });
    await app.faceoptReady;
  });
  afterAll(async () => {
    await app?.close();
    await fa?.release();
  });

  const upload = async (url: string, file: string) => app.inject({ method: 'POST', url, ...(await multipart([{ name: 'file', data: readFileSync(file) }])) });

  it('/v1/models: both files by sha256, unverified, default threshold', async () => {
    const m = (await app.inject({ url: '/v1/models' })).json();
    expect(m.detector).toMatchObject({ file: 'scrfd_500m_bnkps.onnx', sha256: 'b467f878e26ff1e7ee05cd9936fdff63fa2a5af5d732ed17ee231f2dd5cc07ae', inputSize: [640, 640], verdict: 'unverified' });
    expect(m.recognizer).toMatchObject({ file: 'mobileface_paddle_128d.onnx', sha256: '6ced4e0c36abba9dd24b48d725f7dbb94089f75b3d3445d3d67b85157cb64743', inputSize: [112, 112] });
    expect(m.matchThreshold).toEqual({ value: DEFAULT_MATCH_THRESHOLD, source: 'default' });
  });

  it('POST /embed (seed shape) = the pipeline\'s embedding of the main face; a repeat is a cache hit, identical', async () => {
    const photo = lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg');
    const res = await upload('/embed', photo);
    expect(res.statusCode).toBe(200);
    const { embedding } = res.json() as { embedding: number[] };
    expect(embedding).toHaveLength(128);
    const [ref] = await fa.extract(photo, { maxFaces: 1 });
    expect(cosineSimilarity(embedding, ref.embedding)).toBeGreaterThan(0.99999);
    const again = await upload('/embed', photo);
    expect(again.headers['x-faceopt-cache']).toBe('hit');
    expect(again.json().embedding).toEqual(embedding);
  });

  it('/v1/verify on 40 LFW DevTest pairs decides exactly like `faceopt compare`', async () => {
    const rows = readFileSync(shared('faces', 'lfw', 'pairs_devtest.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
    const picked = rows.filter((_, i) => i % 25 === 0);
    expect(picked).toHaveLength(40);
    let agree = 0;
    let correct = 0;
    for (const [left, right, same] of picked) {
      const res = await app.inject({ method: 'POST', url: '/v1/verify', ...(await multipart([{ name: 'a', data: readFileSync(lfw(left)) }, { name: 'b', data: readFileSync(lfw(right)) }])) });
      expect(res.statusCode).toBe(200);
      const v = res.json() as { cosine: number; same: boolean; threshold: number };
      const [fl] = await fa.extract(lfw(left), { maxFaces: 1 });
      const [fr] = await fa.extract(lfw(right), { maxFaces: 1 });
      const cos = cosineSimilarity(fl.embedding, fr.embedding);
      expect(Math.abs(v.cosine - cos)).toBeLessThan(1e-4);
      if (v.same === cos > DEFAULT_MATCH_THRESHOLD) agree++;
      if (v.same === (same === '1')) correct++;
    }
    expect(agree).toBe(40);
    expect(correct).toBeGreaterThanOrEqual(38); // this pair of models is ~99% on LFW
    // and the CLI itself, on one pair
    const [l, r] = picked[1];
    const cli = faceopt(['compare', lfw(l), lfw(r), '--detector', DET, '--recognizer', REC]);
    expect(cli.code).toBe(0);
    const viaCli = JSON.parse(cli.stdout) as { cosine: number; same: boolean };
    const viaServer = (await app.inject({ method: 'POST', url: '/v1/verify', payload: { a: readFileSync(lfw(l)).toString('base64'), b: readFileSync(lfw(r)).toString('base64') } })).json();
    expect(viaServer.same).toBe(viaCli.same);
    expect(Math.abs(viaServer.cosine - viaCli.cosine)).toBeLessThan(1e-4);
  });

  it('/v1/extract on t1.jpg: six faces with 128-d unit embeddings, box, score, five keypoints', async () => {
    const res = await upload('/v1/extract', shared('faces', 'groups', 't1.jpg'));
    const [img] = res.json().images;
    expect(img).toMatchObject({ status: 'ok', width: 1280, height: 886 });
    expect(img.faces).toHaveLength(6);
    for (const f of img.faces) {
      expect(f.embedding).toHaveLength(128);
      expect(Math.hypot(...f.embedding)).toBeCloseTo(1, 5);
      expect(f.kps).toHaveLength(5);
      expect(f.score).toBeGreaterThan(0.5);
      expect(f.norm).toBeGreaterThan(1);
    }
    const limited = await app.inject({ method: 'POST', url: '/v1/extract?limit_faces=2&extract_embedding=false', ...(await multipart([{ name: 'file', data: readFileSync(shared('faces', 'groups', 't1.jpg')) }])) });
    expect(limited.json().images[0].faces).toHaveLength(2);
    // highest score first whether or not limit_faces cut the list (its pick ranks by size and centre)
    for (const limit of [0, 5]) {
      const r = await app.inject({ method: 'POST', url: `/v1/detect?limit_faces=${limit}`, ...(await multipart([{ name: 'file', data: readFileSync(shared('faces', 'groups', 't1.jpg')) }])) });
      const scores = (r.json().faces as { score: number }[]).map((f) => f.score);
      expect(scores).toHaveLength(limit || 6);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
    }
  });

  it('embed_only on an aligned 112x112 crop = the recognizer\'s embedding of that crop', async () => {
    const img = await fa.decode(lfw('Abdullah_Gul/Abdullah_Gul_0014.jpg'));
    const [face] = await fa.detect(img, { maxFaces: 1 });
    const [crop] = fa.alignFaces(img, [face]);
    const png = await sharp(Buffer.from(crop.data), { raw: { width: 112, height: 112, channels: 3 } }).png().toBuffer();
    const res = await app.inject({ method: 'POST', url: '/v1/embed?embed_only=true', payload: png, headers: { 'content-type': 'image/png' } });
    expect(res.statusCode).toBe(200);
    const ref = await fa.requireRecognizer().embed([crop]);
    expect(cosineSimilarity(res.json().embedding, ref.embeddings[0])).toBeGreaterThan(0.99999);
  });

  it('a photo without a face (dogs.jpg at a high threshold) -> 422', async () => {
    const res = await app.inject({ method: 'POST', url: '/embed?threshold=0.95', ...(await multipart([{ name: 'file', data: readFileSync(shared('faces', 'groups', 'dogs.jpg')) }])) });
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe('FACEOPT_ERR_NO_FACE');
  });

  it('overload on real models: 24 different photos at a queue of 4 -> 503s with Retry-After, no other failure, then recovery', async () => {
    const small = await buildApp({ detector: DET, recognizer: REC, logLevel: 'silent', maxQueue: 4, cache: { memoryEntries: 0 } });
    try {
      await small.faceoptReady;
      const photos = readFileSync(shared('faces', 'lfw', 'calibration.txt'), 'utf8').trim().split('\n').slice(0, 24).map((p) => readFileSync(lfw(p.trim())));
      const res = await Promise.all(photos.map((p) => small.inject({ method: 'POST', url: '/v1/embed', payload: p, headers: { 'content-type': 'image/jpeg' } })));
      const codes = res.map((r) => r.statusCode);
      expect(codes.filter((c) => c !== 200 && c !== 503 && c !== 422)).toEqual([]);
      expect(codes.filter((c) => c === 503).length).toBeGreaterThan(0);
      expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(3);
      for (const r of res.filter((x) => x.statusCode === 503)) expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      const after = await small.inject({ method: 'POST', url: '/v1/embed', payload: photos[0], headers: { 'content-type': 'image/jpeg' } });
      expect(after.statusCode).toBe(200);
    } finally {
      await small.close();
    }
  });
});
