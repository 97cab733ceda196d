/**
 * Detector evaluation: reference and variant detectors run on the same decoded photos; the variant's
 * detections are matched to the reference's (recall, precision, IoU, keypoint error, score drift), both
 * are matched to annotated boxes where given, and detections on face-free photos are counted.
 *
 * Face-free photos stay out of the variant-vs-reference comparison: every detection there is a false
 * positive, so a reference's detection on the dogs photo is no face the variant should find (counted as
 * one, a variant that no longer made that mistake lost recall: 43 of 44 = 97.7%, below the 99.5% gate).
 * They are counted in `faceFree` instead.
 */
import { decodeImage, skipUnreadable, type OnUnreadable } from '../faces/decode.js';
import { ScrfdDetector } from '../faces/scrfd.js';
import type { DetectedFace } from '../faces/types.js';
import type { SessionOptions } from '../runtime.js';
import { compareDetections, type Detection, type ImageDetections } from './metrics.js';
import type { AnnotatedImage } from './data.js';
import type { DetectorResults } from '../report/types.js';

const toDetection = (f: DetectedFace): Detection => ({ box: f.box, score: f.score, ...(f.kps ? { keypoints: f.kps } : {}) });

export interface DetectorEvalInput {
  reference: string;
  variant: string;
  /** Absolute paths of photos to compare the two detectors on. */
  images: readonly string[];
  annotated?: readonly AnnotatedImage[];
  boxFiles?: readonly string[];
  /** Absolute paths of photos without human faces. */
  faceFree?: readonly string[];
  detSize?: number;
  session?: SessionOptions;
  onProgress?: (done: number, total: number) => void;
  /** Leave out photos of `images` that cannot be read, telling this (default: throw); annotated and face-free photos, named by the user, always throw. */
  onUnreadable?: OnUnreadable;
}

/** Run both detectors over the photos and compare. */
export async function evaluateDetector(input: DetectorEvalInput): Promise<DetectorResults> {
  const ref = await ScrfdDetector.load(input.reference, { session: input.session, detSize: input.detSize });
  const vari = await ScrfdDetector.load(input.variant, { session: input.session, detSize: input.detSize });
  try {
    const annotated = input.annotated ?? [];
    const faceFree = input.faceFree ?? [];
    const all = [...input.images, ...annotated.map((a) => a.file), ...faceFree];
    const vsRef: ImageDetections[] = [];
    const gtRef: ImageDetections[] = [];
    const gtVar: ImageDetections[] = [];
    let ffRef = 0;
    let ffVar = 0;
    for (const [i, file] of all.entries()) {
      const img = i < input.images.length ? await skipUnreadable(() => decodeImage(file), file, input.onUnreadable) : await decodeImage(file);
      if (!img) { input.onProgress?.(i + 1, all.length); continue; }
      const r = (await ref.detect(img)).map(toDetection);
      const v = (await vari.detect(img)).map(toDetection);
      const isFaceFree = faceFree.includes(file);
      if (!isFaceFree) vsRef.push({ reference: r, candidate: v });
      const ann = annotated.find((a) => a.file === file);
      if (ann) {
        const gt = ann.boxes.map((b): Detection => ({ box: b, score: 1 }));
        gtRef.push({ reference: gt, candidate: r });
        gtVar.push({ reference: gt, candidate: v });
      }
      if (isFaceFree) { ffRef += r.length; ffVar += v.length; }
      input.onProgress?.(i + 1, all.length);
    }
    return {
      inputSize: [...ref.detSize] as [number, number],
      vsReference: compareDetections(vsRef),
      // annotations carry no score (they enter as 1): a score drift against them would only be 1 - the mean score
      vsGroundTruth: annotated.length ? { boxFiles: [...(input.boxFiles ?? [])], reference: { ...compareDetections(gtRef), scoreDrift: null }, variant: { ...compareDetections(gtVar), scoreDrift: null } } : null,
      faceFree: faceFree.length ? { images: faceFree.length, referenceDetections: ffRef, variantDetections: ffVar } : null,
    };
  } finally {
    await ref.release();
    await vari.release();
  }
}
