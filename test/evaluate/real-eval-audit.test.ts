/**
 * The detector and alignment steps of an evaluation on the real scrfd_500m and a few real photos: a photo
 * without a face is listed and has no crop, an unreadable one is told and counted in the progress, the
 * crop size asked for is the one made; the detector comparison runs both models at the size asked for and
 * says which annotation files it read, with no ground-truth or face-free section when none was given; a
 * whole detector evaluation finds the held-apart photos under the faces folder.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readBoxAnnotations } from '../../pipeline/evaluate/data.js';
import { evaluateDetector } from '../../pipeline/evaluate/detector-eval.js';
import { evaluateModels } from '../../pipeline/evaluate/evaluate-models.js';
import { alignCentralFaces } from '../../pipeline/evaluate/recognizer-eval.js';
import { describeShared, shared } from '../helpers/shared.js';

const LFW = shared('faces', 'lfw');
const GROUPS = shared('faces', 'groups');
const SCRFD = shared('models', 'scrfd_500m_bnkps.onnx');
const SCRFD_DYNAMIC = shared('models', 'scrfd_500m_bnkps_dynamic.onnx'); // any --det-size
const FACE = 'Abdullah_Gul/Abdullah_Gul_0013.jpg';
let tmp = '';

beforeAll(async () => { tmp = await mkdtemp(path.join(tmpdir(), 'faceopt-realeval-')); });
afterAll(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

describeShared('alignCentralFaces', () => {
  it('lists a photo without a face and gives it no crop; crops have the size asked for', async () => {
    const blank = path.join(tmp, 'blank.png');
    await sharp({ create: { width: 160, height: 160, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toFile(blank);
    const broken = path.join(tmp, 'broken.jpg');
    await writeFile(broken, 'not a jpeg');
    const done: string[] = [];
    const unreadable: string[] = [];
    const images = [FACE, path.relative(LFW, broken), path.relative(LFW, blank)];
    const a = await alignCentralFaces(SCRFD, LFW, images, { cropSize: [96, 112], onProgress: (d, t) => done.push(`${d}/${t}`), onUnreadable: (image) => unreadable.push(image) });
    expect(a.imagesWithoutFace).toEqual([path.relative(LFW, blank)]); // an unreadable photo is told, not "without a face"
    expect(unreadable).toEqual([images[1]]);
    expect(a.crops.get(images[1]!)).toBeNull();
    expect(a.crops.get(images[2]!)).toBeNull();
    const crop = a.crops.get(FACE)!;
    expect([crop.width, crop.height]).toEqual([96, 112]);
    expect(done).toEqual(['1/3', '2/3', '3/3']); // the unreadable photo counts too
  }, 60_000);
});

describeShared('evaluateDetector', () => {
  it('runs both detectors at the size asked for; no ground-truth or face-free section without those photos', async () => {
    const r = await evaluateDetector({ reference: SCRFD_DYNAMIC, variant: SCRFD_DYNAMIC, images: [path.join(LFW, FACE)], detSize: 320 });
    expect(r.inputSize).toEqual([320, 320]);
    expect(r.vsGroundTruth).toBeNull();
    expect(r.faceFree).toBeNull();
    // the same model at the same size finds the very same boxes
    expect(r.vsReference).toMatchObject({ images: 1, recall: 1, precision: 1, meanIou: 1 });
  }, 60_000);

  it('names the annotation files it compared against', async () => {
    const boxes = path.join(GROUPS, 'testing.xml');
    const annotated = readBoxAnnotations(boxes).slice(0, 1);
    const r = await evaluateDetector({ reference: SCRFD, variant: SCRFD, images: [], annotated, boxFiles: [boxes] });
    expect(r.vsGroundTruth!.boxFiles).toEqual([boxes]);
    expect(r.vsGroundTruth!.variant.scoreDrift).toBeNull();
  }, 60_000);
});

describeShared('evaluateModels of a detector', () => {
  it('detects in the held-apart photos of the faces folder (paths relative to it) with both models', async () => {
    const faces = path.join(tmp, 'faces');
    for (const photo of [FACE, 'Aaron_Guiel/Aaron_Guiel_0001.jpg']) {
      await mkdir(path.join(faces, path.dirname(photo)), { recursive: true });
      await copyFile(path.join(LFW, photo), path.join(faces, photo));
    }
    const r = await evaluateModels({ model: SCRFD, reference: SCRFD, facesDir: faces, calibrationSize: 1, speedRuns: 1, reportDir: path.join(tmp, 'report'), log: () => undefined });
    expect(r.report.role).toBe('detector');
    expect(r.report.evaluationData.split).toMatchObject({ calibrationImages: 1, evaluationImages: 1 });
    expect(r.report.detector!.vsReference).toMatchObject({ images: 1, recall: 1 });
    expect(r.report.warnings.filter((w) => /could not be read|unreadable/.test(w))).toEqual([]);
  }, 60_000);
});
