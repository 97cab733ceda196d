/**
 * The SCRFD face detector: letterbox a photo to the detector size, run the graph, decode boxes,
 * scores and five keypoints, and choose faces (threshold, NMS, minimum size, max faces) exactly as
 * insightface/model_zoo/scrfd.py does. Several photos go through one run when the graph has a dynamic
 * batch and batched outputs; otherwise they are run one by one.
 */
import { FaceoptError, checkNumber } from '../errors.js';
import { createSession, floatTensor, runSession, warmUp, type Session, type SessionOptions, type Tensor } from '../runtime.js';
import { readDetectorProfile, resolveDetSize } from './det-size.js';
import { letterbox, writeBlob, type LetterboxGeometry } from './preprocess.js';
import type { DetectorProfile, ProfileOverrides } from './profile.js';
import { decodeScrfd, type StrideOutputs } from './scrfd-decode.js';
import { filterMinSize, pickFaces } from './select.js';
import type { DetectedFace, RgbImage } from './types.js';

/** InsightFace FaceAnalysis defaults. */
export { DEFAULT_DET_SIZE } from './det-size.js';
export const DEFAULT_SCORE_THRESHOLD = 0.5;
export const DEFAULT_NMS_THRESHOLD = 0.4;

export interface DetectOptions {
  /** Keep candidates with score >= threshold (default 0.5). */
  threshold?: number;
  /** NMS IoU threshold (default 0.4). */
  nmsThreshold?: number;
  /** Keep at most this many faces, preferring large faces near the centre; 0 keeps all (default). */
  maxFaces?: number;
  /** Drop faces smaller than this many pixels on either side (default 0). */
  minFaceSize?: number;
}

export interface DetectorLoadOptions {
  /** Runtime session options (provider, threads, optimisation level). */
  session?: SessionOptions;
  /** Profile fields to force instead of detecting them. */
  profile?: ProfileOverrides;
  /** Detector input size: N for NxN or [width, height]. Fixed-size graphs accept only their size; default 640 for dynamic graphs. */
  detSize?: number | readonly [number, number];
  /** What errors about detSize call it (a CLI says `--det-size`; default `detSize`). */
  detSizeName?: string;
  /** Most photos per batched run when the graph allows batching (default 8). */
  maxBatch?: number;
}

/** A loaded SCRFD detector. Create with ScrfdDetector.load. */
export class ScrfdDetector {
  private constructor(
    readonly path: string,
    readonly profile: DetectorProfile,
    readonly session: Session,
    /** Detector input [width, height]. */
    readonly detSize: readonly [number, number],
    readonly maxBatch: number,
  ) {}

  /**
   * Load a detector: read its graph, detect (or take) its profile, open a runtime session and fix the
   * detector size. FACEOPT_ERR_MODEL_ROLE when the file is a recognizer; FACEOPT_ERR_BAD_ARGUMENT for a
   * det size a fixed-input graph cannot take.
   */
  static async load(path: string, opts: DetectorLoadOptions = {}): Promise<ScrfdDetector> {
    const profile = await readDetectorProfile(path, opts.profile);
    const detSize = resolveDetSize(profile, opts.detSize, opts.detSizeName);
    const maxBatch = checkNumber('maxBatch', opts.maxBatch ?? 8, { min: 1, max: 256, integer: true });
    const session = await createSession(path, opts.session);
    return new ScrfdDetector(path, profile, session, detSize, maxBatch);
  }

  /** True when several photos can share one run (dynamic batch dimension and [B,N,C] outputs). */
  get batchable(): boolean {
    return this.profile.batch === null && this.profile.batchedOutputs !== false && this.outputsBatched !== false;
  }

  /** Output rank seen at run time (overrides an undeclared profile rank). */
  private outputsBatched: boolean | null = null;

  /** Run the graph once on a blank canvas so the first photo does not pay for allocation. */
  async warmUp(runs = 1): Promise<number[]> {
    const [w, h] = this.detSize;
    return warmUp(this.session, { [this.profile.inputName]: [1, 3, h, w] }, runs, this.path);
  }

