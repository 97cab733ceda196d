/**
 * Recognizer evaluation: the same faces, detected and aligned once with the reference detector, are
 * embedded by the reference and the variant recognizer. Per-face cosine says how far the variant's
 * embeddings moved; verification on same/different pairs says whether that matters for decisions.
 */
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { skipUnreadable, type OnUnreadable } from '../faces/decode.js';
import { alignFace } from '../faces/align.js';
import { ArcFaceRecognizer } from '../faces/arcface.js';
import { nearestToCentre } from '../faces/select.js';
import type { RgbImage } from '../faces/types.js';
import type { SessionOptions } from '../runtime.js';
import { assignFolds, compareVerification, cosineSummary, DEFAULT_FOLD_MODE, DEFAULT_FOLDS } from './metrics.js';
import type { PairList } from './data.js';
import type { RecognizerResults } from '../report/types.js';

export interface AlignedSet {
  /** Relative image path -> aligned crop (null when no face was found). */
  crops: Map<string, RgbImage | null>;
  imagesWithoutFace: string[];
}

/**
 * Detect the face nearest each photo's centre and align it, decoding ahead while the detector runs.
 * Done once per evaluation and shared by both recognizers.
 */
export async function alignCentralFaces(
  detector: string,
  facesDir: string,
  images: readonly string[],
  opts: { session?: SessionOptions; cropSize?: readonly [number, number]; onProgress?: (done: number, total: number) => void; onUnreadable?: OnUnreadable } = {},
): Promise<AlignedSet> {
  const analyzer = await FaceAnalyzer.load({ detector, session: opts.session });
  const crops = new Map<string, RgbImage | null>();
  const missing: string[] = [];
  const [w, h] = opts.cropSize ?? [112, 112];
  try {
    const ahead = 4;
    const pending: Promise<RgbImage | null>[] = [];
    const start = (i: number) => {
      if (i < images.length) {
        pending[i] = skipUnreadable(() => analyzer.decode(path.join(facesDir, images[i]!)), images[i]!, opts.onUnreadable);
        pending[i]!.catch(() => undefined);
      }
    };
    for (let i = 0; i < ahead; i++) start(i);
    for (let i = 0; i < images.length; i++) {
      const img = await pending[i]!;
      delete pending[i];
      start(i + ahead);
      if (!img) { // unreadable: told to onUnreadable, no crop
        crops.set(images[i]!, null);
        opts.onProgress?.(i + 1, images.length);
        continue;
      }
      const face = nearestToCentre(await analyzer.detector.detect(img), img.width, img.height);
      if (face?.kps) {
        crops.set(images[i]!, alignFace(img, face.kps, w, h).image);
      } else {
        crops.set(images[i]!, null);
        missing.push(images[i]!);
      }
      opts.onProgress?.(i + 1, images.length);
    }
  } finally {
    await analyzer.release();
  }
  return { crops, imagesWithoutFace: missing };
}

/**
 * Unit embeddings of crops (null stays null), in order. An output with a NaN or infinite value comes
 * back from the recognizer as all zeros (its norm is not > 0); here it becomes all NaN, so its per-face
 * cosine is NaN (counted in `nonFinite`, scored -1 by cosineSummary) and its pair scores are NaN (always
 * "different" in verification), instead of a quiet cosine of 0 that the report counted as a working face.
 */
async function embedAll(modelPath: string, crops: readonly (RgbImage | null)[], session?: SessionOptions, onProgress?: (done: number, total: number) => void): Promise<(Float32Array | null)[]> {
  const rec = await ArcFaceRecognizer.load(modelPath, { session, maxBatch: 32 });
  try {
    const present = crops.map((c, i) => [c, i] as const).filter(([c]) => c !== null) as [RgbImage, number][];
    const out: (Float32Array | null)[] = crops.map(() => null);
    // in chunks, so a long evaluation tells how far it is (a w600k_r50 embeds 1,549 faces for minutes)
    for (let at = 0; at < present.length; at += EMBED_CHUNK) {
      const chunk = present.slice(at, at + EMBED_CHUNK);
      const { embeddings, norms } = await rec.embed(chunk.map(([c]) => c));
      chunk.forEach(([, i], k) => { out[i] = Number.isFinite(norms[k]) ? embeddings[k]! : new Float32Array(embeddings[k]!.length).fill(NaN); });
      onProgress?.(at + chunk.length, present.length);
    }
    return out;
  } finally {
    await rec.release();
  }
}

/** Faces embedded between two progress reports (a multiple of the recognizer's batch of 32). */
const EMBED_CHUNK = 256;

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export interface RecognizerEvalInput {
  reference: string;
  variant: string;
  aligned: AlignedSet;
  /** Images whose crops feed the per-face cosine (all aligned images when omitted). */
  images?: readonly string[];
  pairs?: PairList | null;
  /** Faces embedded so far by each model (after each chunk of 256). */
  onProgress?: (model: 'reference' | 'variant', done: number, total: number) => void;
  session?: SessionOptions;
}

