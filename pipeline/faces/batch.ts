/**
 * Many photos, one face each: the loop calibration, evaluation (LFW pairs) and the benchmark share.
 * Photos are decoded ahead on sharp's worker threads while the detector runs, the face nearest each
 * photo's centre is aligned, and crops are embedded in recognizer batches. Per-stage wall time is
 * accumulated so callers can report where the time goes.
 */
import { checkNumber } from '../errors.js';
import type { FaceAnalyzer, ImageInput } from './analyzer.js';
import type { DetectOptions } from './scrfd.js';
import { nearestToCentre, pickFaces } from './select.js';
import type { DetectedFace, EmbeddedFace, RgbImage } from './types.js';

/** Milliseconds spent per stage (decode overlaps the others, so it is time waited for, not decode CPU time). */
export interface StageTimes {
  decode: number;
  detect: number;
  align: number;
  embed: number;
}

export interface CentralFacesOptions {
  /** Photos decoded ahead of the detector (default 4). */
  prefetch?: number;
  /** Detection options (threshold, NMS, ...). */
  detect?: DetectOptions;
  /** 'centre' (default): the face nearest the photo centre; 'largest': InsightFace's max_num=1 pick. */
  pick?: 'centre' | 'largest';
  /** Called after each photo is detected, with the count done so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface CentralFacesResult {
  /** One entry per input: the embedded face, or null when no face was found. */
  faces: (EmbeddedFace | null)[];
  times: StageTimes;
}

function pickOne(faces: DetectedFace[], img: RgbImage, pick: 'centre' | 'largest'): DetectedFace | null {
  if (faces.length === 0) return null;
  return pick === 'centre' ? nearestToCentre(faces, img.width, img.height) : pickFaces(faces, 1, img.width, img.height)[0];
}

/**
 * Detect, align and embed one face per photo, for photos known to show one main person (LFW, ID
 * photos). The recognizer sees crops in batches of its maxBatch.
 */
export async function embedCentralFaces(analyzer: FaceAnalyzer, inputs: readonly ImageInput[], opts: CentralFacesOptions = {}): Promise<CentralFacesResult> {
  const rec = analyzer.requireRecognizer();
  const prefetch = checkNumber('prefetch', opts.prefetch ?? 4, { min: 1, max: 64, integer: true });
  const pick = opts.pick ?? 'centre';
  const times: StageTimes = { decode: 0, detect: 0, align: 0, embed: 0 };
  const faces: (EmbeddedFace | null)[] = new Array(inputs.length).fill(null);
  const pending: { index: number; face: DetectedFace; crop: RgbImage }[] = [];

  const flush = async () => {
    if (pending.length === 0) return;
    const t0 = performance.now();
    const { embeddings, norms } = await rec.embed(pending.map((p) => p.crop));
    times.embed += performance.now() - t0;
    pending.forEach((p, i) => { faces[p.index] = { ...p.face, embedding: embeddings[i], norm: norms[i] }; });
    pending.length = 0;
  };

  const decoding: Promise<RgbImage>[] = [];
  const startDecode = (i: number) => {
    if (i >= inputs.length) return;
    decoding[i] = analyzer.decode(inputs[i]);
    decoding[i].catch(() => undefined); // surfaced when awaited in order; avoid an unhandled rejection meanwhile
  };
  for (let i = 0; i < prefetch; i++) startDecode(i);
  for (let i = 0; i < inputs.length; i++) {
    let t0 = performance.now();
    const img = await decoding[i];
    delete decoding[i];
    startDecode(i + prefetch);
    times.decode += performance.now() - t0;

    t0 = performance.now();
    const face = pickOne(await analyzer.detector.detect(img, opts.detect), img, pick);
    times.detect += performance.now() - t0;
    opts.onProgress?.(i + 1, inputs.length);
    if (!face) continue;

    t0 = performance.now();
    pending.push({ index: i, face, crop: analyzer.alignFaces(img, [face])[0] });
    times.align += performance.now() - t0;
    if (pending.length >= rec.maxBatch) await flush();
  }
  await flush();
  return { faces, times };
}