  /** Letterbox and normalise photos into one NCHW blob. */
  private prepare(images: readonly RgbImage[]): { blob: Float32Array; geometry: LetterboxGeometry[] } {
    const [w, h] = this.detSize;
    const blob = new Float32Array(images.length * 3 * w * h);
    const geometry = images.map((img, slot) => {
      const lb = letterbox(img, w, h);
      writeBlob(lb.resized, w, h, this.profile.mean, this.profile.std, this.profile.channelOrder === 'BGR', blob, slot);
      return lb.geometry;
    });
    return { blob, geometry };
  }

  /** Run the graph on a prepared blob of `count` photos; returns the per-stride output tensors. */
  private async infer(blob: Float32Array, count: number): Promise<StrideOutputs[]> {
    const [w, h] = this.detSize;
    const out = await runSession(this.session, { [this.profile.inputName]: floatTensor(blob, [count, 3, h, w]) }, undefined, this.path);
    const o = this.profile.outputs;
    const get = (name: string): Tensor => {
      const t = out[name];
      if (!t) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `detector output ${name} missing from the run` });
      return t;
    };
    const levels = this.profile.strides.map((stride, i) => ({
      stride,
      scores: get(o.scores[i]) as unknown as StrideOutputs['scores'],
      boxes: get(o.boxes[i]) as unknown as StrideOutputs['boxes'],
      kps: o.kps ? (get(o.kps[i]) as unknown as StrideOutputs['boxes']) : null,
    }));
    this.outputsBatched = levels[0].scores.dims.length === 3;
    return levels;
  }

  private finish(faces: DetectedFace[], img: RgbImage, opts: DetectOptions): DetectedFace[] {
    const minSize = checkNumber('minFaceSize', opts.minFaceSize ?? 0, { min: 0 });
    const maxFaces = checkNumber('maxFaces', opts.maxFaces ?? 0, { min: 0, integer: true });
    return pickFaces(filterMinSize(faces, minSize), maxFaces, img.width, img.height);
  }

  private decodeOpts(opts: DetectOptions, g: LetterboxGeometry, batchIndex: number) {
    return {
      inputWidth: this.detSize[0],
      inputHeight: this.detSize[1],
      numAnchors: this.profile.numAnchors,
      threshold: checkNumber('threshold', opts.threshold ?? DEFAULT_SCORE_THRESHOLD, { min: 0, max: 1 }),
      nmsThreshold: checkNumber('nmsThreshold', opts.nmsThreshold ?? DEFAULT_NMS_THRESHOLD, { min: 0, max: 1 }),
      scale: g.scale,
      batchIndex,
    };
  }

  /** Faces in one photo, highest score first (or in max-faces rank order when maxFaces is set). */
  async detect(img: RgbImage, opts: DetectOptions = {}): Promise<DetectedFace[]> {
    const { blob, geometry } = this.prepare([img]);
    const levels = await this.infer(blob, 1);
    return this.finish(decodeScrfd(levels, this.decodeOpts(opts, geometry[0], 0)), img, opts);
  }

  /**
   * Faces in several photos. Batched through one run per maxBatch photos when the graph allows it,
   * otherwise photo by photo; results are identical either way.
   */
  async detectBatch(images: readonly RgbImage[], opts: DetectOptions = {}): Promise<DetectedFace[][]> {
    if (!this.batchable || images.length < 2) {
      const all: DetectedFace[][] = [];
      for (const img of images) all.push(await this.detect(img, opts));
      return all;
    }
    const all: DetectedFace[][] = [];
    for (let start = 0; start < images.length; start += this.maxBatch) {
      const chunk = images.slice(start, start + this.maxBatch);
      const { blob, geometry } = this.prepare(chunk);
      const levels = await this.infer(blob, chunk.length);
      if (!this.outputsBatched) {
        throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: 'the detector has a dynamic batch but unbatched [N,C] outputs; set maxBatch to 1' });
      }
      chunk.forEach((img, b) => all.push(this.finish(decodeScrfd(levels, this.decodeOpts(opts, geometry[b], b)), img, opts)));
    }
    return all;
  }

  /** Release the runtime session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
