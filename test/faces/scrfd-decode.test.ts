/**
 * SCRFD head decoding and face selection on synthetic output tensors: anchor layout, distance decoding
 * of boxes and keypoints, threshold and NMS, batched and unbatched layouts, 3 and 5 strides, and
 * InsightFace's max-faces ranking.
 */
import { describe, expect, it } from 'vitest';
import { anchorCentres, decodeScrfd, type HeadTensor, type StrideOutputs } from '../../pipeline/faces/scrfd-decode.js';
import { filterMinSize, nearestToCentre, nms, pickFaces } from '../../pipeline/faces/select.js';
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
