/**
 * Detection agreement between a reference and a candidate (a quantized variant, or ground truth boxes as
 * the reference): IoU matching per image (greedy, grown to a maximum matching), then recall, precision,
 * mean IoU, keypoint error and score drift over all images. Pure functions over plain boxes so they test without any model.
 *
 * Matching starts greedy over IoU: all (reference, candidate) pairs with IoU >= the threshold are taken in
 * order of decreasing IoU (ties: lower reference index, then lower candidate index) and kept when neither
 * box is matched yet. Greedy-by-IoU rather than greedy-by-score because a variant's scores drift, and the
 * question is "is the same face found at the same place". Greedy alone can undercount that: when the
 * best overlap of one candidate is a face another candidate also covers (two overlapping faces, both
 * kept by NMS, the variant's boxes shifted), greedy pairs it there and leaves a face unmatched that an
 * assignment would find. So the greedy matching is then grown to a maximum one by augmenting paths
 * (unmatched references in index order, candidates in decreasing IoU): every face greedy matched stays
 * matched, and recall counts every face some one-to-one assignment at the threshold finds.
 *
 * Keypoint error of a matched face = mean over its keypoints of the Euclidean distance between reference
 * and candidate point, divided by sqrt(w x h) of the reference box (a scale-free "fraction of face size").
 */
import { FaceoptError } from '../errors.js';
import { mean, percentile } from './stats.js';

/** [x1, y1, x2, y2] in pixels, x2 > x1 and y2 > y1 for a real box. */
export type Box = readonly [number, number, number, number];

export interface Detection {
  box: Box;
  /** Detector confidence; ground truth boxes use 1. */
  score: number;
  /** Facial landmarks (SCRFD: 5 points), absent for ground truth boxes. */
  keypoints?: readonly (readonly [number, number])[];
}

/** Intersection over union of two boxes (0 when either has no area). */
export function iou(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const areaA = Math.max(0, a[2] - a[0]) * Math.max(0, a[3] - a[1]);
  const areaB = Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  const union = areaA + areaB - inter;
  return union > 0 ? inter / union : 0;
}

export interface DetectionMatch {
  reference: number;
  candidate: number;
  iou: number;
}

export interface ImageMatching {
  matches: DetectionMatch[];
  unmatchedReference: number[];
  unmatchedCandidate: number[];
}

/** IoU matching of one image's detections: greedy, grown to a maximum matching (rule in the file comment). */
export function matchDetections(reference: readonly Detection[], candidate: readonly Detection[], iouThreshold = 0.5): ImageMatching {
  const pairs: DetectionMatch[] = [];
  reference.forEach((r, ri) => candidate.forEach((c, ci) => {
    const v = iou(r.box, c.box);
    if (v >= iouThreshold && v > 0) pairs.push({ reference: ri, candidate: ci, iou: v });
  }));
  pairs.sort((a, b) => b.iou - a.iou || a.reference - b.reference || a.candidate - b.candidate);
  const ofReference = new Array<number>(reference.length).fill(-1);
  const ofCandidate = new Array<number>(candidate.length).fill(-1);
  for (const p of pairs) {
    if (ofReference[p.reference] !== -1 || ofCandidate[p.candidate] !== -1) continue;
    ofReference[p.reference] = p.candidate;
    ofCandidate[p.candidate] = p.reference;
  }
  // candidates of each reference, best overlap first (pairs is sorted that way)
  const options: DetectionMatch[][] = reference.map(() => []);
  for (const p of pairs) options[p.reference]!.push(p);
  const augment = (r: number, seen: Set<number>): boolean => {
    for (const p of options[r]!) {
      if (seen.has(p.candidate)) continue;
      seen.add(p.candidate);
      const holder = ofCandidate[p.candidate]!;
      if (holder === -1 || augment(holder, seen)) {
        ofReference[r] = p.candidate;
        ofCandidate[p.candidate] = r;
        return true;
      }
    }
    return false;
  };
  // one pass suffices: a reference with no augmenting path now has none after later augmentations
  for (let r = 0; r < reference.length; r++) if (ofReference[r] === -1 && options[r]!.length) augment(r, new Set());
  const matches: DetectionMatch[] = [];
  ofReference.forEach((c, r) => { if (c !== -1) matches.push(options[r]!.find((p) => p.candidate === c)!); });
  return {
    matches,
    unmatchedReference: reference.map((_, i) => i).filter((i) => ofReference[i] === -1),
    unmatchedCandidate: candidate.map((_, i) => i).filter((i) => ofCandidate[i] === -1),
  };
}

