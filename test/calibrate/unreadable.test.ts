/**
 * Photos that cannot be read during calibration and evaluation: left out and reported through
 * `onUnreadable` (one bad file in a folder must not end an optimize run), thrown without it; other
 * failures (a missing file) always throw; a detector calibration with no readable photo at all is
 * FACEOPT_ERR_NO_CALIBRATION_DATA.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectorBatches, recognizerBatches } from '../../pipeline/calibrate/sources.js';
import type { InputBatch } from '../../pipeline/calibrate/run.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { alignCentralFaces } from '../../pipeline/evaluate/recognizer-eval.js';
import { evaluateDetector } from '../../pipeline/evaluate/detector-eval.js';
import { decodeImage, skipUnreadable, unreadableWarning } from '../../pipeline/faces/decode.js';
import { detectProfile } from '../../pipeline/faces/profile.js';
import type { DetectorProfile, RecognizerProfile } from '../../pipeline/faces/profile.js';
import { readGraphSummary } from '../../pipeline/faces/graph-summary.js';
import { describeShared, shared } from '../helpers/shared.js';

const profile = { role: 'detector', inputName: 'x', inputSize: null, batch: null, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'RGB', layout: 'NCHW', strides: [8, 16, 32], numAnchors: 2, outputs: { scores: [], boxes: [], kps: null }, batchedOutputs: null } as unknown as DetectorProfile;
let dir = '';

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'faceopt-unreadable-'));
  for (const [name, r] of [['a.png', 40], ['c.png', 200]] as const) {
    await sharp({ create: { width: 40, height: 40, channels: 3, background: { r, g: 0, b: 0 } } }).png().toFile(path.join(dir, name));
  }
  const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 9, g: 9, b: 9 } } }).jpeg().toBuffer();
  writeFileSync(path.join(dir, 'b-truncated.jpg'), jpeg.subarray(0, 200));
  writeFileSync(path.join(dir, 'd-text.jpg'), 'not an image\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function frames(images: string[], grids: number[], told?: Map<string, string>): Promise<InputBatch[]> {
  const out: InputBatch[] = [];
  const onUnreadable = told ? (image: string, reason: string) => told.set(image, reason) : undefined;
  for await (const b of detectorBatches({ facesDir: dir, images, profile, detSize: [64, 64], grids, onUnreadable })) out.push(b);
  return out;
}
const red = (f: InputBatch, x: number, y: number) => f.data[y * 64 + x]!;

describe('unreadable calibration photos', () => {
  it('detector frames: a one-photo frame of an unreadable photo is left out, and each such photo is told once with its reason', async () => {
    const told = new Map<string, string>();
    const f = await frames(['a.png', 'b-truncated.jpg', 'c.png', 'd-text.jpg'], [1], told);
    expect(f.map((x) => red(x, 32, 32))).toEqual([40, 200]);
    expect([...told.keys()]).toEqual(['b-truncated.jpg', 'd-text.jpg']);
    expect(told.get('d-text.jpg')).toMatch(/unsupported image format/);
  });

  it('detector mosaics: the cell of an unreadable photo stays black, the others are pasted', async () => {
    const told = new Map<string, string>();
    const [f] = await frames(['a.png', 'b-truncated.jpg', 'c.png', 'a.png'], [2], told);
    expect([red(f!, 10, 10), red(f!, 50, 10), red(f!, 10, 50), red(f!, 50, 50)]).toEqual([40, 0, 200, 40]);
    expect([...told.keys()]).toEqual(['b-truncated.jpg']);
  });

  it('without onUnreadable the decoder error ends the calibration as before; with no readable photo at all it is NO_CALIBRATION_DATA', async () => {
    await expect(frames(['a.png', 'b-truncated.jpg'], [1])).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_BAD_IMAGE'));
    await expect(frames(['b-truncated.jpg', 'd-text.jpg'], [1], new Map())).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_NO_CALIBRATION_DATA') && /none of the 2 images could be read/.test((e as Error).message));
  });

  it('a left-out one-photo frame still counts as done in the progress', async () => {
    const progress: [number, number][] = [];
    for await (const _ of detectorBatches({ facesDir: dir, images: ['a.png', 'b-truncated.jpg', 'c.png'], profile, detSize: [64, 64], grids: [1], onUnreadable: () => undefined, onProgress: (d, t) => progress.push([d, t]) })) { /* frames */ }
    expect(progress).toEqual([[1, 3], [2, 3], [3, 3]]);
  });

  it('a missing file is not "unreadable": it still throws', async () => {
    const told = new Map<string, string>();
    await expect(skipUnreadable(() => decodeImage(path.join(dir, 'gone.jpg')), 'gone.jpg', (i, r) => told.set(i, r))).rejects.toSatisfy((e: unknown) => isFaceoptError(e) && !isFaceoptError(e, 'FACEOPT_ERR_BAD_IMAGE'));
    expect(told.size).toBe(0);
    expect(await skipUnreadable(() => decodeImage(path.join(dir, 'd-text.jpg')), 'd-text.jpg', (i, r) => told.set(i, r))).toBeNull();
  });

  it('says how many photos were left out, naming the first three with their reasons', () => {
    const one = new Map([['x.jpg', 'truncated']]);
    expect(unreadableWarning(one, 'calibration')).toBe('1 calibration photo could not be read and was left out: x.jpg (truncated)');
    const five = new Map(['a', 'b', 'c', 'd', 'e'].map((n) => [`${n}.jpg`, 'bad'] as [string, string]));
    expect(unreadableWarning(five, 'evaluation', 40)).toBe('5 of 40 evaluation photos could not be read and were left out: a.jpg (bad), b.jpg (bad), c.jpg (bad) and 2 more');
  });
});

