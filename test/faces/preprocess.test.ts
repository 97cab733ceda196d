/**
 * Detector input preparation: InsightFace's letterbox geometry (top-left placement, truncated size,
 * scale from the height) and the NCHW blob (mean/std per channel, zero canvas normalised, BGR swap).
 */
import { describe, expect, it } from 'vitest';
import { letterbox, letterboxGeometry, resizeBilinear, writeBlob } from '../../pipeline/faces/preprocess.js';

describe('letterboxGeometry', () => {
  it.each([
    // landscape t1.jpg: width fills, height = int(640 * 886/1280) = 443
    [1280, 886, 640, 640, 640, 443, 443 / 886],
    // portrait VOC photo: height fills, width = int(640 / (480/360)) = 480
    [360, 480, 640, 640, 480, 640, 640 / 480],
    // square LFW photo upscaled
    [250, 250, 640, 640, 640, 640, 640 / 250],
    // non-square canvas
    [500, 375, 320, 480, 320, 240, 240 / 375],
    // height truncated (640 * 887/1280 = 443.5 -> 443) and the scale taken from it, not from the width
    [1280, 887, 640, 640, 640, 443, 443 / 887],
    // portrait: width truncated (640 / (1280/887) = 443.5 -> 443), scale from the filled height
    [887, 1280, 640, 640, 443, 640, 640 / 1280],
    // the canvas' own aspect ratio fills it exactly (else-branch; the height branch gives 223 here)
    [448, 576, 224, 288, 224, 288, 0.5],
  ])('%ix%i into %ix%i -> %ix%i, scale %f', (w, h, cw, ch, ew, eh, scale) => {
    const g = letterboxGeometry(w, h, cw, ch);
    expect([g.width, g.height]).toEqual([ew, eh]);
    expect(g.scale).toBeCloseTo(scale, 12);
  });
});

describe('writeBlob', () => {
  const img = { width: 2, height: 1, data: Uint8Array.from([255, 0, 10, 127, 128, 129]) };

  it('normalises per channel into NCHW with the rest of the canvas as normalised zeros', () => {
    const out = new Float32Array(2 * 3 * 2 * 2).fill(NaN);
    writeBlob(img, 2, 2, [127.5, 127.5, 127.5], [128, 128, 128], false, out, 1);
    expect(Number.isNaN(out[0])).toBe(true); // slot 0 untouched
    const s = out.subarray(12);
    const pad = -127.5 / 128;
    // R plane: 255, 127, then padding row
    expect(Array.from(s.subarray(0, 4))).toEqual([127.5 / 128, -0.5 / 128, pad, pad].map(Math.fround));
    // B plane: 10, 129
    expect(Array.from(s.subarray(8, 12))).toEqual([(10 - 127.5) / 128, 1.5 / 128, pad, pad].map(Math.fround));
  });

  it('swaps to BGR when the profile says so', () => {
    const out = new Float32Array(3 * 2);
    writeBlob(img, 2, 1, [0, 0, 0], [1, 1, 1], true, out);
    expect(Array.from(out)).toEqual([10, 129, 0, 128, 255, 127]);
  });

  it('normalises each channel with its own mean and std, given in the model\'s channel order', () => {
    const px = { width: 1, height: 1, data: Uint8Array.from([10, 20, 30]) };
    const rgb = new Float32Array(3);
    writeBlob(px, 1, 1, [1, 2, 3], [1, 2, 4], false, rgb);
    expect(Array.from(rgb)).toEqual([9, 9, 6.75]);
    // BGR: plane 0 is blue (30) with mean[0]/std[0], plane 2 red (10) with mean[2]/std[2]
    const bgr = new Float32Array(3);
    writeBlob(px, 1, 1, [1, 2, 3], [1, 2, 4], true, bgr);
    expect(Array.from(bgr)).toEqual([29, 9, 1.75]);
  });

  it('letterbox resizes into the top-left corner', () => {
    const big = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).fill(200) };
    const { geometry, resized } = letterbox(big, 8, 8);
    expect([geometry.width, geometry.height, geometry.scale]).toEqual([8, 4, 2]);
    expect(resized.data.every((v) => v === 200)).toBe(true);
  });
});

describe('resizeBilinear', () => {
  const gray = (w: number, h: number, v: number[]) => ({ width: w, height: h, data: Uint8Array.from(v.flatMap((x) => [x, x, x])) });
  const red = (img: { data: Uint8Array }) => Array.from(img.data.filter((_, i) => i % 3 === 0));

  it('an exact halving is the mean of 2x2 blocks, rounded half up ((sum + 2) >> 2)', () => {
    const out = resizeBilinear(gray(4, 2, [0, 1, 10, 20, 1, 1, 30, 41]), 2, 1);
    expect(red(out)).toEqual([1, 25]); // 3/4 -> 1, 101/4 -> 25
  });

  it('halving only the width stays bilinear: pairs averaged along x, rows kept', () => {
    // x: src 2d + 0.5 -> weights 1024/1024; y: scale 1 -> weights 2048/0; ((2(a+b)) + 2) >> 2
    const out = resizeBilinear(gray(4, 2, [10, 20, 30, 40, 100, 100, 200, 200]), 2, 2);
    expect(red(out)).toEqual([15, 35, 100, 200]);
  });
});
