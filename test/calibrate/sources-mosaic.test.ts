import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DETECTOR_MOSAIC, detectorBatches } from '../../pipeline/calibrate/sources.js';
import type { DetectorProfile } from '../../pipeline/faces/profile.js';
import type { InputBatch } from '../../pipeline/calibrate/run.js';

// four flat photos of different red values; identity normalisation so the blob holds raw pixels
const REDS = [40, 90, 160, 220];
const profile = { role: 'detector', inputName: 'x', inputSize: null, batch: null, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'RGB', layout: 'NCHW', strides: [8, 16, 32], numAnchors: 2, outputs: { scores: [], boxes: [], kps: null }, batchedOutputs: null } as unknown as DetectorProfile;
let dir = '';
const images = REDS.map((_, i) => `p${i}.png`);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'faceopt-mosaic-'));
  for (const [i, r] of REDS.entries()) {
    await sharp({ create: { width: 40, height: 40, channels: 3, background: { r, g: 0, b: 0 } } }).png().toFile(path.join(dir, images[i]!));
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frames = async (grids?: number[], detSize: [number, number] = [64, 64], list: string[] = images) => {
  const out: InputBatch[] = [];
  for await (const b of detectorBatches({ facesDir: dir, images: list, profile, detSize, grids })) out.push(b);
  return out;
};
/** Red value at (x, y) of a [1, 3, 64, 64] frame. */
const red = (f: InputBatch, x: number, y: number) => f.data[y * 64 + x]!;

describe('detector calibration frames', () => {
  it('one frame per photo; by default frames cycle through mosaics of 1, 4 and 16 photos', async () => {
    expect(DETECTOR_MOSAIC).toEqual([1, 2, 4]);
    const f = await frames();
    expect(f).toHaveLength(4);
    // frame 0: photo 0 letterboxed over the whole (square) frame
    expect(red(f[0]!, 5, 5)).toBe(REDS[0]);
    expect(red(f[0]!, 60, 60)).toBe(REDS[0]);
    // frame 1: a 2x2 grid of photos 1, 2, 3, 0 (wrapping around the list)
    expect([red(f[1]!, 10, 10), red(f[1]!, 50, 10), red(f[1]!, 10, 50), red(f[1]!, 50, 50)]).toEqual([REDS[1], REDS[2], REDS[3], REDS[0]]);
    // frame 2: 4x4 cells of 16 px, photos 2, 3, 0, 1, 2, ...
    expect([red(f[2]!, 8, 8), red(f[2]!, 24, 8), red(f[2]!, 40, 8), red(f[2]!, 56, 8), red(f[2]!, 8, 24)]).toEqual([REDS[2], REDS[3], REDS[0], REDS[1], REDS[2]]);
  });
  it('grids [1] gives the plain letterboxed photos', async () => {
    const f = await frames([1]);
    expect(f.map((x) => red(x, 32, 32))).toEqual(REDS);
  });
  it('no grids given (an empty list) is the default mosaic, not a frame of NaN cells', async () => {
    expect(await frames([])).toEqual(await frames());
  });
  it('a frame wider than high is cut into cells of its own height (width / g by height / g)', async () => {
    // 64x32 frame, grid 2: cells of 32x16, each photo letterboxed into the cell's top-left 16x16
    const [f] = await frames([2], [64, 32]);
    expect(f!.dims).toEqual([1, 3, 32, 64]);
    expect([red(f!, 5, 5), red(f!, 37, 5), red(f!, 5, 21), red(f!, 37, 21)]).toEqual(REDS);
  });
  it('no photos: no frames, and no error', async () => {
    expect(await frames(undefined, [64, 64], [])).toEqual([]);
  });
});
