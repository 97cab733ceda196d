/**
 * Cosine similarity of embeddings: unnormalised vectors, sign, zero vectors and mismatched lengths.
 */
import { describe, expect, it } from 'vitest';
import { cosineSimilarity } from '../../pipeline/faces/similarity.js';

describe('cosineSimilarity', () => {
  it('normalises both vectors: (3,4).(4,3) / (5*5) = 0.96; parallel vectors of any length give 1', () => {
    expect(cosineSimilarity([3, 4], [4, 3])).toBeCloseTo(0.96, 12);
    expect(cosineSimilarity([1, 2, 2], [2, 4, 4])).toBeCloseTo(1, 12);
    expect(cosineSimilarity(Float32Array.from([0, 5]), Float32Array.from([0.1, 0]))).toBe(0);
  });

  it('keeps the sign: opposite vectors give -1', () => {
    expect(cosineSimilarity([1, 2], [-2, -4])).toBeCloseTo(-1, 12);
    expect(cosineSimilarity([1, 0], [-1, 1])).toBeCloseTo(-Math.SQRT1_2, 12);
  });

  it('is 0, never NaN, when either vector is zero', () => {
    expect(cosineSimilarity([0, 0], [1, 2])).toBe(0);
    expect(cosineSimilarity([1, 2], [0, 0])).toBe(0);
    expect(cosineSimilarity([0, 0], [0, 0])).toBe(0);
  });

  it('refuses embeddings of different lengths either way round', () => {
    expect(() => cosineSimilarity([1, 2, 3], [1, 2])).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_BAD_ARGUMENT' }));
    expect(() => cosineSimilarity([1, 2], [1, 2, 3])).toThrow(expect.objectContaining({ code: 'FACEOPT_ERR_BAD_ARGUMENT' }));
  });
});
