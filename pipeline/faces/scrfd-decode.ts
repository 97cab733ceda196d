/**
 * SCRFD head decoding (insightface/model_zoo/scrfd.py forward + detect): per stride, anchor centres on
 * the feature grid, distance-to-box and distance-to-keypoint decoding of the positions whose score passes
 * the threshold, then NMS over all strides. Pure functions on plain arrays, no runtime involved.
 */
import { FaceoptError } from '../errors.js';
import { nms } from './select.js';
import type { DetectedFace, Point } from './types.js';

/** One output tensor as the runtime returns it. */
export interface HeadTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/** The tensors of one stride level: scores [.., N, 1], boxes [.., N, 4], optional kps [.., N, 10]. */
export interface StrideOutputs {
  readonly stride: number;
  readonly scores: HeadTensor;
  readonly boxes: HeadTensor;
  readonly kps: HeadTensor | null;
}

const centreCache = new Map<string, Float32Array>();

/**
 * Anchor centres of a stride level, (x, y) per anchor in row-major cell order, each cell repeated
 * numAnchors times — np.mgrid + stack in scrfd.py. Cached per (height, width, stride, anchors).
 */
export function anchorCentres(height: number, width: number, stride: number, numAnchors: number): Float32Array {
  const key = `${height}x${width}/${stride}/${numAnchors}`;
  const hit = centreCache.get(key);
  if (hit) return hit;
  const out = new Float32Array(height * width * numAnchors * 2);
  let k = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let a = 0; a < numAnchors; a++) {
        out[k++] = x * stride;
        out[k++] = y * stride;
      }
    }
  }
  if (centreCache.size < 100) centreCache.set(key, out);
  return out;
}

/** distance2bbox for one anchor: centre minus left/top, plus right/bottom (distances already scaled by the stride). */
export function distance2bbox(cx: number, cy: number, l: number, t: number, r: number, b: number): [number, number, number, number] {
  return [cx - l, cy - t, cx + r, cy + b];
}

/** distance2kps for one anchor: each keypoint is the centre plus its (dx, dy) offset. */
export function distance2kps(cx: number, cy: number, offsets: ArrayLike<number>): Point[] {
  const pts: Point[] = [];
  for (let i = 0; i + 1 < offsets.length; i += 2) pts.push([cx + offsets[i], cy + offsets[i + 1]]);
  return pts;
}

/** Rows (N) and row offset of batch item `b` in a [B,N,C] or [N,C] tensor, checking the channel count. */
function rowsOf(t: HeadTensor, channels: number, b: number, what: string): { n: number; offset: number } {
  const dims = t.dims;
  const c = dims[dims.length - 1];
  const n = dims[dims.length - 2];
  if (c !== channels || dims.length < 2 || dims.length > 3) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `SCRFD ${what} output has shape [${dims.join(',')}], expected [N,${channels}] or [B,N,${channels}]` });
  }
  return { n, offset: b * n * channels };
}

/**
 * Decode one image's candidates over all stride levels and apply NMS, returning faces in detector
 * canvas coordinates divided by `scale` (i.e. in photo coordinates), highest score first.
 * `batchIndex` selects the image in batched ([B,N,C]) outputs.
 */
export function decodeScrfd(
  levels: readonly StrideOutputs[],
  opts: { inputWidth: number; inputHeight: number; numAnchors: number; threshold: number; nmsThreshold: number; scale: number; batchIndex?: number },
): DetectedFace[] {
  const b = opts.batchIndex ?? 0;
  const boxes: number[] = [];
  const scores: number[] = [];
  const kpss: number[][] = [];
  const withKps = levels.every((l) => l.kps !== null);
  // InsightFace divides by det_scale before NMS, and its +1-pixel areas make NMS scale-dependent
  const inv = 1 / opts.scale;
  for (const level of levels) {
    const s = rowsOf(level.scores, 1, b, 'score');
    const bx = rowsOf(level.boxes, 4, b, 'box');
    const kp = level.kps ? rowsOf(level.kps, 10, b, 'keypoint') : null;
    const h = Math.ceil(opts.inputHeight / level.stride);
    const w = Math.ceil(opts.inputWidth / level.stride);
    if (h * w * opts.numAnchors !== s.n || bx.n !== s.n || (kp && kp.n !== s.n)) {
      throw new FaceoptError('FACEOPT_ERR_GRAPH', {
        reason: `stride ${level.stride} has ${s.n} score rows for a ${opts.inputWidth}x${opts.inputHeight} input; expected ${h}x${w}x${opts.numAnchors} = ${h * w * opts.numAnchors}. Check the detector size (a multiple of 32) and the profile's anchors`,
      });
    }
    const centres = anchorCentres(h, w, level.stride, opts.numAnchors);
    const sd = level.scores.data;
    const bd = level.boxes.data;
    const st = level.stride;
    for (let i = 0; i < s.n; i++) {
      const score = sd[s.offset + i];
      if (!(score >= opts.threshold)) continue;
      const cx = centres[i * 2];
      const cy = centres[i * 2 + 1];
      const o = bx.offset + i * 4;
      for (const v of distance2bbox(cx, cy, bd[o] * st, bd[o + 1] * st, bd[o + 2] * st, bd[o + 3] * st)) boxes.push(v * inv);
      scores.push(score);
      if (withKps && kp && level.kps) {
        const ko = kp.offset + i * 10;
        const off: number[] = [];
        for (let k = 0; k < 10; k++) off.push(level.kps.data[ko + k] * st);
        kpss.push(distance2kps(cx, cy, off).flat().map((v) => v * inv));
      }
    }
  }
  const keep = nms(Float64Array.from(boxes), Float64Array.from(scores), opts.nmsThreshold);
  return keep.map((i) => ({
    box: [boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3]] as const,
    score: scores[i],
    kps: withKps ? Array.from({ length: 5 }, (_, k) => [kpss[i][k * 2], kpss[i][k * 2 + 1]] as const) : null,
  }));
}
