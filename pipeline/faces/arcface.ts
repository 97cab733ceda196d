/**
 * The ArcFace-style recognizer: aligned face crops in, one embedding per crop out, L2-normalised (the
 * raw norm is kept as a quality signal). Crops are batched through the graph when its batch dimension
 * is dynamic; a fixed batch is filled chunk by chunk. Any embedding length works.
 */
import { FaceoptError, checkNumber } from '../errors.js';
import { createSession, floatTensor, runSession, warmUp, type Session, type SessionOptions } from '../runtime.js';
import { readGraphSummary } from './graph-summary.js';
import { resizeBilinear, writeBlob } from './preprocess.js';
import { guessRole, recognizerProfile, type ProfileOverrides, type RecognizerProfile } from './profile.js';
import type { RgbImage } from './types.js';

export interface RecognizerLoadOptions {
  session?: SessionOptions;
  profile?: ProfileOverrides;
  /** Most crops per run when the batch is dynamic (default 32). */
  maxBatch?: number;
}

/** Embeddings of a list of crops, in the same order. */
export interface Embeddings {
  /** Unit-length embeddings. */
  readonly embeddings: Float32Array[];
  /** L2 norm of each raw output. */
  readonly norms: number[];
}

/** Scale a vector to unit length; returns the unit vector and the original norm (a zero vector stays zero). */
export function l2normalize(v: ArrayLike<number>): { unit: Float32Array; norm: number } {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const norm = Math.sqrt(s);
  const unit = new Float32Array(v.length);
  if (norm > 0) for (let i = 0; i < v.length; i++) unit[i] = v[i] / norm;
  return { unit, norm };
}

export { cosineSimilarity } from './similarity.js';

/** A loaded recognizer. Create with ArcFaceRecognizer.load. */
export class ArcFaceRecognizer {
  private constructor(
    readonly path: string,
    readonly profile: RecognizerProfile,
    readonly session: Session,
    readonly maxBatch: number,
  ) {}

  /** Load a recognizer: profile from the graph (or overrides), then a runtime session. FACEOPT_ERR_MODEL_ROLE for a detector. */
  static async load(path: string, opts: RecognizerLoadOptions = {}): Promise<ArcFaceRecognizer> {
    const graph = await readGraphSummary(path);
    if (graph.outputs.length !== 1 && opts.profile?.role !== 'recognizer') {
      throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path, expected: 'recognizer', actual: guessRole(graph) ?? `a graph with ${graph.outputs.length} outputs` });
    }
    const profile = recognizerProfile(graph, opts.profile);
    const maxBatch = checkNumber('maxBatch', opts.maxBatch ?? 32, { min: 1, max: 1024, integer: true });
    const session = await createSession(path, opts.session);
    return new ArcFaceRecognizer(path, profile, session, maxBatch);
  }

  /** Crop size [width, height] the recognizer expects (align faces to this). */
  get inputSize(): readonly [number, number] {
    return this.profile.inputSize;
  }

  /** Run once on a black batch of `batch` crops, so the first real call does not pay for allocation. */
  async warmUp(runs = 1, batch = 1): Promise<number[]> {
    const [w, h] = this.inputSize;
    return warmUp(this.session, { [this.profile.inputName]: [this.profile.batch ?? batch, 3, h, w] }, runs, this.path);
  }

  /**
   * Embed aligned crops. Crops of another size are resized (bilinear) to the input size first.
   * Returns unit embeddings and raw norms in input order.
   */
  async embed(crops: readonly RgbImage[]): Promise<Embeddings> {
    const [w, h] = this.inputSize;
    const per = this.profile.batch ?? this.maxBatch;
    const embeddings: Float32Array[] = [];
    const norms: number[] = [];
    for (let start = 0; start < crops.length; start += per) {
      const chunk = crops.slice(start, start + per);
      const slots = this.profile.batch ?? chunk.length; // a fixed batch is padded with black crops
      const blob = new Float32Array(slots * 3 * w * h);
      chunk.forEach((c, i) => {
        const crop = c.width === w && c.height === h ? c : resizeBilinear(c, w, h);
        writeBlob(crop, w, h, this.profile.mean, this.profile.std, this.profile.channelOrder === 'BGR', blob, i);
      });
      const out = await runSession(this.session, { [this.profile.inputName]: floatTensor(blob, [slots, 3, h, w]) }, [this.profile.output], this.path);
      const t = out[this.profile.output];
      const data = t.data as Float32Array;
      const dim = data.length / slots;
      if (!Number.isInteger(dim) || dim === 0) {
        throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `recognizer output [${t.dims.join(',')}] does not split into ${slots} embeddings` });
      }
      for (let i = 0; i < chunk.length; i++) {
        const { unit, norm } = l2normalize(data.subarray(i * dim, (i + 1) * dim));
        embeddings.push(unit);
        norms.push(norm);
      }
    }
    return { embeddings, norms };
  }

  /** Release the runtime session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
