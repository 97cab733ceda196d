/**
 * End-to-end verification on real faces: SCRFD-500M + MobileFaceNet-128 on the 1000 LFW View-1 DevTest
 * pairs (1549 photos, shared data). 10-fold accuracy per the LFW protocol (threshold chosen on 9 folds,
 * tested on the 10th; folds are balanced sets of 50 same + 50 different pairs in file order, as View 2's
 * sets are) must be >= 99.0%, with at most 3 photos where no face is found. The face nearest the photo
 * centre is used. Heavy (about a minute on 2 cores): the recognizer runs in batches of 32.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { verification } from '../../pipeline/evaluate/verification.js';
import { FaceAnalyzer } from '../../pipeline/faces/analyzer.js';
import { cosineSimilarity } from '../../pipeline/faces/arcface.js';
import { embedCentralFaces } from '../../pipeline/faces/batch.js';
import { describeShared, shared } from '../helpers/shared.js';

describeShared('LFW DevTest verification (scrfd_500m_bnkps + mobileface_paddle_128d)', () => {
  let analyzer: FaceAnalyzer;
  beforeAll(async () => {
    analyzer = await FaceAnalyzer.load({
      detector: shared('models', 'scrfd_500m_bnkps.onnx'),
      recognizer: shared('models', 'mobileface_paddle_128d.onnx'),
      maxBatch: 32,
    });
  });
  afterAll(async () => { await analyzer?.release(); });

  it('10-fold accuracy >= 99.0% and <= 3 of 1549 photos without a face', async () => {
    const rows = readFileSync(shared('faces', 'lfw', 'pairs_devtest.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
    expect(rows).toHaveLength(1000);
    const files = [...new Set(rows.flatMap((r) => [r[0], r[1]]))];
    expect(files).toHaveLength(1549);
    const index = new Map(files.map((f, i) => [f, i]));

    const t0 = performance.now();
    const { faces, times } = await embedCentralFaces(analyzer, files.map((f) => shared('faces', 'lfw', f)), { prefetch: 4 });
    const seconds = (performance.now() - t0) / 1000;

    const noFace = files.filter((_, i) => faces[i] === null);
    const scores = rows.map(([a, b]) => {
      const fa = faces[index.get(a) as number];
      const fb = faces[index.get(b) as number];
      return fa && fb ? cosineSimilarity(fa.embedding, fb.embedding) : 0; // a missed face counts as "different"
    });
    const same = rows.map((r) => r[2] === '1');
    const v = verification(scores, same, { folds: 10 });
    const msPer = (t: number) => (t / files.length).toFixed(1);
    console.log(
      `[faces] LFW DevTest: 10-fold accuracy ${(v.kFold.accuracyMean * 100).toFixed(2)}% ± ${(v.kFold.accuracyStd * 100).toFixed(2)}, ` +
      `best-threshold ${(v.bestThreshold.accuracy * 100).toFixed(2)}% at cos ${v.bestThreshold.threshold.toFixed(3)}, ` +
      `no face in ${noFace.length} (${noFace.join(', ')}); ${files.length} photos in ${seconds.toFixed(1)} s ` +
      `(per photo ms: decode wait ${msPer(times.decode)}, detect ${msPer(times.detect)}, align ${msPer(times.align)}, embed ${msPer(times.embed)})`,
    );
    expect(noFace.length).toBeLessThanOrEqual(3);
    expect(v.kFold.folds).toBe(10);
    expect(v.kFold.perFold.every((f) => f.size === 100 && f.positives === 50)).toBe(true);
    expect(v.kFold.accuracyMean).toBeGreaterThanOrEqual(0.99);
    for (const f of faces) if (f) expect(Math.abs(Math.hypot(...f.embedding) - 1)).toBeLessThan(1e-5);
  }, 900_000);
});
