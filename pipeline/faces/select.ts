/**
 * Choosing among candidate faces, as InsightFace does: greedy NMS with its "+1" pixel areas, the
 * max-faces pick that prefers large faces near the image centre, plus a minimum face size and the
 * "face nearest the centre" rule used for single-face photos such as LFW.
 */
import type { DetectedFace } from './types.js';

/**
 * Greedy non-maximum suppression (insightface SCRFD.nms): visit faces by descending score, keep one,
 * drop the rest whose IoU with it (areas counted with +1 pixel, as InsightFace does) is above
 * `threshold`. Returns indices of the kept faces, highest score first.
 */
export function nms(boxes: Float32Array | Float64Array, scores: Float32Array | Float64Array, threshold: number): number[] {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const area = new Float64Array(n);
  for (let i = 0; i < n; i++) area[i] = (boxes[i * 4 + 2] - boxes[i * 4] + 1) * (boxes[i * 4 + 3] - boxes[i * 4 + 1] + 1);
  const suppressed = new Uint8Array(n);
  const keep: number[] = [];
  for (let oi = 0; oi < n; oi++) {
    const i = order[oi];
    if (suppressed[i]) continue;
    keep.push(i);
    for (let oj = oi + 1; oj < n; oj++) {
      const j = order[oj];
      if (suppressed[j]) continue;
      const w = Math.max(0, Math.min(boxes[i * 4 + 2], boxes[j * 4 + 2]) - Math.max(boxes[i * 4], boxes[j * 4]) + 1);
      const h = Math.max(0, Math.min(boxes[i * 4 + 3], boxes[j * 4 + 3]) - Math.max(boxes[i * 4 + 1], boxes[j * 4 + 1]) + 1);
      const inter = w * h;
      if (inter / (area[i] + area[j] - inter) > threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

/**
 * InsightFace's max_num pick: rank by area minus twice the squared distance of the box centre from
 * the image centre ('default' metric) or by area alone ('max'), keep the best `maxFaces`.
 * Faces come back in that rank order. maxFaces <= 0 keeps all in their original order.
 */
export function pickFaces(faces: DetectedFace[], maxFaces: number, imageWidth: number, imageHeight: number, metric: 'default' | 'max' = 'default'): DetectedFace[] {
  if (maxFaces <= 0 || faces.length <= maxFaces) return faces;
  // insightface: img_center = img.shape[0] // 2, img.shape[1] // 2  (integer division)
  const cx = Math.floor(imageWidth / 2);
  const cy = Math.floor(imageHeight / 2);
  const value = (f: DetectedFace) => {
    const [x1, y1, x2, y2] = f.box;
    const area = (x2 - x1) * (y2 - y1);
    if (metric === 'max') return area;
    const dx = (x1 + x2) / 2 - cx;
    const dy = (y1 + y2) / 2 - cy;
    return area - (dx * dx + dy * dy) * 2;
  };
  return faces
    .map((f, i) => ({ f, v: value(f), i }))
    .sort((a, b) => b.v - a.v || a.i - b.i)
    .slice(0, maxFaces)
    .map((e) => e.f);
}

/** Drop faces whose box is narrower or shorter than `minSize` pixels. */
export function filterMinSize(faces: DetectedFace[], minSize: number): DetectedFace[] {
  if (minSize <= 0) return faces;
  return faces.filter((f) => f.box[2] - f.box[0] >= minSize && f.box[3] - f.box[1] >= minSize);
}

/**
 * The face whose box centre is nearest the image centre, or null. The rule for photos known to show
 * one person roughly centred (LFW, ID photos), where a larger face in the background must not win.
 */
export function nearestToCentre(faces: readonly DetectedFace[], imageWidth: number, imageHeight: number): DetectedFace | null {
  let best: DetectedFace | null = null;
  let bestD = Infinity;
  for (const f of faces) {
    const dx = (f.box[0] + f.box[2]) / 2 - imageWidth / 2;
    const dy = (f.box[1] + f.box[3]) / 2 - imageHeight / 2;
    const d = dx * dx + dy * dy;
    if (d < bestD) {
      bestD = d;
      best = f;
    }
  }
  return best;
}

/** Intersection over union of two boxes (continuous areas, no +1), for matching against annotations. */
export function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}
