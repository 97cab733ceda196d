import { describe, expect, it } from 'vitest';
import { compareDetections, iou, keypointError, matchDetections, type Box, type Detection } from '../../pipeline/evaluate/metrics.js';

const det = (box: Box, score = 0.9, keypoints?: [number, number][]): Detection => (keypoints ? { box, score, keypoints } : { box, score });

describe('IoU', () => {
  it('matches hand-computed overlaps', () => {
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150, 15);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0); // touching edges
    expect(iou([0, 0, 10, 10], [0, 0, 10, 5])).toBe(0.5);
    expect(iou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });
});

describe('greedy IoU matching', () => {
  it('takes pairs by decreasing IoU, each box at most once; IoU exactly 0.5 counts', () => {
    // c0 overlaps r0 (IoU 0.818) and r1 (0.538); c1 overlaps only r1 (0.5)
    const ref = [det([0, 0, 10, 10]), det([3, 0, 13, 10])];
    const cand = [det([1, 0, 11, 10]), det([3, 0, 13, 5])];
    const m = matchDetections(ref, cand, 0.5);
    expect(m.matches.map((x) => [x.reference, x.candidate])).toEqual([[0, 0], [1, 1]]);
    expect(m.matches[1]!.iou).toBe(0.5);
    expect(m.unmatchedReference).toEqual([]);
    expect(matchDetections(ref, cand, 0.51).unmatchedReference).toEqual([1]);
  });
  it('matches by overlap, not score: a drifted score does not steal a face', () => {
    const ref = [det([0, 0, 10, 10], 0.9)];
    const cand = [det([4, 0, 14, 10], 0.99), det([0, 0, 10, 10], 0.5)];
    const m = matchDetections(ref, cand);
    expect(m.matches).toEqual([{ reference: 0, candidate: 1, iou: 1 }]);
    expect(m.unmatchedCandidate).toEqual([0]);
  });
});

describe('maximum matching', () => {
  // Two overlapping faces, both kept by NMS at 0.4 (their IoU is 5.5/14.5 = 0.379), and a variant whose
  // boxes are shifted: c0 overlaps r0 by 8.5/11.5 = 0.739 and r1 by 7/13 = 0.538, c1 overlaps only r0
  // (7/13 = 0.538). Greedy takes r0-c0 first and strands both r1 and c1: recall 1/2. Each face does have a
  // box of its own at IoU >= 0.5 (r0-c1, r1-c0): recall 2/2.
  const ref = [det([0, 0, 10, 10]), det([4.5, 0, 14.5, 10])];
  const cand = [det([1.5, 0, 11.5, 10]), det([-3, 0, 7, 10])];
  it('finds every face a one-to-one assignment finds, not only what greedy order leaves', () => {
    expect(iou(ref[0]!.box, ref[1]!.box)).toBeLessThan(0.4);
    expect(iou(cand[0]!.box, cand[1]!.box)).toBeLessThan(0.4);
    const m = matchDetections(ref, cand);
    expect(m.matches.map((x) => [x.reference, x.candidate])).toEqual([[0, 1], [1, 0]]);
    expect(m.matches.map((x) => x.iou)).toEqual([7 / 13, 7 / 13]);
    expect([m.unmatchedReference, m.unmatchedCandidate]).toEqual([[], []]);
    const c = compareDetections([{ reference: ref, candidate: cand }]);
    expect([c.matched, c.recall, c.precision]).toEqual([2, 1, 1]);
  });
  it('keeps the greedy pairs when nothing more can be matched', () => {
    // a third candidate far away changes nothing; dropping c1 leaves the greedy pair r0-c0 (best IoU)
    const m = matchDetections(ref, [cand[0]!, det([50, 50, 60, 60])]);
    expect(m.matches.map((x) => [x.reference, x.candidate])).toEqual([[0, 0]]);
    expect(m.unmatchedReference).toEqual([1]);
  });
});

describe('keypoint error', () => {
  it('is the mean landmark distance over sqrt(w*h) of the reference box', () => {
    const kps: [number, number][] = [[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]];
    const moved = kps.map(([x, y]) => [x + 3, y + 4] as [number, number]); // distance 5 each
    expect(keypointError(det([0, 0, 100, 100], 1, kps), det([0, 0, 100, 100], 1, moved))).toBeCloseTo(0.05, 15);
    // a 50 x 200 box has size sqrt(10000) = 100 as well
    expect(keypointError(det([0, 0, 50, 200], 1, kps), det([0, 0, 50, 200], 1, moved))).toBeCloseTo(0.05, 15);
    expect(keypointError(det([0, 0, 10, 10]), det([0, 0, 10, 10], 1, kps))).toBeNull();
  });
});

