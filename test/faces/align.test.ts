/**
 * Five-point alignment: the similarity estimate against transforms computed by hand, exact recovery of
 * a known similarity, InsightFace's template scaling, and the warp against known transforms.
 */
import { describe, expect, it } from 'vitest';
import { alignFace, alignFacesTo, applyAffine, ARCFACE_DST, arcfaceTemplate, estimateSimilarity, invertAffine, warpAffine, type Affine } from '../../pipeline/faces/align.js';
import type { Point, RgbImage } from '../../pipeline/faces/types.js';

const close = (a: readonly number[], b: readonly number[], tol: number) => a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(tol));

describe('estimateSimilarity', () => {
  it('matches a transform computed by hand (3 points, least squares) to 1e-12', () => {
    // src demeaned: (-1,-1/3), (1,-1/3), (0,2/3); dst demeaned: (-2,-1/3), (2,-1/3), (0,2/3)
    // a = mean(xs*xd + ys*yd) = 14/9, b = mean(xs*yd - ys*xd) = 0, var = mean|s|^2 = 8/9
    // scale = a/var = 1.75, rotation 0, t = mean(dst) - 1.75*mean(src) = (0, 1/3 - 1.75/3) = (0, -0.25)
    const m = estimateSimilarity([[-1, 0], [1, 0], [0, 1]], [[-2, 0], [2, 0], [0, 1]]);
    close(m, [1.75, 0, 0, 0, 1.75, -0.25], 1e-12);
  });

  it('composes with a rotation and shift of the target, as least squares must', () => {
    const c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
    const rot = ([x, y]: Point): Point => [c * x - s * y + 5, s * x + c * y - 3];
    const m = estimateSimilarity([[-1, 0], [1, 0], [0, 1]], ([[-2, 0], [2, 0], [0, 1]] as Point[]).map(rot));
    // expected = R30 o [1.75 I | (0,-0.25)] + (5,-3)
    close(m, [1.75 * c, -1.75 * s, -s * -0.25 + 5, 1.75 * s, 1.75 * c, c * -0.25 - 3], 1e-12);
  });

  it('recovers a known similarity from synthetic keypoints to 1e-6 (InsightFace template)', () => {
    const scale = 0.731, theta = 0.2, tx = -40.5, ty = 12.25;
    const truth: Affine = [scale * Math.cos(theta), -scale * Math.sin(theta), tx, scale * Math.sin(theta), scale * Math.cos(theta), ty];
    const inv = invertAffine(truth);
    const kps = ARCFACE_DST.map((p) => applyAffine(inv, p)); // keypoints in the photo
    const m = estimateSimilarity(kps, ARCFACE_DST);
    close(m, truth, 1e-6);
    kps.forEach((p, i) => close(applyAffine(m, p), ARCFACE_DST[i], 1e-6));
  });

  it('rejects degenerate or mismatched keypoints with coded errors', () => {
    expect(() => estimateSimilarity([[1, 1], [1, 1]], [[0, 0], [1, 1]])).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_BAD_ARGUMENT' }));
    expect(() => estimateSimilarity([[1, 1]], [[0, 0], [1, 1]])).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_BAD_ARGUMENT' }));
  });
});

describe('arcfaceTemplate', () => {
  it('is arcface_dst at 112, doubled at 224, and shifted by 8 px at 128 (estimate_norm)', () => {
    expect(arcfaceTemplate(112)).toEqual(ARCFACE_DST);
    close(arcfaceTemplate(224).flat(), ARCFACE_DST.flat().map((v) => v * 2), 1e-12);
    close(arcfaceTemplate(128).flat(), ARCFACE_DST.flatMap(([x, y]) => [x + 8, y]), 1e-12);
  });

  it('scales the 8 px shift with the crop at multiples of 128: 256 -> 2x, shifted by 16', () => {
    close(arcfaceTemplate(256).flat(), ARCFACE_DST.flatMap(([x, y]) => [2 * x + 16, 2 * y]), 1e-12);
  });

  it('non-square crops scale by height/112 and centre horizontally', () => {
    // 96x112: ratio 1, dx = (96 - 112) / 2 = -8; 112x224: ratio 2, dx = (112 - 224) / 2 = -56
    close(arcfaceTemplate(96, 112).flat(), ARCFACE_DST.flatMap(([x, y]) => [x - 8, y]), 1e-12);
    close(arcfaceTemplate(112, 224).flat(), ARCFACE_DST.flatMap(([x, y]) => [2 * x - 56, 2 * y]), 1e-12);
  });
});

