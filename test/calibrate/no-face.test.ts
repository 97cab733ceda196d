/**
 * Calibration photos in which the detector finds no face are left out of a recognizer's calibration: the
 * caller is told each one (`onNoFace`) and can warn with the count and the first names, as evaluation
 * does, instead of the report quietly saying "5 images" for 3 faces.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FacelessPhotos, noFaceWarning, recognizerBatches } from '../../pipeline/calibrate/sources.js';
import { distinctSamples, sampleCount, type InputBatch } from '../../pipeline/calibrate/run.js';
import { parseStats, serializeStats, createStats, hashImageList } from '../../pipeline/calibrate/stats.js';
import { CalibrationCollector } from '../../pipeline/calibrate/collectors.js';
import { detectProfile, type RecognizerProfile } from '../../pipeline/faces/profile.js';
import { readGraphSummary } from '../../pipeline/faces/graph-summary.js';
import { sha256 } from '../../pipeline/fsutil.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { describeShared, shared } from '../helpers/shared.js';

describe('calibration photos without a face', () => {
  it('the warning gives the count of all photos and names the first three', () => {
    expect(noFaceWarning(['g.jpg'], 5)).toBe('1 of 5 calibration photos had no detectable face and was left out: g.jpg');
    expect(noFaceWarning(['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'], 9)).toBe('4 of 9 calibration photos had no detectable face and were left out: a.jpg, b.jpg, c.jpg and 1 more');
    const f = new FacelessPhotos();
    expect(f.warning(3)).toBeNull();
    f.onNoFace('x.jpg');
    f.onNoFace('x.jpg');
    expect(f.warning(3)).toBe('1 of 3 calibration photos had no detectable face and was left out: x.jpg');
  });

  it('the stats source may record the faces used besides the images, and it is kept on load', () => {
    const c = new CalibrationCollector('minmax');
    c.update('t', Float32Array.from([0, 1, 2]));
    const s = createStats({ modelSha256: sha256('m'), method: 'minmax', settings: c.settings, source: { description: 'd', images: 5, faces: 3, listSha256: hashImageList(['a']) }, tensors: c.results() });
    expect(parseStats(serializeStats(s), 's.json').source.faces).toBe(3);
    expect(() => parseStats(serializeStats({ ...s, source: { ...s.source, faces: -1 } }), 's.json')).toThrow(/faces/);
  });
});

describeShared('recognizer calibration on photos without a face', () => {
  const det = shared('models', 'scrfd_500m_bnkps.onnx');
  let faces = '';
  beforeAll(async () => {
    faces = mkdtempSync(path.join(tmpdir(), 'faceopt-noface-'));
    copyFileSync(shared('faces', 'lfw', 'AJ_Lamas', 'AJ_Lamas_0001.jpg'), path.join(faces, 'face.jpg'));
    await sharp({ create: { width: 250, height: 250, channels: 3, background: { r: 128, g: 128, b: 128 } } }).jpeg().toFile(path.join(faces, 'grey.jpg'));
  });
  afterAll(() => rmSync(faces, { recursive: true, force: true }));

  it('tells each photo without a face', async () => {
    const rec = detectProfile(await readGraphSummary(shared('models', 'mobileface_paddle_128d.onnx'))) as RecognizerProfile;
    const told: string[] = [];
    const out: InputBatch[] = [];
    for await (const b of recognizerBatches({ facesDir: faces, images: ['grey.jpg', 'face.jpg'], detector: det, profile: rec, onNoFace: (i) => told.push(i) })) out.push(b);
    expect(out.reduce((n, b) => n + b.dims[0]!, 0)).toBe(1);
    expect(told).toEqual(['grey.jpg']);
  });

  const batchesOf = async (images: string[], o: { batch?: number; exact?: boolean; progress?: [number, number, number][] } = {}) => {
    const rec = detectProfile(await readGraphSummary(shared('models', 'mobileface_paddle_128d.onnx'))) as RecognizerProfile;
    const out: InputBatch[] = [];
    const onProgress = o.progress ? (d: number, t: number, f: number) => o.progress!.push([d, t, f]) : undefined;
    for await (const b of recognizerBatches({ facesDir: faces, images, detector: det, profile: rec, batch: o.batch, exact: o.exact, onProgress })) out.push(b);
    return out;
  };

  it('batches of exactly `batch` faces, the last one short; with `exact` filled up with its own faces', async () => {
    const progress: [number, number, number][] = [];
    const plain = await batchesOf(['face.jpg', 'grey.jpg', 'face.jpg', 'face.jpg'], { batch: 2, progress });
    expect(plain.map((b) => b.dims[0])).toEqual([2, 1]);
    expect(progress).toEqual([[1, 4, 1], [2, 4, 1], [3, 4, 2], [4, 4, 3]]);
    const exact = await batchesOf(['face.jpg', 'grey.jpg'], { batch: 2, exact: true });
    expect(exact.map((b) => b.dims)).toEqual([[2, 3, 112, 112]]);
    // one face of its own: the stats file's face count says 1, not the 2 the run processed
    expect(exact[0]!.items).toBe(1);
    expect([sampleCount(exact), distinctSamples(exact)]).toEqual([2, 1]);
    expect(plain.map((b) => b.items)).toEqual([undefined, undefined]);
    const half = exact[0]!.data.length / 2;
    expect(exact[0]!.data.subarray(half)).toEqual(exact[0]!.data.subarray(0, half));
  });

  it('no face in any photo is NO_CALIBRATION_DATA, saying how many photos were looked at', async () => {
    const err = await batchesOf(['grey.jpg']).catch((e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_NO_CALIBRATION_DATA'), String(err)).toBe(true);
    expect((err as Error).message).toContain('no face detected in 1 images');
  });
});
