/**
 * FaceAnalyzer: the one facade calibration, evaluation and the server use — InsightFace's FaceAnalysis
 * reduced to what faceopt needs. It owns a SCRFD detector and (optionally) an ArcFace recognizer and
 * turns a photo (path, bytes or decoded RGB) into faces with box, score, keypoints and embedding.
 */
import type { SessionOptions } from '../runtime.js';
import { FaceoptError } from '../errors.js';
import { alignFacesTo } from './align.js';
import { ArcFaceRecognizer } from './arcface.js';
import { decodeImage, type DecodeOptions } from './decode.js';
import type { ProfileOverrides, DetectorProfile, RecognizerProfile } from './profile.js';
import { ScrfdDetector, type DetectOptions } from './scrfd.js';
import type { DetectedFace, EmbeddedFace, RgbImage } from './types.js';

/** A photo as a file path, encoded bytes, or already-decoded RGB pixels. */
export type ImageInput = string | Uint8Array | RgbImage;

export interface AnalyzerOptions {
  /** Detector model path (resolve names with resolveModelArg first). */
  detector: string;
  /** Recognizer model path; without it only detection is available. */
  recognizer?: string;
  /** Runtime options for both sessions (see analyzerSessionOptions for the spinning default). */
  session?: SessionOptions;
  /** Detector input size (default 640, or the graph's fixed size). */
  detSize?: number | readonly [number, number];
  /** What errors about detSize call it (the CLI and the server: `--det-size`). */
  detSizeName?: string;
  detectorProfile?: ProfileOverrides;
  recognizerProfile?: ProfileOverrides;
  /** Default detection options for every call (threshold, nms, max faces, min size). */
  detect?: DetectOptions;
  /** Decoding options (pixel limit). */
  decode?: DecodeOptions;
  /** Most crops per recognizer run (default 32). */
  maxBatch?: number;
}

/** What a FaceAnalyzer runs, for reports and /health: paths, profiles and the detector size. */
export interface AnalyzerDescription {
  readonly detector: { readonly path: string; readonly detSize: readonly [number, number]; readonly profile: DetectorProfile };
  readonly recognizer: { readonly path: string; readonly profile: RecognizerProfile } | null;
}

function isRgb(x: ImageInput): x is RgbImage {
  return typeof x === 'object' && !(x instanceof Uint8Array) && 'data' in x;
}

/**
 * Session options of a FaceAnalyzer's models. With a detector and a recognizer the two sessions take
 * turns on the same cores, and a session whose run just ended keeps its onnxruntime threads spinning
 * into the other's run: so thread spinning is off unless the caller sets it. Measured with
 * `bench:server` (IResNet-50 fixture + scrfd_500m, 2 cores, LFW photos): one photo at a time 7.1 -> 10.6
 * photos/s (FP32), 12.1 -> 22.2 (INT8); the server 3.8 -> 7.8 and 10.0 -> 20.0 req/s; aligned crops
 * (recognizer only, batched) unchanged.
 */
export function analyzerSessionOptions(opts: Pick<AnalyzerOptions, 'recognizer' | 'session'>): SessionOptions {
  return opts.recognizer ? { ...opts.session, spinning: opts.session?.spinning ?? false } : { ...opts.session };
}

/**
 * Detector + optional recognizer behind one object. Load with FaceAnalyzer.load; every method accepts a
 * path, encoded bytes or RGB pixels. Safe to share between concurrent requests (sessions are re-entrant).
 */
export class FaceAnalyzer {
  private constructor(
    readonly detector: ScrfdDetector,
    readonly recognizer: ArcFaceRecognizer | null,
    private readonly defaults: DetectOptions,
    private readonly decodeOptions: DecodeOptions,
  ) {}

  /** Load the detector and, when given, the recognizer (in parallel). */
  static async load(opts: AnalyzerOptions): Promise<FaceAnalyzer> {
    const session = analyzerSessionOptions(opts);
    const [det, rec] = await Promise.all([
      ScrfdDetector.load(opts.detector, { session, profile: opts.detectorProfile, detSize: opts.detSize, detSizeName: opts.detSizeName }),
      opts.recognizer ? ArcFaceRecognizer.load(opts.recognizer, { session, profile: opts.recognizerProfile, maxBatch: opts.maxBatch }) : null,
    ]);
    return new FaceAnalyzer(det, rec, opts.detect ?? {}, opts.decode ?? {});
  }

  /** Decode a photo unless it is already RGB pixels. */
  async decode(input: ImageInput, source?: string): Promise<RgbImage> {
    return isRgb(input) ? input : decodeImage(input, { ...this.decodeOptions, source: source ?? this.decodeOptions.source });
  }

  /** Faces (box, score, keypoints) in one photo. */
  async detect(input: ImageInput, opts: DetectOptions = {}): Promise<DetectedFace[]> {
    return this.detector.detect(await this.decode(input), { ...this.defaults, ...opts });
  }

  /** Faces in several photos; batched through the detector when its graph allows. */
  async detectBatch(inputs: readonly ImageInput[], opts: DetectOptions = {}): Promise<DetectedFace[][]> {
    const images = await Promise.all(inputs.map((i) => this.decode(i)));
    return this.detector.detectBatch(images, { ...this.defaults, ...opts });
  }

  /** Faces with embeddings in one photo (detect, align each face, embed all faces in one batch). */
  async extract(input: ImageInput, opts: DetectOptions = {}): Promise<EmbeddedFace[]> {
    const img = await this.decode(input);
    return this.embedFaces(img, await this.detector.detect(img, { ...this.defaults, ...opts }));
  }

  /** Aligned crops of faces in a photo, at the recognizer's input size (112x112 without one). */
  alignFaces(img: RgbImage, faces: readonly DetectedFace[]): RgbImage[] {
    return alignFacesTo(img, faces, this.recognizer?.inputSize ?? [112, 112], this.detector.path);
  }

  /** Embed already-detected faces of a photo. FACEOPT_ERR_MODEL_ROLE when no recognizer is loaded. */
  async embedFaces(img: RgbImage, faces: readonly DetectedFace[]): Promise<EmbeddedFace[]> {
    const rec = this.requireRecognizer();
    if (faces.length === 0) return [];
    const { embeddings, norms } = await rec.embed(this.alignFaces(img, faces));
    return faces.map((f, i) => ({ ...f, embedding: embeddings[i], norm: norms[i] }));
  }

  /** The recognizer, or FACEOPT_ERR_MODEL_ROLE telling the caller to load one. */
  requireRecognizer(): ArcFaceRecognizer {
    if (!this.recognizer) {
      throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path: '(none)', expected: 'recognizer', actual: 'no recognizer loaded' });
    }
    return this.recognizer;
  }

  /** Warm both sessions up (one run each). */
  async warmUp(): Promise<void> {
    await this.detector.warmUp();
    await this.recognizer?.warmUp();
  }

  /** JSON-serialisable description of the loaded models. */
  describe(): AnalyzerDescription {
    return {
      detector: { path: this.detector.path, detSize: this.detector.detSize, profile: this.detector.profile },
      recognizer: this.recognizer ? { path: this.recognizer.path, profile: this.recognizer.profile } : null,
    };
  }

  /** Release both runtime sessions. */
  async release(): Promise<void> {
    await this.detector.release();
    await this.recognizer?.release();
  }
}