/**
 * The verification fold of every pair of the pairs file (`all`, file order) and of each of `list.pairs`
 * (`kept`): folds are assigned over the file's whole list (PairList.source when pairs were left out), so
 * a pair left out moves no other pair into another fold (LFW View 2's folds are the file's sets).
 */
function fileFolds(list: PairList): { all: Int32Array; kept: Int32Array } {
  const all = assignFolds((list.source?.pairs ?? list.pairs).map((p) => p.same), DEFAULT_FOLDS, DEFAULT_FOLD_MODE);
  if (!list.source) return { all, kept: all };
  if (list.source.index.length !== list.pairs.length) {
    throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `${list.pairs.length} pairs of ${path.basename(list.file)} but ${list.source.index.length} places in the file` });
  }
  return { all, kept: Int32Array.from(list.source.index, (i) => all[i]!) };
}

/**
 * Refuse a fold with no scored pair left (a threshold cannot be tested on nothing), saying why its pairs
 * went: `skipped[f]` of fold f had a photo without a face found (or unreadable); the rest were left out before
 * (PairList.source.leftOut, e.g. touching calibration identities).
 */
function requireEveryFold(list: PairList, folds: { all: Int32Array; kept: Int32Array }, skipped: readonly number[]): void {
  const count = (fold: Int32Array, f: number) => fold.reduce((n, g) => n + (g === f ? 1 : 0), 0);
  for (let f = 0; f < DEFAULT_FOLDS; f++) {
    const kept = count(folds.kept, f);
    if (kept > skipped[f]!) continue;
    const inFile = count(folds.all, f);
    const before = inFile - kept;
    const why = [
      skipped[f] ? `${skipped[f]} have a photo where no face was found (or that could not be read)` : '',
      before ? `${before} were left out (${list.source?.leftOut ?? 'before the evaluation'})` : '',
    ].filter(Boolean).join(' and ');
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: `scored pairs in each of the ${DEFAULT_FOLDS} verification folds (assigned over the ${folds.all.length} pairs of ${path.basename(list.file)}, as the LFW protocol has them)`,
      name: '--pairs',
      received: `none in fold ${f + 1} of ${DEFAULT_FOLDS}: of its ${inFile} pairs, ${why}`,
    });
  }
}

/**
 * Verification of both recognizers on the pairs whose two photos have embeddings (`byName`: reference and
 * variant embedding by photo); a pair with a photo where no face was found is skipped for both, after the
 * folds were assigned over the whole file (fileFolds), so the other pairs keep their folds.
 */
function verifyPairs(list: PairList, byName: ReadonlyMap<string, readonly [Float32Array, Float32Array]>): NonNullable<RecognizerResults['verification']> {
  const folds = fileFolds(list);
  const refScores: number[] = [];
  const varScores: number[] = [];
  const same: boolean[] = [];
  const fold: number[] = [];
  const skipped = new Array<number>(DEFAULT_FOLDS).fill(0);
  list.pairs.forEach((p, i) => {
    const a = byName.get(p.left);
    const b = byName.get(p.right);
    if (!a || !b) { skipped[folds.kept[i]!]++; return; }
    refScores.push(dot(a[0], b[0]));
    varScores.push(dot(a[1], b[1]));
    same.push(p.same);
    fold.push(folds.kept[i]!);
  });
  requireEveryFold(list, folds, skipped);
  const cmp = compareVerification(refScores, varScores, same, { folds: DEFAULT_FOLDS, foldMode: DEFAULT_FOLD_MODE, fold });
  return { pairsFile: list.file, skippedPairs: skipped.reduce((a, b) => a + b, 0), reference: cmp.reference, variant: cmp.variant, delta: cmp.delta };
}

/** Per-face cosine and (with pairs) verification of both recognizers with the accuracy delta. */
export async function evaluateRecognizer(input: RecognizerEvalInput): Promise<RecognizerResults & { faces: number }> {
  const names = [...(input.images ?? input.aligned.crops.keys())];
  const crops = names.map((n) => input.aligned.crops.get(n) ?? null);
  const ref = await embedAll(input.reference, crops, input.session, input.onProgress && ((d, t) => input.onProgress!('reference', d, t)));
  const vari = await embedAll(input.variant, crops, input.session, input.onProgress && ((d, t) => input.onProgress!('variant', d, t)));
  const cosines: number[] = [];
  const byName = new Map<string, [Float32Array, Float32Array]>();
  names.forEach((n, i) => {
    if (ref[i] && vari[i]) {
      cosines.push(dot(ref[i]!, vari[i]!));
      byName.set(n, [ref[i]!, vari[i]!]);
    }
  });
  if (!cosines.length) {
    // cosineSummary would refuse an empty list with "at least one value for cosines", which names no input
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: 'evaluation photos in which the detector finds a face (a folder of face photos, or a --detector that finds them)',
      name: '--faces', received: `${names.length} photo(s), none with a face found`,
    });
  }
  const verification = input.pairs ? verifyPairs(input.pairs, byName) : null;
  return { cosine: cosineSummary(cosines), verification, faces: cosines.length };
}