describeShared('unreadable photos among real faces', () => {
  const det = shared('models', 'scrfd_500m_bnkps.onnx');
  const lfw = shared('faces', 'lfw');
  let faces = '';
  const good = ['AJ_Lamas/AJ_Lamas_0001.jpg', 'Aaron_Guiel/Aaron_Guiel_0001.jpg'];
  beforeAll(() => {
    faces = mkdtempSync(path.join(tmpdir(), 'faceopt-unreadable-faces-'));
    for (const g of good) copyFileSync(path.join(lfw, g), path.join(faces, path.basename(g)));
    copyFileSync(path.join(dir, 'b-truncated.jpg'), path.join(faces, 'broken.jpg'));
  });
  afterAll(() => rmSync(faces, { recursive: true, force: true }));
  const images = [path.basename(good[0]!), 'broken.jpg', path.basename(good[1]!)];

  it('recognizer calibration aligns the readable faces and tells the unreadable one', async () => {
    const rec = detectProfile(await readGraphSummary(shared('models', 'mobileface_paddle_128d.onnx'))) as RecognizerProfile;
    const told: string[] = [];
    const out: InputBatch[] = [];
    for await (const b of recognizerBatches({ facesDir: faces, images, detector: det, profile: rec, onUnreadable: (i) => told.push(i) })) out.push(b);
    expect(out.reduce((n, b) => n + b.dims[0]!, 0)).toBe(2);
    expect(told).toEqual(['broken.jpg']);
  });

  it('evaluation alignment gives the unreadable photo no crop and does not count it as a photo without a face', async () => {
    const told: string[] = [];
    const set = await alignCentralFaces(det, faces, images, { onUnreadable: (i) => told.push(i) });
    expect(told).toEqual(['broken.jpg']);
    expect(set.crops.get('broken.jpg')).toBeNull();
    expect(set.imagesWithoutFace).toEqual([]);
    expect([...set.crops.values()].filter(Boolean)).toHaveLength(2);
    await expect(alignCentralFaces(det, faces, images)).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_BAD_IMAGE'));
  });

  it('detector evaluation leaves an unreadable held-apart photo out; a user-named annotated photo still throws', async () => {
    const told: string[] = [];
    const paths = images.map((i) => path.join(faces, i));
    const r = await evaluateDetector({ reference: det, variant: det, images: paths, onUnreadable: (i) => told.push(i) });
    expect(told).toEqual([path.join(faces, 'broken.jpg')]);
    expect(r.vsReference.recall).toBe(1);
    await expect(evaluateDetector({ reference: det, variant: det, images: paths.slice(0, 1), annotated: [{ file: paths[1]!, boxes: [] }], onUnreadable: () => undefined }))
      .rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_BAD_IMAGE'));
  });
});
