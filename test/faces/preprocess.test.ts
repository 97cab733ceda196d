/**
 * Detector input preparation: InsightFace's letterbox geometry (top-left placement, truncated size,
 * scale from the height) and the NCHW blob (mean/std per channel, zero canvas normalised, BGR swap).
 */
import { describe, expect, it } from 'vitest';
import { letterbox, letterboxGeometry, writeBlob } from '../../pipeline/faces/preprocess.js';

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

  it('letterbox resizes into the top-left corner', () => {
    const big = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).fill(200) };
    const { geometry, resized } = letterbox(big, 8, 8);
    expect([geometry.width, geometry.height, geometry.scale]).toEqual([8, 4, 2]);
    expect(resized.data.every((v) => v === 200)).toBe(true);
  });
});