describe('compareDetections', () => {
  it('aggregates recall, precision, IoU, keypoint error and score drift over images', () => {
    const k = (dx: number): [number, number][] => [[10 + dx, 10], [20 + dx, 10], [15 + dx, 15], [12 + dx, 20], [18 + dx, 20]];
    const images = [
      {
        reference: [det([0, 0, 40, 40], 0.9, k(0)), det([100, 100, 120, 120], 0.8, k(0))],
        candidate: [det([0, 0, 40, 40], 0.85, k(0.8)), det([300, 300, 320, 320], 0.6)], // 1 match, 1 false
      },
      { reference: [det([0, 0, 20, 20], 0.7)], candidate: [] }, // missed
    ];
    const c = compareDetections(images);
    expect(c).toMatchObject({ images: 2, referenceFaces: 3, candidateFaces: 2, matched: 1, meanIou: 1, iouThreshold: 0.5 });
    expect(c.recall).toBeCloseTo(1 / 3, 15);
    expect(c.precision).toBe(0.5);
    expect(c.keypointError).toMatchObject({ faces: 1, normalization: 'sqrt(w*h) of the reference box' });
    expect(c.keypointError!.mean).toBeCloseTo(0.8 / 40, 12);
    expect(c.scoreDrift!.meanSigned).toBeCloseTo(-0.05, 12);
    expect(c.scoreDrift!.maxAbs).toBeCloseTo(0.05, 12);
    // the reference's scores of the two faces the candidate missed, lowest first
    expect(c.missedScores).toEqual([0.7, 0.8]);
  });
  it('counts matched faces whose candidate lost the reference keypoints (absent when none)', () => {
    const kps: [number, number][] = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]];
    const c = compareDetections([{ reference: [det([0, 0, 10, 10], 0.9, kps), det([20, 0, 30, 10], 0.9, kps)], candidate: [det([0, 0, 10, 10]), det([20, 0, 30, 10], 0.9, kps)] }]);
    expect(c.matched).toBe(2);
    expect(c.keypointsLost).toBe(1);
    expect(c.keypointError!.faces).toBe(1);
    // a reference without keypoints loses nothing
    expect(compareDetections([{ reference: [det([0, 0, 10, 10])], candidate: [det([0, 0, 10, 10])] }]).keypointsLost).toBeUndefined();
  });
  it('empty denominators give null, not NaN or 1', () => {
    const c = compareDetections([{ reference: [], candidate: [] }]);
    expect([c.recall, c.precision, c.meanIou, c.keypointError, c.scoreDrift]).toEqual([null, null, null, null, null]);
    expect(c.missedScores).toEqual([]);
    expect(() => compareDetections([], 0)).toThrow(/iouThreshold/);
  });
});

describe('edge cases found by mutation testing', () => {
  it('boxes apart in one direction only do not overlap', () => {
    expect(iou([0, 0, 10, 10], [0, 20, 10, 30])).toBe(0); // same columns, rows apart
    expect(iou([0, 0, 10, 10], [20, 0, 30, 10])).toBe(0); // same rows, columns apart
  });
  it('keypoint lists of different lengths are not comparable, either way round', () => {
    const five: [number, number][] = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]];
    expect(keypointError(det([0, 0, 10, 10], 1, five), det([0, 0, 10, 10], 1, five.slice(0, 3)))).toBeNull();
    expect(keypointError(det([0, 0, 10, 10], 1, five.slice(0, 3)), det([0, 0, 10, 10], 1, five))).toBeNull();
    // a candidate with more keypoints than the reference lost the reference's keypoints as well
    const c = compareDetections([{ reference: [det([0, 0, 10, 10], 0.9, five)], candidate: [det([0, 0, 10, 10], 0.9, [...five, [6, 6]])] }]);
    expect(c.keypointsLost).toBe(1);
    expect(c.keypointError).toBeNull();
  });
  it('score drift and keypoint error summaries over two matched faces', () => {
    const kps: [number, number][] = [[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]];
    const shifted = (dx: number) => kps.map(([x, y]) => [x + dx, y] as [number, number]);
    const c = compareDetections([
      { reference: [det([0, 0, 100, 100], 0.8, kps)], candidate: [det([0, 0, 100, 100], 0.9, shifted(1))] }, // +0.1, error 0.01
      { reference: [det([0, 0, 100, 100], 0.8, kps)], candidate: [det([0, 0, 100, 100], 0.7, shifted(3))] }, // -0.1, error 0.03
    ]);
    expect(c.scoreDrift!.meanAbs).toBeCloseTo(0.1, 12);
    expect(c.scoreDrift!.maxAbs).toBeCloseTo(0.1, 12);
    expect(c.scoreDrift!.meanSigned).toBeCloseTo(0, 12);
    expect(c.keypointError!.faces).toBe(2);
    expect(c.keypointError!.mean).toBeCloseTo(0.02, 12);
    expect(c.keypointError!.p95).toBeCloseTo(0.029, 12); // 0.01 + 0.95 x 0.02
    expect(c.keypointError!.max).toBeCloseTo(0.03, 12);
  });
});
