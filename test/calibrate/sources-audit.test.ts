/**
 * Calibration photo folders and lists (mutation audit): the folder's images in one sorted order whatever
 * the extension's case; a file or an empty folder is NO_CALIBRATION_DATA; list comments, blank lines and
 * padding are skipped, `..` and `A/..` refused; the split without a list follows the identity hash, stops
 * at exactly the size asked, and holds apart every identity it did not touch; the warnings' thresholds.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fewCalibrationPhotos, FEW_CALIBRATION_PHOTOS, identityOf, listFolderImages, noFaceWarning, readImageList, recognizerBatches, splitCalibration } from '../../pipeline/calibrate/sources.js';
import type { InputBatch } from '../../pipeline/calibrate/run.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { alignCentralFaces } from '../../pipeline/evaluate/recognizer-eval.js';
import { readGraphSummary } from '../../pipeline/faces/graph-summary.js';
import { resizeBilinear, writeBlob } from '../../pipeline/faces/preprocess.js';
import { detectProfile, type RecognizerProfile } from '../../pipeline/faces/profile.js';
import { sha256 } from '../../pipeline/fsutil.js';
import { describeShared, shared } from '../helpers/shared.js';

const root = mkdtempSync(path.join(tmpdir(), 'faceopt-sources-audit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Empty files at `rel` paths under `root/name` (nothing here is decoded). */
function folder(name: string, rel: string[]): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const r of rel) {
    mkdirSync(path.dirname(path.join(dir, r)), { recursive: true });
    writeFileSync(path.join(dir, r), '');
  }
  return dir;
}

/** Five identities P0..P4 of two photos each. */
const people = folder('people', [0, 1, 2, 3, 4].flatMap((i) => [`P${i}/P${i}_1.jpg`, `P${i}/P${i}_2.jpg`]));
/** P0..P4 in the order the split takes them (by the hash of the name). */
const hashOrder = ['P0', 'P1', 'P2', 'P3', 'P4'].sort((a, b) => (sha256(a) < sha256(b) ? -1 : 1));

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isFaceoptError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a refusal');
}

function list(name: string, text: string): string {
  const f = path.join(root, name);
  writeFileSync(f, text);
  return f;
}

describe('listFolderImages', () => {
  it('every image below the folder, sorted by name at each level, the extension matched in any case', () => {
    const dir = folder('mixed', ['b.JPG', 'a.png', 'Z.jpeg', 'sub/c.webp', 'sub/A.PNG', 'notes.txt', 'sub/deeper/d.jpg']);
    expect(listFolderImages(dir)).toEqual(['Z.jpeg', 'a.png', 'b.JPG', 'sub/A.PNG', 'sub/c.webp', 'sub/deeper/d.jpg']);
  });

  it('a file, or a folder without images, is NO_CALIBRATION_DATA', () => {
    const file = path.join(root, 'not-a-folder.jpg');
    writeFileSync(file, '');
    expect(code(() => listFolderImages(file))).toBe('FACEOPT_ERR_NO_CALIBRATION_DATA');
    const empty = folder('empty', ['readme.txt']);
    expect(listFolderImages(empty)).toEqual([]);
    expect(code(() => splitCalibration(empty))).toBe('FACEOPT_ERR_NO_CALIBRATION_DATA');
  });
});

