/**
 * Five-point face alignment, as insightface/utils/face_align.py norm_crop does it: the least-squares
 * similarity transform (Umeyama, what skimage's SimilarityTransform.estimate computes) from the
 * detected keypoints onto the ArcFace template, then cv2.warpAffine with bilinear interpolation and a
 * black border. The warp reproduces OpenCV's fixed-point arithmetic (1/32-pixel coordinates, 15-bit
 * weights) so crops match norm_crop to the gray level.
 */
import { FaceoptError } from '../errors.js';
import type { DetectedFace, Point, RgbImage } from './types.js';

/** InsightFace's arcface_dst: eye centres, nose tip and mouth corners in a 112x112 crop. */
export const ARCFACE_DST: readonly Point[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** A 2x3 affine matrix [a, b, tx, c, d, ty] mapping (x, y) to (a x + b y + tx, c x + d y + ty). */
export type Affine = readonly [number, number, number, number, number, number];

/**
 * The template for a crop of the given size, as estimate_norm scales it: sizes that are multiples of
 * 112 scale the 112 template; multiples of 128 scale it by size/128 and shift x by 8*ratio. Other
 * sizes (non-square recognizers) scale by height/112 and centre horizontally.
 */
export function arcfaceTemplate(width: number, height: number = width): Point[] {
  let ratio: number;
  let dx: number;
  if (width === height && width % 112 === 0) {
    ratio = width / 112;
    dx = 0;
  } else if (width === height && width % 128 === 0) {
    ratio = width / 128;
    dx = 8 * ratio;
  } else {
    ratio = height / 112;
    dx = (width - 112 * ratio) / 2;
  }
  return ARCFACE_DST.map(([x, y]) => [x * ratio + dx, y * ratio] as const);
}

/**
 * Least-squares similarity transform (rotation, uniform scale, translation; no reflection) taking
 * `src` points onto `dst` points — Umeyama's method in its 2-D closed form, which equals
 * skimage.transform.SimilarityTransform().estimate(src, dst). Needs >= 2 distinct source points.
 */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[]): Affine {
  const n = src.length;
  if (n < 2 || dst.length !== n) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'two equally long lists of >= 2 points', name: 'keypoints', received: `${n} and ${dst.length}` });
  }
  let sx = 0, sy = 0, dxm = 0, dym = 0;
  for (let i = 0; i < n; i++) {
    sx += src[i][0]; sy += src[i][1]; dxm += dst[i][0]; dym += dst[i][1];
  }
  sx /= n; sy /= n; dxm /= n; dym /= n;
  // a = mean(xs*xd + ys*yd) = trace(A); b = mean(xs*yd - ys*xd); var = mean |s|^2 (demeaned)
  let a = 0, b = 0, v = 0;
  for (let i = 0; i < n; i++) {
    const xs = src[i][0] - sx, ys = src[i][1] - sy;
    const xd = dst[i][0] - dxm, yd = dst[i][1] - dym;
    a += xs * xd + ys * yd;
    b += xs * yd - ys * xd;
    v += xs * xs + ys * ys;
  }
  a /= n; b /= n; v /= n;
  if (!(v > 0)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'keypoints that are not all the same point', name: 'keypoints', received: JSON.stringify(src) });
  }
  // scale*cos = a / v, scale*sin = b / v
  const p = a / v;
  const q = b / v;
  return [p, -q, dxm - (p * sx - q * sy), q, p, dym - (q * sx + p * sy)];
}

/** Apply an affine matrix to a point. */
export function applyAffine(m: Affine, pt: Point): Point {
  return [m[0] * pt[0] + m[1] * pt[1] + m[2], m[3] * pt[0] + m[4] * pt[1] + m[5]];
}

/** Inverse of an affine matrix (as cv2.invertAffineTransform); a singular matrix inverts to zeros like OpenCV. */
export function invertAffine(m: Affine): Affine {
  let det = m[0] * m[4] - m[1] * m[3];
  det = det !== 0 ? 1 / det : 0;
  const a = m[4] * det, b = -m[1] * det, c = -m[3] * det, d = m[0] * det;
  return [a, b, -a * m[2] - b * m[5], c, d, -c * m[2] - d * m[5]];
}

