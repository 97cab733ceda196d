/**
 * Every fixture loads and runs in onnxruntime-node with the expected output shapes and finite,
 * non-degenerate outputs: recognizer embeddings are O(1), differ between different faces, agree for the
 * same face within a batch, and move little under a small perturbation; detector scores spread with a
 * small tail above 0.5, box distances are mostly positive, and the dynamic SCRFD equals the static one at
 * 640x640 and runs at other sizes.
 */
import { describe, expect, it } from 'vitest';
import { createSession, floatTensor, runSession, type Tensor } from '../../pipeline/runtime.js';
import { FIXTURES, encodeModel, fixtureFile } from '../fixtures/index.js';
import { mulberry32 } from '../fixtures/prng.js';

/** `count` values uniform in [-1, 1], the range of (pixel - 127.5) / 127.5. */
function image(seed: number, count: number): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = r.uniform(-1, 1);
  return out;
}

function row(t: Tensor, i: number): Float32Array {
  const w = t.dims[1];
  return (t.data as Float32Array).subarray(i * w, (i + 1) * w);
}

function std(x: Float32Array): number {
  let m = 0;
  for (const v of x) m += v;
  m /= x.length;
  let s = 0;
  for (const v of x) s += (v - m) * (v - m);
  return Math.sqrt(s / x.length);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const FACE = 3 * 112 * 112;

/**
 * A batch of 4 faces: two different ones, a copy of the first, and the first with 2% noise. Returns the
 * embeddings after checking shape, finiteness and spread.
 */
async function embedBatch(model: string | Uint8Array): Promise<Tensor> {
  const session = await createSession(model, { intraOpThreads: 1 });
  const a = image(1, FACE);
  const b = image(2, FACE);
  const noise = image(3, FACE);
  const data = new Float32Array(4 * FACE);
  data.set(a, 0);
  data.set(b, FACE);
  data.set(a, 2 * FACE);
  data.set(a.map((v, i) => v + 0.02 * noise[i]), 3 * FACE);
  const out = await runSession(session, { [session.inputNames[0]]: floatTensor(data, [4, 3, 112, 112]) });
  const emb = out[session.outputNames[0]];
  expect(emb.dims).toEqual([4, 512]);
  expect((emb.data as Float32Array).every(Number.isFinite)).toBe(true);
  for (let i = 0; i < 4; i++) {
    expect(std(row(emb, i))).toBeGreaterThan(0.3);
    expect(std(row(emb, i))).toBeLessThan(3);
  }
  expect(maxAbsDiff(row(emb, 0), row(emb, 2))).toBeLessThan(1e-4);
  expect(cosine(row(emb, 0), row(emb, 1))).toBeLessThan(0.9);
  expect(cosine(row(emb, 0), row(emb, 3))).toBeGreaterThan(0.9);
  return emb;
}

describe('recognizer fixtures run in onnxruntime', () => {
  for (const name of ['iresnet18', 'iresnet34', 'mobilefacenet512']) {
    it(`${name}: [N,512] embeddings, O(1), input-dependent`, async () => {
      await embedBatch(encodeModel(FIXTURES[name]()));
    });
  }

  it('iresnet50 (from the disk cache): [N,512] embeddings, O(1), input-dependent', async () => {
    await embedBatch(await fixtureFile('iresnet50'));
  });

  it('iresnet100: loads from the cache file and gives one finite, O(1) embedding', async () => {
    const session = await createSession(await fixtureFile('iresnet100'), { intraOpThreads: 1 });
    const out = await runSession(session, { [session.inputNames[0]]: floatTensor(image(1, FACE), [1, 3, 112, 112]) });
    const emb = out[session.outputNames[0]];
    expect(emb.dims).toEqual([1, 512]);
    expect((emb.data as Float32Array).every(Number.isFinite)).toBe(true);
    expect(std(emb.data as Float32Array)).toBeGreaterThan(0.3);
    expect(std(emb.data as Float32Array)).toBeLessThan(3);
  });
});

describe('SCRFD fixtures run in onnxruntime', () => {
  const input = image(7, 3 * 640 * 640);

  it('static 640x640: 9 outputs, scores in (0,1) with a small tail above 0.5, positive distances', async () => {
    const session = await createSession(encodeModel(FIXTURES.scrfd()), { intraOpThreads: 1 });
    const out = await runSession(session, { 'input.1': floatTensor(input, [1, 3, 640, 640]) });
    let above = 0;
    let anchors = 0;
    for (const [s, n] of [[8, 12800], [16, 3200], [32, 800]]) {
      expect(out[`score_${s}`].dims).toEqual([1, n, 1]);
      expect(out[`bbox_${s}`].dims).toEqual([1, n, 4]);
      expect(out[`kps_${s}`].dims).toEqual([1, n, 10]);
      const score = out[`score_${s}`].data as Float32Array;
      const bbox = out[`bbox_${s}`].data as Float32Array;
      const kps = out[`kps_${s}`].data as Float32Array;
      expect(score.every((v) => v > 0 && v < 1)).toBe(true);
      above += score.filter((v) => v > 0.5).length;
      anchors += n;
      expect(bbox.filter((v) => v > 0).length / bbox.length).toBeGreaterThan(0.95);
      expect(std(bbox)).toBeGreaterThan(0.2);
      expect(std(kps)).toBeGreaterThan(0.3);
      expect(std(kps)).toBeLessThan(5);
    }
    // Enough candidates for decode/NMS tests, few enough to look like a detector (real: a handful of faces).
    expect(above).toBeGreaterThan(5);
    expect(above / anchors).toBeLessThan(0.05);
  });

  it('dynamic: equals the static export at 640x640 and runs at 320x480 with 2-D outputs', async () => {
    const stat = await createSession(encodeModel(FIXTURES.scrfd()), { intraOpThreads: 1 });
    const dyn = await createSession(encodeModel(FIXTURES.scrfd_dynamic()), { intraOpThreads: 1 });
    const a = await runSession(stat, { 'input.1': floatTensor(input, [1, 3, 640, 640]) });
    const b = await runSession(dyn, { 'input.1': floatTensor(input, [1, 3, 640, 640]) });
    const staticNames = ['score_8', 'score_16', 'score_32', 'bbox_8', 'bbox_16', 'bbox_32', 'kps_8', 'kps_16', 'kps_32'];
    dyn.outputNames.forEach((name, i) => {
      expect(b[name].dims).toEqual(a[staticNames[i]].dims.slice(1));
      expect(maxAbsDiff(b[name].data as Float32Array, a[staticNames[i]].data as Float32Array)).toBeLessThan(1e-5);
    });
    const small = await runSession(dyn, { 'input.1': floatTensor(image(8, 3 * 320 * 480), [1, 3, 320, 480]) });
    const cells = [8, 16, 32].map((s) => (320 / s) * (480 / s) * 2);
    expect(dyn.outputNames.map((n) => small[n].dims)).toEqual([
      [cells[0], 1], [cells[1], 1], [cells[2], 1], [cells[0], 4], [cells[1], 4], [cells[2], 4], [cells[0], 10], [cells[1], 10], [cells[2], 10],
    ]);
    for (const n of dyn.outputNames) expect((small[n].data as Float32Array).every(Number.isFinite)).toBe(true);
  });
});
