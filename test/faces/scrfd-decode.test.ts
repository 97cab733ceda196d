/**
 * SCRFD head decoding and face selection on synthetic output tensors: anchor layout, distance decoding
 * of boxes and keypoints, threshold and NMS, batched and unbatched layouts, 3 and 5 strides, and
 * InsightFace's max-faces ranking.
 */
import { describe, expect, it } from 'vitest';
import { anchorCentres, decodeScrfd, type HeadTensor, type StrideOutputs } from '../../pipeline/faces/scrfd-decode.js';
import { filterMinSize, iou, nearestToCentre, nms, pickFaces } from '../../pipeline/faces/select.js';
import type { DetectedFace } from '../../pipeline/faces/types.js';

interface Hit { stride: number; index: number; score: number; dist: [number, number, number, number]; kps?: number[] }

/** Zero heads for a size x size input, with the given anchors set. */
function heads(size: number, strides: number[], anchors: number, withKps: boolean, hits: Hit[], batch = 0): StrideOutputs[] {
  return strides.map((stride) => {
    const n = (size / stride) ** 2 * anchors;
    const b = Math.max(batch, 1);
    const mk = (c: number): HeadTensor => ({ data: new Float32Array(b * n * c), dims: batch ? [batch, n, c] : [n, c] });
    const scores = mk(1), boxes = mk(4), kps = withKps ? mk(10) : null;
    for (const h of hits.filter((x) => x.stride === stride)) {
      scores.data[h.index] = h.score;
      boxes.data.set(h.dist, h.index * 4);
      if (kps) kps.data.set(h.kps ?? new Array(10).fill(0), h.index * 10);
    }
    return { stride, scores, boxes, kps };
  });
}
const opts = (size: number, anchors: number, scale = 1, threshold = 0.5) => ({ inputWidth: size, inputHeight: size, numAnchors: anchors, threshold, nmsThreshold: 0.4, scale });

describe('anchorCentres', () => {
  it('repeats each cell centre per anchor, row-major, in stride units', () => {
    expect(Array.from(anchorCentres(2, 3, 8, 2))).toEqual([0, 0, 0, 0, 8, 0, 8, 0, 16, 0, 16, 0, 0, 8, 0, 8, 8, 8, 8, 8, 16, 8, 16, 8]);
  });
});