describe('readImageList', () => {
  it('skips comments and blank lines and trims each line', () => {
    const f = list('padded.txt', '# made by hand\n\n  P0/P0_1.jpg  \n\tP1/P1_2.jpg\r\n# P2/P2_1.jpg\n');
    expect(readImageList(f, people)).toEqual(['P0/P0_1.jpg', 'P1/P1_2.jpg']);
  });

  it('refuses `..` and `A/..` (the folder above, and the folder itself) as entries', () => {
    for (const bad of ['..', 'P0/..', '.']) {
      expect(code(() => readImageList(list('dots.txt', `P0/P0_1.jpg\n${bad}\n`), people)), bad).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    }
  });

  it('an absolute path takes a folder whose name starts with two dots as inside --faces, and refuses the folder above', () => {
    const dotted = folder('dotted', ['..P9/a.jpg']);
    expect(readImageList(list('dotted.txt', `${path.join(dotted, '..P9', 'a.jpg')}\n`), dotted)).toEqual(['..P9/a.jpg']);
    expect(code(() => readImageList(list('above.txt', `${path.join(root, 'x.jpg')}\n`), dotted))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });

  it('a list of comments alone is NO_CALIBRATION_DATA', () => {
    expect(code(() => readImageList(list('comments.txt', '# nothing yet\n\n'), people))).toBe('FACEOPT_ERR_NO_CALIBRATION_DATA');
  });
});

describe('splitCalibration', () => {
  it('with a list and a size: the first photos of the list, and every listed identity kept out of the held-apart photos', () => {
    const f = list('two.txt', 'P0/P0_1.jpg\nP1/P1_1.jpg\n');
    const s = splitCalibration(people, { listFile: f, size: 1 });
    expect(s.calibration).toEqual(['P0/P0_1.jpg']);
    expect([...new Set(s.heldApart.map(identityOf))].sort()).toEqual(['P2', 'P3', 'P4']);
    expect(s.description).toMatch(/^1 images from two\.txt; 6 images of 3 other identities held apart$/);
  });

  it('without a list: identities in hash order, cut at exactly the size, the untouched ones held apart', () => {
    const s = splitCalibration(people, { size: 3 });
    expect(s.calibration).toEqual([`${hashOrder[0]}/${hashOrder[0]}_1.jpg`, `${hashOrder[0]}/${hashOrder[0]}_2.jpg`, `${hashOrder[1]}/${hashOrder[1]}_1.jpg`]);
    // the identity cut short is in neither set; the other three are held apart whole
    expect(s.heldApart).toEqual(hashOrder.slice(2).flatMap((id) => [`${id}/${id}_1.jpg`, `${id}/${id}_2.jpg`]));
    // a size ending on an identity's last photo: the next identity is held apart, not dropped
    const even = splitCalibration(people, { size: 4 });
    expect(even.calibration.map(identityOf)).toEqual([hashOrder[0], hashOrder[0], hashOrder[1], hashOrder[1]]);
    expect(even.heldApart).toHaveLength(6);
    expect(even.description).toBe(`4 images chosen by identity hash from ${people}; 6 images of other identities held apart`);
  });

  it('by default calibrates on half the folder, and says nothing of a size the folder has exactly', () => {
    expect(splitCalibration(people).calibration).toHaveLength(5);
    expect(splitCalibration(people, { size: 10 }).description).not.toContain('asked');
    expect(splitCalibration(people, { size: 11 }).description).toContain('(--calibration-size 11 asked; the folder has 10)');
  });
});

describe('calibration warnings', () => {
  it('fewCalibrationPhotos warns below FEW_CALIBRATION_PHOTOS only', () => {
    expect(FEW_CALIBRATION_PHOTOS).toBe(20);
    expect(fewCalibrationPhotos(19)).toMatch(/^calibration on 19 photo\(s\)/);
    expect(fewCalibrationPhotos(20)).toBeNull();
  });

  it('noFaceWarning names three photos without "and 0 more"', () => {
    expect(noFaceWarning(['a.jpg', 'b.jpg', 'c.jpg'], 7)).toBe('3 of 7 calibration photos had no detectable face and were left out: a.jpg, b.jpg, c.jpg');
  });
});

describeShared('recognizer calibration crops', () => {
  it('are the faces evaluation aligns, resized to the recognizer\'s own input size when it is not 112', async () => {
    const faces = path.join(root, 'one-face');
    mkdirSync(faces);
    copyFileSync(shared('faces', 'lfw', 'AJ_Lamas', 'AJ_Lamas_0001.jpg'), path.join(faces, 'face.jpg'));
    const det = shared('models', 'scrfd_500m_bnkps.onnx');
    const rec = detectProfile(await readGraphSummary(shared('models', 'mobileface_paddle_128d.onnx'))) as RecognizerProfile;
    const small = { ...rec, inputSize: [56, 56] } as RecognizerProfile;
    const out: InputBatch[] = [];
    for await (const b of recognizerBatches({ facesDir: faces, images: ['face.jpg'], detector: det, profile: small })) out.push(b);
    expect(out.map((b) => b.dims)).toEqual([[1, 3, 56, 56]]);
    const aligned = (await alignCentralFaces(det, faces, ['face.jpg'])).crops.get('face.jpg')!;
    const want = new Float32Array(3 * 56 * 56);
    writeBlob(resizeBilinear(aligned, 56, 56), 56, 56, small.mean, small.std, small.channelOrder === 'BGR', want, 0);
    expect(out[0]!.data).toEqual(want);
  });
});