/** cvRound: round half to even (lrint in the default rounding mode). */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const AB_BITS = 10;
const AB_SCALE = 1 << AB_BITS;
const INTER_BITS = 5;
const TAB = 1 << INTER_BITS;
const ROUND_DELTA = AB_SCALE / TAB / 2;

/**
 * cv2.warpAffine(img, m, (width, height)) with INTER_LINEAR and BORDER_CONSTANT 0: `m` maps source to
 * destination; every destination pixel samples the source at the inverse-mapped point, quantised to
 * 1/32 pixel, with neighbours outside the image counted as black.
 */
export function warpAffine(img: RgbImage, m: Affine, width: number, height: number): RgbImage {
  const inv = invertAffine(m);
  const out = new Uint8Array(width * height * 3);
  const sw = img.width, sh = img.height, src = img.data;
  const adelta = new Int32Array(width);
  const bdelta = new Int32Array(width);
  for (let x = 0; x < width; x++) {
    adelta[x] = roundEven(inv[0] * x * AB_SCALE);
    bdelta[x] = roundEven(inv[3] * x * AB_SCALE);
  }
  for (let y = 0; y < height; y++) {
    const X0 = roundEven((inv[1] * y + inv[2]) * AB_SCALE) + ROUND_DELTA;
    const Y0 = roundEven((inv[4] * y + inv[5]) * AB_SCALE) + ROUND_DELTA;
    for (let x = 0; x < width; x++) {
      const X = (X0 + adelta[x]) >> (AB_BITS - INTER_BITS);
      const Y = (Y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
      const ix = X >> INTER_BITS, iy = Y >> INTER_BITS;
      const o = (y * width + x) * 3;
      if (ix >= sw || ix + 1 < 0 || iy >= sh || iy + 1 < 0) continue; // whole neighbourhood outside: border 0
      const fx = X & (TAB - 1), fy = Y & (TAB - 1);
      // OpenCV's 15-bit weights are exact here: (32-fy)(32-fx)*32 etc. sum to 32768
      const w00 = (TAB - fy) * (TAB - fx) * 32, w01 = (TAB - fy) * fx * 32;
      const w10 = fy * (TAB - fx) * 32, w11 = fy * fx * 32;
      const in0 = iy >= 0 && iy < sh, in1 = iy + 1 >= 0 && iy + 1 < sh;
      const jx0 = ix >= 0 && ix < sw, jx1 = ix + 1 >= 0 && ix + 1 < sw;
      const r0 = iy * sw, r1 = (iy + 1) * sw;
      for (let c = 0; c < 3; c++) {
        const p00 = in0 && jx0 ? src[(r0 + ix) * 3 + c] : 0;
        const p01 = in0 && jx1 ? src[(r0 + ix + 1) * 3 + c] : 0;
        const p10 = in1 && jx0 ? src[(r1 + ix) * 3 + c] : 0;
        const p11 = in1 && jx1 ? src[(r1 + ix + 1) * 3 + c] : 0;
        const val = (p00 * w00 + p01 * w01 + p10 * w10 + p11 * w11 + (1 << 14)) >> 15;
        out[o + c] = val > 255 ? 255 : val;
      }
    }
  }
  return { width, height, data: out };
}

/** An aligned face crop and the matrix that produced it (photo -> crop). */
export interface AlignedFace {
  readonly image: RgbImage;
  readonly matrix: Affine;
}

/**
 * norm_crop: align a face by its five keypoints onto the ArcFace template of a width x height crop
 * (default 112x112, or the recognizer's input size).
 */
export function alignFace(img: RgbImage, kps: readonly Point[], width = 112, height = width): AlignedFace {
  if (kps.length !== 5) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: '5 keypoints', name: 'kps', received: String(kps.length) });
  }
  const matrix = estimateSimilarity(kps, arcfaceTemplate(width, height));
  return { image: warpAffine(img, matrix, width, height), matrix };
}

/**
 * Aligned crops of `faces` at `size` (width, height); FACEOPT_ERR_MODEL_ROLE when the detector
 * (`detectorPath`) gave no keypoints.
 */
export function alignFacesTo(img: RgbImage, faces: readonly DetectedFace[], size: readonly [number, number], detectorPath: string): RgbImage[] {
  return faces.map((f) => {
    if (!f.kps) {
      throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path: detectorPath, expected: 'detector with keypoints', actual: 'detector without keypoints' });
    }
    return alignFace(img, f.kps, size[0], size[1]).image;
  });
}