describe('decodeScrfd', () => {
  it('decodes a box and keypoints from distances (times stride) and divides by the letterbox scale', () => {
    // stride 16, 2 anchors, 64x64 input: cell (x=2, y=1) second anchor = index ((1*4)+2)*2+1 = 13, centre (32, 16)
    const h: Hit = { stride: 16, index: 13, score: 0.9, dist: [1, 0.5, 2, 1.5], kps: [0, 0, 1, 0, 0.5, 0.5, -1, 1, 1, 1] };
    const faces = decodeScrfd(heads(64, [8, 16, 32], 2, true, [h]), opts(64, 2, 0.5));
    expect(faces).toHaveLength(1);
    const f = faces[0];
    expect(f.score).toBeCloseTo(0.9, 6);
    // box (32-16, 16-8, 32+32, 16+24) / 0.5
    expect(f.box).toEqual([32, 16, 128, 80]);
    expect(f.kps).toEqual([[64, 32], [96, 32], [80, 48], [32, 64], [96, 64]]);
  });

  it('keeps scores equal to the threshold and drops lower ones', () => {
    const hits: Hit[] = [
      { stride: 8, index: 0, score: 0.5, dist: [1, 1, 1, 1] },
      { stride: 32, index: 1, score: 0.4999, dist: [1, 1, 1, 1] },
    ];
    expect(decodeScrfd(heads(64, [8, 16, 32], 2, false, hits), opts(64, 2))).toHaveLength(1);
  });

  it('suppresses an overlapping lower-scored box across strides (NMS 0.4) and keeps a distant one', () => {
    const hits: Hit[] = [
      { stride: 8, index: 2 * 8 * 2 + 2 * 2, score: 0.8, dist: [2, 2, 2, 2] }, // centre (16,16), box 0..32
      { stride: 16, index: 2 * 1 + 0, score: 0.7, dist: [1, 1, 1, 1] }, // cell (1,0) centre (16,0): box 0,-16,32,16 -> IoU ~0.33: kept
      { stride: 16, index: 4 * 1 * 2 + 1 * 2, score: 0.6, dist: [1, 1, 1, 1] }, // centre (16,16): box 0..32 duplicate: suppressed
    ];
    const faces = decodeScrfd(heads(64, [8, 16, 32], 2, false, hits), opts(64, 2));
    expect(faces.map((f) => f.score.toFixed(1))).toEqual(['0.8', '0.7']);
    expect(faces[0].kps).toBeNull();
  });

  it('reads the right image from batched [B,N,C] outputs', () => {
    const levels = heads(64, [8, 16, 32], 2, false, [], 3);
    // image 2, stride 32, anchor 0: centre (0,0)
    const n32 = (64 / 32) ** 2 * 2;
    levels[2].scores.data[2 * n32] = 0.95;
    levels[2].boxes.data.set([1, 1, 1, 1], 2 * n32 * 4);
    expect(decodeScrfd(levels, { ...opts(64, 2), batchIndex: 0 })).toHaveLength(0);
    expect(decodeScrfd(levels, { ...opts(64, 2), batchIndex: 2 })[0].box).toEqual([-32, -32, 32, 32]);
  });

  it('handles 5 strides with 1 anchor (10/15-output SCRFD)', () => {
    const faces = decodeScrfd(heads(128, [8, 16, 32, 64, 128], 1, true, [{ stride: 128, index: 0, score: 0.99, dist: [0, 0, 0.5, 0.5] }]), opts(128, 1));
    expect(faces).toHaveLength(1);
    expect(faces[0].box).toEqual([0, 0, 64, 64]);
  });

  it('sizes each level with ceil(input / stride): 96x96 with strides 64 and 128 has 2x2 and 1x1 cells', () => {
    // SCRFD's stride-2 convs (pad 1) give ceil(n/2) rows; floor would expect 1x1 and 0x0 and refuse the heads
    const mk = (n: number, c: number): HeadTensor => ({ data: new Float32Array(n * c), dims: [n, c] });
    const level = (stride: number, cells: number): StrideOutputs => ({ stride, scores: mk(cells, 1), boxes: mk(cells, 4), kps: null });
    const levels = [level(8, 144), level(16, 36), level(32, 9), level(64, 4), level(128, 1)];
    // stride 64, cell (x=1, y=1) = index 3, centre (64, 64); distances 0.5 * 64 = 32
    levels[3].scores.data[3] = 0.9;
    levels[3].boxes.data.set([0.5, 0.5, 0.5, 0.5], 3 * 4);
    const faces = decodeScrfd(levels, opts(96, 1));
    expect(faces.map((f) => f.box)).toEqual([[32, 32, 96, 96]]);
  });

  it('reads keypoints of batched outputs from the selected image', () => {
    const levels = heads(64, [8, 16, 32], 2, true, [], 2);
    const n32 = (64 / 32) ** 2 * 2;
    const [s, b, k] = [levels[2].scores.data, levels[2].boxes.data, levels[2].kps!.data];
    // image 0 holds other keypoints at the same row; image 1, stride 32, row 3 = cell (x=1, y=0), centre (32, 0)
    k.fill(5, 3 * 10, 4 * 10);
    s[n32 + 3] = 0.9;
    b.set([1, 1, 1, 1], (n32 + 3) * 4);
    k.set([0, 0, 1, 0, 0, 1, -1, 0, 0, -1], (n32 + 3) * 10);
    const [f] = decodeScrfd(levels, { ...opts(64, 2), batchIndex: 1 });
    expect(f.box).toEqual([0, -32, 64, 32]);
    expect(f.kps).toEqual([[32, 0], [64, 0], [32, 32], [0, 0], [32, -32]]);
  });

  it('runs NMS with nmsThreshold, not the score threshold', () => {
    // stride 8: A centre (16,16) -> box 0,0,32,32; B centre (24,16), l 1.5 t 2 r 2.5 b 2 -> box 12,0,44,32
    // IoU with +1 areas: 21*33 / (2*33*33 - 21*33) = 693/1485 = 0.467: above 0.4, below 0.5
    const hits: Hit[] = [
      { stride: 8, index: (2 * 8 + 2) * 2, score: 0.9, dist: [2, 2, 2, 2] },
      { stride: 8, index: (2 * 8 + 3) * 2, score: 0.8, dist: [1.5, 2, 2.5, 2] },
    ];
    const lv = heads(64, [8, 16, 32], 2, false, hits);
    expect(decodeScrfd(lv, { ...opts(64, 2), nmsThreshold: 0.4 }).map((f) => f.box)).toEqual([[0, 0, 32, 32]]);
    expect(decodeScrfd(lv, { ...opts(64, 2), nmsThreshold: 0.5 }).map((f) => f.box)).toEqual([[0, 0, 32, 32], [12, 0, 44, 32]]);
  });

  it('reports a head whose row count does not fit the input size as FACEOPT_ERR_GRAPH', () => {
    expect(() => decodeScrfd(heads(64, [8, 16, 32], 2, false, []), opts(96, 2))).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_GRAPH' }));
  });
});

const face = (x1: number, y1: number, x2: number, y2: number, score = 0.9): DetectedFace => ({ box: [x1, y1, x2, y2], score, kps: null });

