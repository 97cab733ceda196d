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
import { compareVerification, cosineSummary } from './metrics.js';
import type { Pair } from './data.js';
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
async function embedAll(modelPath: string, crops: readonly (RgbImage | null)[], session?: SessionOptions): Promise<(Float32Array | null)[]> {
  const rec = await ArcFaceRecognizer.load(modelPath, { session, maxBatch: 32 });
  try {
    const present = crops.map((c, i) => [c, i] as const).filter(([c]) => c !== null) as [RgbImage, number][];
    const { embeddings, norms } = await rec.embed(present.map(([c]) => c));
    const out: (Float32Array | null)[] = crops.map(() => null);
    present.forEach(([, i], k) => { out[i] = Number.isFinite(norms[k]) ? embeddings[k]! : new Float32Array(embeddings[k]!.length).fill(NaN); });
    return out;
  } finally {
    await rec.release();
  }
}

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
  pairs?: { file: string; pairs: readonly Pair[] } | null;
  session?: SessionOptions;
}

/** Per-face cosine and (with pairs) verification of both recognizers with the accuracy delta. */
export async function evaluateRecognizer(input: RecognizerEvalInput): Promise<RecognizerResults & { faces: number }> {
  const names = [...(input.images ?? input.aligned.crops.keys())];
  const crops = names.map((n) => input.aligned.crops.get(n) ?? null);
  const ref = await embedAll(input.reference, crops, input.session);
  const vari = await embedAll(input.variant, crops, input.session);
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
  let verification: RecognizerResults['verification'] = null;
  if (input.pairs) {
    const refScores: number[] = [];
    const varScores: number[] = [];
    const same: boolean[] = [];
    let skipped = 0;
    for (const p of input.pairs.pairs) {
      const a = byName.get(p.left);
      const b = byName.get(p.right);
      if (!a || !b) { skipped++; continue; }
      refScores.push(dot(a[0], b[0]));
      varScores.push(dot(a[1], b[1]));
      same.push(p.same);
    }
    const cmp = compareVerification(refScores, varScores, same);
    verification = { pairsFile: input.pairs.file, skippedPairs: skipped, reference: cmp.reference, variant: cmp.variant, delta: cmp.delta };
  }
  return { cosine: cosineSummary(cosines), verification, faces: cosines.length };
}
