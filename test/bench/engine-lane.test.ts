/**
 * bench:server's engine lanes: a crops lane (recognizer alone, batched) and a photos lane (the whole face
 * pipeline, one photo at a time) load, run for the time given and report a positive rate; the photos
 * lane finds the face of every LFW photo it is given.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { extractFor, prepareLane } from '../../bench/engine-lane.js';
import { FaceAnalyzer } from '../../pipeline/faces/analyzer.js';
import { describeShared, shared } from '../helpers/shared.js';

describeShared('engine lanes on the shared models', () => {
  const det = shared('models', 'scrfd_500m_bnkps.onnx');
  const rec = shared('models', 'mobileface_paddle_128d.onnx');
  const lfw = shared('faces', 'lfw');
  const photos = readFileSync(`${lfw}/calibration.txt`, 'utf8').trim().split('\n').slice(0, 4).map((p) => new Uint8Array(readFileSync(`${lfw}/${p}`)));

  it('a photos lane runs the pipeline one photo at a time and reports photos per second', async () => {
    const lane = await prepareLane({ model: rec, work: { kind: 'photos', detector: det, photos }, threads: 1, seconds: 0.3 });
    const rate = await lane.run();
    await lane.release();
    expect(rate).toBeGreaterThan(1);
  });

  it('a crops lane embeds batches and reports images per second', async () => {
    const fa = await FaceAnalyzer.load({ detector: det, recognizer: rec });
    const crops = [];
    for (const p of photos) {
      const img = await fa.decode(p);
      crops.push(...fa.alignFaces(img, await fa.detect(img, { maxFaces: 1 })));
    }
    expect(await extractFor(fa, photos, 0.2)).toBeGreaterThan(1);
    await fa.release();
    expect(crops).toHaveLength(photos.length);
    const lane = await prepareLane({ model: rec, work: { kind: 'crops', crops, batch: 4 }, threads: 1, seconds: 0.3 });
    const rate = await lane.run();
    await lane.release();
    expect(rate).toBeGreaterThan(4);
  });
});
