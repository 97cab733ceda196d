/**
 * Pixels to model input, as InsightFace does it with OpenCV: cv2.resize (INTER_LINEAR) into the
 * top-left corner of a zero canvas (the SCRFD letterbox), then cv2.dnn.blobFromImage — per-channel
 * (pixel - mean) / std into NCHW float32. The resize follows OpenCV's 8-bit fixed-point arithmetic
 * (11-bit coefficients, half-pixel centres, no antialiasing) so detections match InsightFace's.
 */
import type { RgbImage } from './types.js';
import type { Triple } from './profile.js';

/** Where an image lands inside the detector canvas. */
export interface LetterboxGeometry {
  /** Canvas (detector input) size. */
  readonly canvasWidth: number;
  readonly canvasHeight: number;
  /** Size of the resized photo in the canvas' top-left corner. */
  readonly width: number;
  readonly height: number;
  /** Resized / original; divide detector coordinates by it to get photo coordinates. */
  readonly scale: number;
}

/**
 * InsightFace's SCRFD.detect geometry: keep the aspect ratio, fill the canvas along the tighter side,
 * truncate the other side to an integer, and take the scale from the height.
 */
export function letterboxGeometry(imageWidth: number, imageHeight: number, canvasWidth: number, canvasHeight: number): LetterboxGeometry {
  const imRatio = imageHeight / imageWidth;
  const modelRatio = canvasHeight / canvasWidth;
  let width: number;
  let height: number;
  if (imRatio > modelRatio) {
    height = canvasHeight;
    width = Math.trunc(height / imRatio);
  } else {
    width = canvasWidth;
    height = Math.trunc(width * imRatio);
  }
  width = Math.max(1, width);
  height = Math.max(1, height);
  return { canvasWidth, canvasHeight, width, height, scale: height / imageHeight };
}

const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;

/** Per-output-coordinate source index and fixed-point weights, as cv::resize computes them. */
function linearTaps(src: number, dst: number): { index: Int32Array; w0: Int32Array; w1: Int32Array } {
  const scale = 1 / (dst / src); // OpenCV: scale_x = 1 / inv_scale_x
  const index = new Int32Array(dst);
  const w0 = new Int32Array(dst);
  const w1 = new Int32Array(dst);
  for (let d = 0; d < dst; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (s < 0) {
      f = 0;
      s = 0;
    }
    if (s >= src - 1) {
      f = 0;
      s = src - 1;
    }
    index[d] = s;
    // saturate_cast<short>(x * 2048) rounds to nearest
    w1[d] = Math.round(f * COEF_SCALE);
    w0[d] = Math.round(Math.fround(1 - f) * COEF_SCALE);
  }
  return { index, w0, w1 };
}

/**
 * Resize an RGB image with OpenCV INTER_LINEAR semantics (8-bit fixed point). Downscales by exactly
 * 2 are the mean of 2x2 blocks, as OpenCV switches to INTER_AREA there.
 */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  const out = new Uint8Array(width * height * 3);
  const src = img.data;
  const sw = img.width;
  if (img.width === width * 2 && img.height === height * 2) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const a = ((2 * y) * sw + 2 * x) * 3;
        const b = a + sw * 3;
        for (let c = 0; c < 3; c++) {
          out[(y * width + x) * 3 + c] = (src[a + c] + src[a + 3 + c] + src[b + c] + src[b + 3 + c] + 2) >> 2;
        }
      }
    }
    return { width, height, data: out };
  }
  const tx = linearTaps(img.width, width);
  const ty = linearTaps(img.height, height);
  const rowLen = width * 3;
  // horizontal pass of a source row into a buffer; two buffers hold the rows the current output row needs
  const hpass = (sy: number, r: Int32Array): void => {
    const base = sy * sw * 3;
    for (let x = 0; x < width; x++) {
      const s0 = base + tx.index[x] * 3;
      const s1 = tx.index[x] + 1 < sw ? s0 + 3 : s0;
      const a0 = tx.w0[x];
      const a1 = tx.w1[x];
      const o = x * 3;
      r[o] = src[s0] * a0 + src[s1] * a1;
      r[o + 1] = src[s0 + 1] * a0 + src[s1 + 1] * a1;
      r[o + 2] = src[s0 + 2] * a0 + src[s1 + 2] * a1;
    }
  };
  let r0 = new Int32Array(rowLen);
  let r1 = new Int32Array(rowLen);
  let have0 = -1;
  let have1 = -1;
  for (let y = 0; y < height; y++) {
    const sy0 = ty.index[y];
    const sy1 = Math.min(sy0 + 1, img.height - 1);
    if (have0 !== sy0) {
      if (have1 === sy0) {
        const t = r0; r0 = r1; r1 = t; have0 = sy0; have1 = -1;
      } else {
        hpass(sy0, r0); have0 = sy0;
      }
    }
    if (have1 !== sy1) { hpass(sy1, r1); have1 = sy1; }
    const b0 = ty.w0[y];
    const b1 = ty.w1[y];
    const o = y * rowLen;
    for (let i = 0; i < rowLen; i++) {
      // OpenCV's SIMD vertical pass: ((b0*(S0>>4))>>16) + ((b1*(S1>>4))>>16), then (v+2)>>2 saturated
      const p = ((((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16)) + 2) >> 2;
      out[o + i] = p < 0 ? 0 : p > 255 ? 255 : p;
    }
  }
  return { width, height, data: out };
}

/**
 * Write one image into `out` (NCHW float32, batch slot `slot`) as (pixel - mean) / std, placing it in
 * the top-left corner of a canvasWidth x canvasHeight canvas whose remaining pixels are 0 before
 * normalisation (InsightFace's zero canvas). `bgr` swaps the channel order for models trained on BGR.
 */
export function writeBlob(
  img: RgbImage,
  canvasWidth: number,
  canvasHeight: number,
  mean: Triple,
  std: Triple,
  bgr: boolean,
  out: Float32Array,
  slot = 0,
): void {
  const plane = canvasWidth * canvasHeight;
  const base = slot * 3 * plane;
  for (let c = 0; c < 3; c++) {
    const srcC = bgr ? 2 - c : c;
    const m = mean[c];
    const inv = 1 / std[c];
    const pad = (0 - m) * inv;
    const dst = base + c * plane;
    for (let y = 0; y < canvasHeight; y++) {
      const row = dst + y * canvasWidth;
      if (y >= img.height) {
        out.fill(pad, row, row + canvasWidth);
        continue;
      }
      const srow = y * img.width * 3 + srcC;
      const w = Math.min(img.width, canvasWidth);
      for (let x = 0; x < w; x++) out[row + x] = (img.data[srow + x * 3] - m) * inv;
      if (w < canvasWidth) out.fill(pad, row + w, row + canvasWidth);
    }
  }
}

/** Letterbox an image into a detector canvas: geometry plus the resized pixels (not yet normalised). */
export function letterbox(img: RgbImage, canvasWidth: number, canvasHeight: number): { geometry: LetterboxGeometry; resized: RgbImage } {
  const geometry = letterboxGeometry(img.width, img.height, canvasWidth, canvasHeight);
  return { geometry, resized: resizeBilinear(img, geometry.width, geometry.height) };
}
