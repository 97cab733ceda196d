/**
 * Verification folds follow the pairs file even when pairs are left out (always runs: synthetic crops and
 * a tiny conv recognizer). A pair with a photo where no face was found, or touching a calibration
 * identity, is dropped before scoring; folds were assigned over what was left, so on LFW View 2 (10 sets
 * of same then different pairs) every later pair moved into another fold and the folds were no longer the
 * file's sets. Now folds are assigned over the whole file and the dropped pairs are taken out of theirs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { assignFolds, compareVerification, verification } from '../../pipeline/evaluate/metrics.js';
import { evaluateRecognizer, type AlignedSet } from '../../pipeline/evaluate/recognizer-eval.js';
import { evaluationSet } from '../../pipeline/evaluate/split.js';
import { keepPairs, type Pair } from '../../pipeline/evaluate/data.js';
import type { RgbImage } from '../../pipeline/faces/types.js';
import { makeNode, saveModel } from '../../pipeline/onnx/index.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

/** An error's code and message, or null when `f` returns. */
async function failure(f: () => unknown): Promise<{ code: string | null; message: string } | null> {
  try { await f(); } catch (e) { return { code: isFaceoptError(e) ? e.code : null, message: (e as Error).message }; }
  return null;
}

describe('verification with precomputed folds', () => {
  // View 2 order in small: 10 sets of 3 same then 3 different pairs
  const same = range(60, (i) => (i % 6 < 3 ? 1 : 0));
  const scores = range(60, (i) => (same[i] ? 0.6 : 0.2) + ((i * 37) % 11) / 40);
  const variant = scores.map((s, i) => (i % 7 === 0 ? s - 0.3 : s));

  it('with no pair left out, the same bytes as folds assigned here', () => {
    const fold = assignFolds(same, 10, 'lfw-sets');
    expect(JSON.stringify(compareVerification(scores, variant, same, { fold }))).toBe(JSON.stringify(compareVerification(scores, variant, same)));
    expect(JSON.stringify(verification(scores, same, { fold }))).toBe(JSON.stringify(verification(scores, same)));
  });

  it('keeps the file\'s folds for the pairs left: leaving out a pair of set 1 shrinks fold 1 only', () => {
    const fold = assignFolds(same, 10, 'lfw-sets');
    const keep = range(60, (i) => i).filter((i) => i !== 0);
    const v = verification(keep.map((i) => scores[i]!), keep.map((i) => same[i]!), { fold: keep.map((i) => fold[i]!) });
    expect(v.kFold.perFold.map((f) => f.size)).toEqual([5, 6, 6, 6, 6, 6, 6, 6, 6, 6]);
    expect(v.kFold.perFold.map((f) => f.positives)).toEqual([2, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
    expect(v.kFold.foldMode).toBe('lfw-sets');
    // folds assigned over the 59 pairs left would have moved set 2's first same pair into fold 1
    expect(verification(keep.map((i) => scores[i]!), keep.map((i) => same[i]!)).kFold.perFold.map((f) => f.size)).toEqual([6, 6, 6, 6, 6, 6, 6, 6, 6, 5]);
  });

  it('refuses a fold list of the wrong length, a fold out of range and a fold with no pair', async () => {
    const fold = Array.from(assignFolds(same, 10, 'lfw-sets'));
    expect((await failure(() => verification(scores, same, { fold: fold.slice(1) })))?.message).toMatch(/Expected 60 folds \(one per pair\) for fold but received 59/);
    expect((await failure(() => verification(scores, same, { fold: fold.map((f) => (f === 9 ? 10 : f)) })))?.message).toMatch(/a fold from 0 to 9 for fold of pair 54 but received 10/);
    expect((await failure(() => verification(scores, same, { fold: fold.map((f) => f + 0.5) })))?.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    const noThree = fold.map((f) => (f === 3 ? 4 : f));
    const err = await failure(() => compareVerification(scores, variant, same, { fold: noThree }));
    expect(err?.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(err?.message).toMatch(/at least one pair in each of the 10 folds for fold but received no pair in fold 3 \(of 0\.\.9\): all of its pairs were left out/);
  });
});

describe('evaluateRecognizer: folds follow the pairs file when pairs are dropped', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'faceopt-folds-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const model = path.join(root, 'tiny-recognizer.onnx');
  // a 16-d embedding from one strided conv: the folds, not the faces, are under test
  const other = path.join(root, 'tiny-recognizer-2.onnx'); // other weights: another recognizer
  const recognizer = (file: string, seed: number) => saveModel(tinyModel({
    opset: 13, input: { name: 'x', shape: ['N', 3, 112, 112] }, outputs: ['y'],
    nodes: [makeNode('Conv', ['x', 'w'], ['c'], 'conv', { strides: [16, 16] }), makeNode('GlobalAveragePool', ['c'], ['g'], 'gap'), makeNode('Flatten', ['g'], ['y'], 'flat')],
    initializers: [{ name: 'w', dims: [16, 3, 16, 16], data: seededFloats(16 * 3 * 16 * 16, seed) }],
  }), file);
  beforeAll(async () => { await recognizer(model, 5); await recognizer(other, 6); });

  const photo = (id: string, k: number) => `${id}/${id}_${String(k).padStart(4, '0')}.jpg`;
  /** A View 2 list in small: set s has 3 same pairs (S{s}_{j}) then 3 different ones (D{s}_{j} vs E{s}_{j}). */
  const pairs: Pair[] = range(10, (s) => s).flatMap((s) => [
    ...range(3, (j) => ({ left: photo(`S${s}_${j}`, 1), right: photo(`S${s}_${j}`, 2), same: true })),
    ...range(3, (j) => ({ left: photo(`D${s}_${j}`, 1), right: photo(`E${s}_${j}`, 1), same: false })),
  ]);
  const photos = [...new Set(pairs.flatMap((p) => [p.left, p.right]))];

  /** Deterministic noise crops, null (no face found) for the photos in `noFace`. */
  function aligned(noFace: readonly string[] = []): AlignedSet {
    let seed = 7;
    const crop = (): RgbImage => {
      const data = new Uint8Array(112 * 112 * 3);
      for (let i = 0; i < data.length; i++) { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; data[i] = seed >>> 24; }
      return { width: 112, height: 112, data };
    };
    return { crops: new Map(photos.map((p) => [p, noFace.includes(p) ? null : crop()])), imagesWithoutFace: [...noFace] };
  }

  it('with every face found, every fold is one set of the file', async () => {
    const r = await evaluateRecognizer({ reference: model, variant: model, aligned: aligned(), pairs: { file: '/x/pairs.txt', pairs } });
    expect(r.verification!.skippedPairs).toBe(0);
    expect(r.verification!.reference.kFold.perFold.map((f) => f.size)).toEqual(new Array(10).fill(6));
  }, 60_000);

  it('a pair without a face leaves its own fold one pair short; no other pair changes fold', async () => {
    // before: folds over the 59 pairs left gave sizes 6 x 9 then 5, positives shifted from set 2 into fold 1
    const r = await evaluateRecognizer({ reference: model, variant: model, aligned: aligned([photo('S0_0', 2)]), pairs: { file: '/x/pairs.txt', pairs } });
    const v = r.verification!;
    expect(v.skippedPairs).toBe(1);
    expect(v.reference.pairs).toBe(59);
    expect(v.reference.kFold.perFold.map((f) => f.size)).toEqual([5, 6, 6, 6, 6, 6, 6, 6, 6, 6]);
    expect(v.reference.kFold.perFold.map((f) => f.positives)).toEqual([2, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
    expect(v.variant.kFold.perFold.map((f) => f.size)).toEqual(v.reference.kFold.perFold.map((f) => f.size));
  }, 60_000);

  it('a fold whose every pair lost a face is refused, naming the fold and why', async () => {
    const set2 = pairs.slice(12, 18).map((p) => p.right);
    const err = await failure(() => evaluateRecognizer({ reference: model, variant: model, aligned: aligned(set2), pairs: { file: '/x/pairs.txt', pairs } }));
    expect(err?.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(err?.message).toBe('Expected scored pairs in each of the 10 verification folds (assigned over the 60 pairs of pairs.txt, as the LFW protocol has them) for --pairs but received none in fold 3 of 10: of its 6 pairs, 6 have a photo where no face was found (or that could not be read).');
  }, 60_000);

  it('each model\'s results come from its own embeddings: the reference\'s do not depend on the variant compared', async () => {
    const list = { file: '/x/pairs.txt', pairs };
    const [ab, aa, bb] = await Promise.all([[model, other], [model, model], [other, other]].map(([reference, variant]) => evaluateRecognizer({ reference: reference!, variant: variant!, aligned: aligned(), pairs: list })));
    expect(ab!.verification!.reference).toEqual(aa!.verification!.reference);
    expect(ab!.verification!.variant).toEqual(bb!.verification!.variant);
    expect(ab!.verification!.reference).not.toEqual(bb!.verification!.reference); // the two recognizers do differ
  }, 60_000);

  it('the per-face cosine covers only the images asked for; a pair list inconsistent with its file is an internal error', async () => {
    const r = await evaluateRecognizer({ reference: model, variant: other, aligned: aligned(), images: photos.slice(0, 5) });
    expect(r.faces).toBe(5);
    expect(r.cosine.count).toBe(5);
    const broken = { file: '/x/pairs.txt', pairs: pairs.slice(1), source: { pairs, index: range(58, (i) => i + 1), leftOut: 'test' } };
    expect((await failure(() => evaluateRecognizer({ reference: model, variant: model, aligned: aligned(), pairs: broken })))?.code).toBe('FACEOPT_ERR_INTERNAL');
  }, 60_000);

  it('pairs touching calibration identities (evaluationSet) leave the other pairs in their file folds', async () => {
    const faces = path.join(root, 'faces');
    for (const p of photos) { mkdirSync(path.dirname(path.join(faces, p)), { recursive: true }); writeFileSync(path.join(faces, p), ''); }
    const list = path.join(root, 'cal.txt');
    writeFileSync(list, `${photo('D4_0', 1)}\n`); // set 5's first different pair touches a calibrated person
    const set = evaluationSet({ facesDir: faces, calibrationList: list, pairs: { file: '/x/pairs.txt', pairs }, maxImages: 500 });
    expect(set.droppedPairs).toBe(1);
    expect(set.pairs!.source).toMatchObject({ leftOut: 'touching calibration identities' });
    expect(set.pairs!.source!.index).toEqual(range(60, (i) => i).filter((i) => i !== 27));
    const r = await evaluateRecognizer({ reference: model, variant: model, aligned: aligned([photo('S7_1', 1)]), pairs: set.pairs });
    const v = r.verification!;
    expect(v.skippedPairs).toBe(1);
    // before: no source, and folds over the 58 pairs left gave sizes 6 x 9 then 4
    expect(v.reference.kFold.perFold.map((f) => f.size)).toEqual([6, 6, 6, 6, 5, 6, 6, 5, 6, 6]);
    expect(v.reference.kFold.perFold.map((f) => f.positives)).toEqual([3, 3, 3, 3, 3, 3, 3, 2, 3, 3]);
  }, 60_000);

  it('says which pairs of an emptied fold went to calibration identities and which had no face', async () => {
    const list = { file: '/x/pairs.txt', pairs };
    const kept = keepPairs(list, (p) => !p.left.startsWith('D1_'), 'touching calibration identities');
    const noFace = pairs.slice(6, 9).map((p) => p.left);
    const err = await failure(() => evaluateRecognizer({ reference: model, variant: model, aligned: aligned(noFace), pairs: kept }));
    expect(err?.message).toMatch(/received none in fold 2 of 10: of its 6 pairs, 3 have a photo where no face was found \(or that could not be read\) and 3 were left out \(touching calibration identities\)\.$/);
  }, 60_000);
});

describe('keepPairs', () => {
  const pairs: Pair[] = range(6, (i) => ({ left: `p${i}/a.jpg`, right: `p${i}/b.jpg`, same: i % 2 === 0 }));
  it('keeps the file\'s list and each kept pair\'s place in it, through repeated filtering', () => {
    const list = { file: 'f.tsv', pairs };
    expect(keepPairs(list, () => true, 'x')).toBe(list);
    const once = keepPairs(list, (p) => p.left !== 'p1/a.jpg', 'no face');
    const twice = keepPairs(once, (p) => p.left !== 'p4/a.jpg', 'calibration');
    expect(twice.pairs.map((p) => p.left)).toEqual(['p0/a.jpg', 'p2/a.jpg', 'p3/a.jpg', 'p5/a.jpg']);
    expect(twice.source).toEqual({ pairs, index: [0, 2, 3, 5], leftOut: 'no face; calibration' });
  });
});
