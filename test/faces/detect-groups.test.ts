/**
 * SCRFD detection on real photos (shared data): InsightFace's t1.jpg has 6 people, the 9 PASCAL VOC
 * photos annotated in dlib's training.xml/testing.xml (43 boxes) are all found at IoU >= 0.5 with the
 * default thresholds, the dog photo gives at most one (false) face, and the fixed-640 and dynamic
 * exports of SCRFD-500M agree on the same photo.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeImage } from '../../pipeline/faces/decode.js';
import { ScrfdDetector } from '../../pipeline/faces/scrfd.js';
import { iou } from '../../pipeline/faces/select.js';
import type { RgbImage } from '../../pipeline/faces/types.js';
import { describeShared, shared } from '../helpers/shared.js';

interface Annotated {
  file: string;
  boxes: [number, number, number, number][];
}

/** dlib imglab XML: <image file='x.jpg'> <box top='' left='' width='' height=''/> ... </image>. */
function readDlibXml(file: string): Annotated[] {
  const xml = readFileSync(file, 'latin1');
  const out: Annotated[] = [];
  for (const m of xml.matchAll(/<image file='([^']+)'[^>]*>([\s\S]*?)<\/image>/g)) {
    const boxes: Annotated['boxes'] = [];
    for (const b of m[2].matchAll(/<box top='(\d+)' left='(\d+)' width='(\d+)' height='(\d+)'/g)) {
      const [top, left, w, h] = b.slice(1).map(Number);
      boxes.push([left, top, left + w, top + h]);
    }
    out.push({ file: m[1], boxes });
  }
  return out;
}