/**
 * Keypoint error of one matched face as a fraction of the reference box size sqrt(w x h); null when either
 * side has no keypoints or their counts differ (nothing comparable).
 */
export function keypointError(reference: Detection, candidate: Detection): number | null {
  const a = reference.keypoints;
  const b = candidate.keypoints;
  if (!a || !b || a.length === 0 || a.length !== b.length) return null;
  const size = Math.sqrt(Math.max(0, reference.box[2] - reference.box[0]) * Math.max(0, reference.box[3] - reference.box[1]));
  if (size === 0) return null;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.hypot(a[i]![0] - b[i]![0], a[i]![1] - b[i]![1]);
  return sum / a.length / size;
}

export interface DetectionComparison {
  images: number;
  iouThreshold: number;
  referenceFaces: number;
  candidateFaces: number;
  matched: number;
  /** matched / referenceFaces; null when the reference has no faces. */
  recall: number | null;
  /** matched / candidateFaces; null when the candidate found nothing. */
  precision: number | null;
  /** Mean IoU of matched pairs; null without matches. */
  meanIou: number | null;
  /** Normalised keypoint error over matched faces with keypoints on both sides (see file comment). */
  keypointError: { normalization: 'sqrt(w*h) of the reference box'; faces: number; mean: number; p95: number; max: number } | null;
  /**
   * Matched faces whose reference has keypoints and whose candidate has none or another number of them
   * (reports since 2026-12-06; absent means 0): such faces are not in keypointError, and the keypoint gate
   * fails on them instead of passing on the faces that were comparable (or skipping when none were).
   */
  keypointsLost?: number;
  /** Candidate score minus reference score over matched faces. */
  scoreDrift: { meanAbs: number; maxAbs: number; meanSigned: number } | null;
  /**
   * Reference scores of the reference faces the candidate missed, lowest first: a miss of a face the
   * reference itself scored at its threshold (scrfd_500m on LFW: 0.502) is a coin flip, not a lost face.
   */
  missedScores?: number[];
}

/** One image's reference and candidate detections. */
export interface ImageDetections {
  reference: readonly Detection[];
  candidate: readonly Detection[];
}

/**
 * Compare candidate detections to reference detections over many images (rules in the file comment).
 * Rates with an empty denominator are null, never NaN or a made-up 1, so gates can say "not measured".
 */
export function compareDetections(images: readonly ImageDetections[], iouThreshold = 0.5): DetectionComparison {
  if (!(iouThreshold > 0 && iouThreshold <= 1)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'number > 0 and <= 1', name: 'iouThreshold', received: String(iouThreshold) });
  }
  let referenceFaces = 0;
  let candidateFaces = 0;
  const ious: number[] = [];
  const kps: number[] = [];
  const drift: number[] = [];
  const missed: number[] = [];
  let lost = 0;
  for (const img of images) {
    referenceFaces += img.reference.length;
    candidateFaces += img.candidate.length;
    const matches = matchDetections(img.reference, img.candidate, iouThreshold).matches;
    const found = new Set(matches.map((m) => m.reference));
    img.reference.forEach((r, i) => { if (!found.has(i)) missed.push(r.score); });
    for (const m of matches) {
      const r = img.reference[m.reference]!;
      const c = img.candidate[m.candidate]!;
      ious.push(m.iou);
      drift.push(c.score - r.score);
      const e = keypointError(r, c);
      if (e !== null) kps.push(e);
      else if (r.keypoints?.length && r.keypoints.length !== (c.keypoints?.length ?? 0)) lost++;
    }
  }
  const matched = ious.length;
  return {
    images: images.length,
    iouThreshold,
    referenceFaces,
    candidateFaces,
    matched,
    recall: referenceFaces ? matched / referenceFaces : null,
    precision: candidateFaces ? matched / candidateFaces : null,
    meanIou: matched ? mean(ious) : null,
    keypointError: kps.length
      ? { normalization: 'sqrt(w*h) of the reference box', faces: kps.length, mean: mean(kps), p95: percentile(kps, 95), max: Math.max(...kps) }
      : null,
    scoreDrift: matched
      ? { meanAbs: mean(drift.map(Math.abs)), maxAbs: Math.max(...drift.map(Math.abs)), meanSigned: mean(drift) }
      : null,
    missedScores: missed.sort((a, b) => a - b),
    ...(lost ? { keypointsLost: lost } : {}),
  };
}