describe('selection', () => {
  it('nms counts areas with +1 pixel as InsightFace does', () => {
    // 10x10 boxes offset by 5: IoU with +1 = (6*11)/(121+121-66) = 0.375 -> kept at 0.4
    const boxes = Float64Array.from([0, 0, 10, 10, 5, 0, 15, 10]);
    expect(nms(boxes, Float64Array.from([0.9, 0.8]), 0.4)).toEqual([0, 1]);
    expect(nms(boxes, Float64Array.from([0.9, 0.8]), 0.37)).toEqual([0]);
  });

  it('nms suppresses only above the threshold (InsightFace keeps ovr <= thresh)', () => {
    // 10x10 boxes (+1 areas 100) overlapping 4 columns: IoU = 40 / 160 = 0.25 exactly
    const boxes = Float64Array.from([0, 0, 9, 9, 6, 0, 15, 9]);
    expect(nms(boxes, Float64Array.from([0.9, 0.8]), 0.25)).toEqual([0, 1]);
    expect(nms(boxes, Float64Array.from([0.9, 0.8]), 0.24)).toEqual([0]);
  });

  it('pickFaces weighs the squared centre offset twice', () => {
    // 200x200, centre (100,100): A area 3600, offset^2 2500 -> 3600 - 5000; B area 400, offset 0 -> 400
    // (with the offset counted once A would win: 1100 > 400)
    const a = face(120, 70, 180, 130), b = face(90, 90, 110, 110);
    expect(pickFaces([a, b], 1, 200, 200)).toEqual([b]);
  });

  it('pickFaces measures x from width/2 and y from height/2 (non-square image)', () => {
    // 300x100: centre (150, 50); A at (50,50) is 100 px off, B at (150,50) is centred
    const a = face(40, 40, 60, 60), b = face(140, 40, 160, 60);
    expect(pickFaces([a, b], 1, 300, 100)).toEqual([b]);
  });

  it('pickFaces uses the integer image centre (width // 2, height // 2)', () => {
    // 201x201: centre (100,100). A centred -> 400; B centre (100.75,100) -> 400 - 2*0.5625 = 398.875
    // (a centre of (100.5,100.5) would rank B first: 399.375 vs 399)
    const a = face(90, 90, 110, 110), b = face(90.75, 90, 110.75, 110);
    expect(pickFaces([b, a], 1, 201, 201)).toEqual([a]);
  });

  it('pickFaces keeps the original order when there are exactly maxFaces faces', () => {
    const faces = [face(0, 0, 40, 40), face(80, 80, 110, 110), face(0, 150, 60, 200)];
    expect(pickFaces(faces, 3, 200, 200)).toBe(faces);
  });

  it('filterMinSize keeps faces exactly minSize wide or tall', () => {
    const faces = [face(0, 0, 11, 20), face(0, 0, 20, 11), face(0, 0, 10.5, 20), face(0, 0, 20, 10.5)];
    expect(filterMinSize(faces, 11)).toEqual([faces[0], faces[1]]);
  });

  it('nearestToCentre keeps the first (highest-scored) face on a tie', () => {
    // 100x100: centres (40,50) and (60,50) are both 10 px from (50,50)
    const faces = [face(30, 40, 50, 60, 0.9), face(50, 40, 70, 60, 0.8)];
    expect(nearestToCentre(faces, 100, 100)).toBe(faces[0]);
  });

  it('iou uses continuous areas (no +1)', () => {
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150, 12);
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0); // touching edges
    expect(iou([0, 0, 10, 10], [20, 20, 30, 30])).toBe(0);
    expect(iou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });

  it('pickFaces prefers big faces near the centre (area - 2 * offset^2)', () => {
    const faces = [face(0, 0, 40, 40), face(80, 80, 110, 110), face(0, 150, 60, 200)];
    // 200x200 image, centre (100,100): values 1600-2*(80^2+80^2), 900-2*(5^2+5^2), 3000-2*(70^2+75^2)
    expect(pickFaces(faces, 1, 200, 200)).toEqual([faces[1]]);
    expect(pickFaces(faces, 1, 200, 200, 'max')).toEqual([faces[2]]);
    expect(pickFaces(faces, 0, 200, 200)).toBe(faces);
  });

  it('filterMinSize and nearestToCentre', () => {
    const faces = [face(0, 0, 10, 30), face(40, 40, 70, 70), face(45, 45, 60, 60)];
    expect(filterMinSize(faces, 11)).toEqual([faces[1], faces[2]]);
    expect(nearestToCentre(faces, 104, 104)).toBe(faces[2]);
    expect(nearestToCentre([], 10, 10)).toBeNull();
  });
});