describeShared('SCRFD-500M on group photos', () => {
  let det: ScrfdDetector;
  let dyn: ScrfdDetector;
  beforeAll(async () => {
    det = await ScrfdDetector.load(shared('models', 'scrfd_500m_bnkps.onnx'), { session: { intraOpThreads: 1 } });
    dyn = await ScrfdDetector.load(shared('models', 'scrfd_500m_bnkps_dynamic.onnx'), { session: { intraOpThreads: 1 } });
  });
  afterAll(async () => {
    await det?.release();
    await dyn?.release();
  });

  it('profiles both exports alike: 3 strides, 2 anchors, keypoints, (x-127.5)/128 RGB', () => {
    for (const d of [det, dyn]) {
      expect(d.profile.strides).toEqual([8, 16, 32]);
      expect(d.profile.numAnchors).toBe(2);
      expect(d.profile.mean).toEqual([127.5, 127.5, 127.5]);
      expect(d.profile.std).toEqual([128, 128, 128]);
      expect(d.profile.channelOrder).toBe('RGB');
      expect(d.detSize).toEqual([640, 640]);
    }
    expect(det.profile.outputs.scores).toEqual(['score_8', 'score_16', 'score_32']);
    expect(det.profile.outputs.kps).toEqual(['kps_8', 'kps_16', 'kps_32']);
    expect(dyn.profile.outputs.scores).toEqual(['443', '468', '493']);
    expect(dyn.profile.outputs.boxes).toEqual(['446', '471', '496']);
    expect(det.profile.inputSize).toEqual([640, 640]);
    expect(dyn.profile.inputSize).toBeNull();
    expect(det.profile.batchedOutputs).toBe(true);
    expect(dyn.profile.batchedOutputs).toBe(false);
  });

  it('t1.jpg gives 6 faces with 5 keypoints inside each box', async () => {
    const img = await decodeImage(shared('faces', 'groups', 't1.jpg'));
    const faces = await det.detect(img);
    expect(faces).toHaveLength(6);
    for (const f of faces) {
      expect(f.score).toBeGreaterThanOrEqual(0.5);
      expect(f.kps).toHaveLength(5);
      for (const [x, y] of f.kps ?? []) {
        expect(x).toBeGreaterThan(f.box[0]);
        expect(x).toBeLessThan(f.box[2]);
        expect(y).toBeGreaterThan(f.box[1]);
        expect(y).toBeLessThan(f.box[3]);
      }
    }
  });

  it('finds all 43 annotated VOC faces at IoU >= 0.5 with default thresholds', async () => {
    const sets = [...readDlibXml(shared('faces', 'groups', 'training.xml')), ...readDlibXml(shared('faces', 'groups', 'testing.xml'))];
    expect(sets).toHaveLength(9);
    let total = 0;
    let found = 0;
    const misses: string[] = [];
    const ious: number[] = [];
    for (const s of sets) {
      const faces = await det.detect(await decodeImage(shared('faces', 'groups', s.file)));
      for (const box of s.boxes) {
        total++;
        const best = Math.max(0, ...faces.map((f) => iou(box, f.box)));
        ious.push(best);
        if (best >= 0.5) found++;
        else misses.push(`${s.file} [${box.join(',')}] best IoU ${best.toFixed(2)}`);
      }
    }
    console.log(`[faces] VOC: ${found}/${total} annotated faces at IoU >= 0.5; min IoU ${Math.min(...ious).toFixed(3)}`);
    expect(total).toBe(43);
    expect(misses).toEqual([]);
  });

  it('dogs.jpg (no people) gives at most one face', async () => {
    const faces = await det.detect(await decodeImage(shared('faces', 'groups', 'dogs.jpg')));
    expect(faces.length).toBeLessThanOrEqual(1);
  });

  it('fixed-640 and dynamic exports give the same detections on t1.jpg', async () => {
    const img: RgbImage = await decodeImage(shared('faces', 'groups', 't1.jpg'));
    const a = await det.detect(img);
    const b = await dyn.detect(img);
    expect(b).toHaveLength(a.length);
    a.forEach((f, i) => {
      expect(Math.abs(f.score - b[i].score)).toBeLessThan(1e-4);
      f.box.forEach((v, k) => expect(Math.abs(v - b[i].box[k])).toBeLessThan(0.05));
      f.kps?.forEach((p, k) => p.forEach((v, j) => expect(Math.abs(v - (b[i].kps?.[k][j] ?? NaN))).toBeLessThan(0.05)));
    });
  });

  it('the dynamic export runs at other sizes; the fixed one refuses them with a coded error', async () => {
    const small = await ScrfdDetector.load(shared('models', 'scrfd_500m_bnkps_dynamic.onnx'), { detSize: 320 });
    const img = await decodeImage(shared('faces', 'groups', 't1.jpg'));
    const faces = await small.detect(img);
    await small.release();
    expect(small.detSize).toEqual([320, 320]);
    expect(faces.length).toBeGreaterThanOrEqual(4);
    await expect(ScrfdDetector.load(shared('models', 'scrfd_500m_bnkps.onnx'), { detSize: 320 })).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT' });
    await expect(ScrfdDetector.load(shared('models', 'scrfd_500m_bnkps_dynamic.onnx'), { detSize: 300 })).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT' });
  });

  it('maxFaces keeps the largest, most central faces; minFaceSize drops small ones', async () => {
    const img = await decodeImage(shared('faces', 'groups', 't1.jpg'));
    const all = await det.detect(img);
    const two = await det.detect(img, { maxFaces: 2 });
    expect(two).toHaveLength(2);
    const area = (f: { box: readonly number[] }) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
    const minSide = Math.min(...all.map((f) => Math.min(f.box[2] - f.box[0], f.box[3] - f.box[1])));
    const big = await det.detect(img, { minFaceSize: minSide + 1 });
    expect(big.length).toBe(all.length - all.filter((f) => Math.min(f.box[2] - f.box[0], f.box[3] - f.box[1]) < minSide + 1).length);
    expect(big.length).toBeLessThan(all.length);
    expect(area(two[0])).toBeGreaterThan(0);
  });
});
