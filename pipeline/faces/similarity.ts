/**
 * Comparing embeddings, with no runtime behind it: the server's main thread imports this without
 * loading onnxruntime (its models run in the inference thread).
 */
import { FaceoptError } from '../errors.js';

/**
 * Default cosine match threshold: the best LFW DevTest threshold of SCRFD-500M + MobileFaceNet-128 was
 * 0.31. It is model-dependent: measure yours with the evaluation report.
 */
export const DEFAULT_MATCH_THRESHOLD = 0.3;

/** Cosine similarity of two embeddings (normalised or not); NaN-free: 0 when either is a zero vector. */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `embeddings of equal length`, name: 'embedding', received: `${a.length} and ${b.length}` });
  }
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}
