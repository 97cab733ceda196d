/**
 * bench:server's engine lanes: a crops lane (recognizer alone, batched) and a photos lane (the whole face
 * pipeline, one photo at a time) load, run for the time given and report a positive rate; the photos
 * lane finds the face of every LFW photo it is given.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { embedFor, extractFor, prepareLane } from '../../bench/engine-lane.js';
import { FaceAnalyzer } from '../../pipeline/faces/analyzer.js';
import type { RgbImage } from '../../pipeline/faces/types.js';
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

describe('engine lanes count what they ran', () => {
  const crop = (i: number): RgbImage => ({ width: 1, height: 1, data: new Uint8Array([i, i, i]) });
  const pause = () => new Promise((r) => setTimeout(r, 2));

  it('embedFor runs full batches and counts the crops each run embedded, also with fewer crops than a batch', async () => {
    const sizes: number[] = [];
    const rec = { embed: async (c: readonly RgbImage[]) => { sizes.push(c.length); await pause(); return { embeddings: [], norms: [] }; } };
    const t0 = performance.now();
    const rate = await embedFor(rec as never, [crop(1), crop(2), crop(3)], 8, 0.1);
    const seconds = (performance.now() - t0) / 1000;
    expect(sizes.length).toBeGreaterThan(3);
    expect(sizes.every((n) => n === 8)).toBe(true); // it ran batches of 3 and counted 8 for each
    const embedded = sizes.reduce((a, b) => a + b, 0);
    // rate x its own time = the crops embedded (its time is within the one measured around it)
    expect(rate * seconds).toBeGreaterThan(0.9 * embedded);
    expect(rate * seconds).toBeLessThan(1.2 * embedded);
  });

  it('embedFor cycles through every crop', async () => {
    const seen = new Set<number>();
    const rec = { embed: async (c: readonly RgbImage[]) => { for (const x of c) seen.add(x.data[0]!); await pause(); return { embeddings: [], norms: [] }; } };
    await embedFor(rec as never, Array.from({ length: 10 }, (_, i) => crop(i)), 4, 0.05);
    expect(seen.size).toBe(10);
  });

  it('extractFor counts the photos in which a face was embedded (the server answers the others 422)', async () => {
    let calls = 0;
    const fa = { extract: async (p: Uint8Array) => { calls++; await pause(); return p[0] === 1 ? [{}] : []; } };
    const photos = [new Uint8Array([1]), new Uint8Array([0])]; // every other photo has no face
    const t0 = performance.now();
    const rate = await extractFor(fa as never, photos, 0.1);
    const seconds = (performance.now() - t0) / 1000;
    const withFace = Math.ceil(calls / 2);
    expect(rate * seconds).toBeGreaterThan(0.8 * withFace);
    expect(rate * seconds).toBeLessThan(1.25 * withFace);
  });
});