/** value = 2x + y (red), 3y (green), 100 (blue) */
function gradient(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([2 * x + y, 3 * y, 100], (y * w + x) * 3);
  return { width: w, height: h, data };
}
const px = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe('warpAffine (cv2 semantics)', () => {
  const img = gradient(60, 50);

  it('an integer translation copies pixels exactly, with black outside the source', () => {
    const out = warpAffine(img, [1, 0, -10, 0, 1, -5], 30, 50);
    expect(px(out, 0, 0)).toEqual(px(img, 10, 5));
    expect(px(out, 29, 40)).toEqual(px(img, 39, 45));
    expect(px(out, 5, 46)).toEqual([0, 0, 0]); // source row 51 is outside
  });

  it('a 2x magnification interpolates a linear ramp exactly (bilinear is exact on linear data)', () => {
    const out = warpAffine(img, [2, 0, 0, 0, 2, 0], 80, 80);
    // dst (x, y) samples src (x/2, y/2): red = x + y/2, green = 1.5 y
    for (const [x, y] of [[10, 10], [11, 13], [57, 33], [78, 77]]) {
      expect(Math.abs(px(out, x, y)[0] - (x + y / 2))).toBeLessThanOrEqual(0.5);
      expect(Math.abs(px(out, x, y)[1] - 1.5 * y)).toBeLessThanOrEqual(0.5);
      expect(px(out, x, y)[2]).toBe(100);
    }
  });

  it('blends with the black border at the image edge (BORDER_CONSTANT 0)', () => {
    // dst x samples src x - 0.5: at dst 0 half of the weight falls outside the image
    const out = warpAffine(img, [1, 0, 0.5, 0, 1, 0], 10, 10);
    expect(px(out, 0, 3)[2]).toBe(50);
    expect(px(out, 5, 3)[2]).toBe(100);
  });

  it('alignFace with keypoints already on the template gives the top-left 112x112 crop', () => {
    const big = gradient(120, 118);
    const { image, matrix } = alignFace(big, ARCFACE_DST);
    close(matrix, [1, 0, 0, 0, 1, 0], 1e-9);
    expect([image.width, image.height]).toEqual([112, 112]);
    expect(px(image, 7, 9)).toEqual(px(big, 7, 9));
    expect(px(image, 111, 111)).toEqual(px(big, 111, 111));
  });

  it('rounds the fixed-point coordinates half to even, as cvRound does', () => {
    // inverse map x_src = (2041 x - 27) / 2048: at dst x = 1 both the row offset (-27/2048 * 1024 = -13.5)
    // and the column step (2041/2048 * 1024 = 1020.5) are ties. cvRound: -14 + 16 + 1020 = 1022 -> X = 31
    // (src x 0 + 31/32) -> red (64 * 31 * 1024 + 16384) >> 15 = 62. Rounding halves up would give 1024 -> src x 1 -> 64.
    const want: Affine = [2041 / 2048, 0, -27 / 2048, 0, 1, 0];
    const m = invertAffine(want);
    expect(invertAffine(m).slice(0, 3)).toEqual(want.slice(0, 3));
    const row: RgbImage = { width: 4, height: 1, data: Uint8Array.from([0, 0, 0, 64, 64, 64, 128, 128, 128, 192, 192, 192]) };
    const out = warpAffine(row, m, 2, 1);
    expect(px(out, 0, 0)).toEqual([0, 0, 0]);
    expect(px(out, 1, 0)).toEqual([62, 62, 62]);
  });

  it('invertAffine of a singular matrix is all zeros (cv2.invertAffineTransform)', () => {
    expect(invertAffine([0, 0, 5, 0, 0, 7]).map((v) => v + 0)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(invertAffine([1, 2, 3, 2, 4, 5]).map((v) => v + 0)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('alignFacesTo crops at (width, height) of the recognizer and needs keypoints', () => {
    const big = gradient(120, 118);
    const [crop] = alignFacesTo(big, [{ box: [0, 0, 100, 100], score: 0.9, kps: arcfaceTemplate(96, 112) }], [96, 112], 'det.onnx');
    expect([crop.width, crop.height]).toEqual([96, 112]);
    expect(px(crop, 20, 30)).toEqual(px(big, 20, 30)); // keypoints on the template: identity
    expect(() => alignFacesTo(big, [{ box: [0, 0, 10, 10], score: 0.9, kps: null }], [112, 112], 'det.onnx')).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_MODEL_ROLE' }));
  });

  it('alignFace needs 5 keypoints', () => {
    expect(() => alignFace(img, ARCFACE_DST.slice(0, 4))).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_BAD_ARGUMENT' }));
  });
});
