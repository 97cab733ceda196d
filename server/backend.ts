/**
 * What the server needs from the face pipeline, as one small interface: decode, detect, align, embed.
 * AnalyzerBackend implements it over pipeline/faces' FaceAnalyzer facade (the production path);
 * tests can pass a synthetic backend to exercise routes, limits and overload without model files.
 */
import { FaceAnalyzer } from '../pipeline/faces/analyzer.js';
import { analyzerOptionsFor } from './analyzer-options.js';
import type { Embeddings } from '../pipeline/faces/arcface.js';
import type { DetectOptions } from '../pipeline/faces/scrfd.js';
import type { DetectedFace, RgbImage } from '../pipeline/faces/types.js';
import type { ServerConfig } from './config.js';
import type { ServedModels } from './models.js';

export interface BackendInfo {
  detector: { path: string; inputSize: readonly [number, number] };
  recognizer: { path: string; inputSize: readonly [number, number] };
}

export interface FaceBackend {
  readonly info: BackendInfo;
  /** Runs that may be in flight at once (inference lanes); the service's batchers keep to it. */
  readonly lanes: number;
  /** Decode encoded bytes to RGB off the event loop (sharp/libuv); FACEOPT_ERR_BAD_IMAGE / _IMAGE_TOO_LARGE. */
  decode(bytes: Uint8Array, source: string): Promise<RgbImage>;
  /** Faces in one decoded photo. */
  detect(img: RgbImage, opts: DetectOptions): Promise<DetectedFace[]>;
  /** Crops of faces aligned to the recognizer template and input size. */
  align(img: RgbImage, faces: readonly DetectedFace[]): RgbImage[];
  /** Embed crops (any size; resized to the input size) in one run or the recognizer's own chunks. */
  embed(crops: readonly RgbImage[]): Promise<Embeddings>;
  warmUp(): Promise<void>;
  release(): Promise<void>;
  /**
   * How many requests the server holds right now; a backend with a latency lane gives it only to a lone
   * request (the service sets this once it attaches the backend).
   */
  setLoadProbe?(requestsInFlight: () => number): void;
  /** False while no inference thread can run a call (all died and are restarting); absent: always able. */
  readonly healthy?: boolean;
  /** Hear of inference threads that die and restart (logs, metrics, readiness). */
  setLaneEvents?(events: LaneEvents): void;
  /** Answer the calls waiting for a thread to restart now (the server is closing). */
  stopWaiting?(): void;
}

/** What a backend with inference threads tells of them; `lane` is the lane's index (the latency lane last). */
export interface LaneEvents {
  died?(lane: number, reason: string): void;
  restarted?(lane: number, ms: number): void;
  restartFailed?(lane: number, error: unknown, retryInMs: number): void;
}

/** The production backend: one FaceAnalyzer (SCRFD + ArcFace sessions) per process. */
export class AnalyzerBackend implements FaceBackend {
  readonly lanes = 1;

  private constructor(private readonly analyzer: FaceAnalyzer, readonly info: BackendInfo) {}

  /** Load both models with the server's thread, provider, detector-size and pixel-limit settings. */
  static async load(models: ServedModels, config: ServerConfig): Promise<AnalyzerBackend> {
    const analyzer = await FaceAnalyzer.load(analyzerOptionsFor(models, config));
    const rec = analyzer.requireRecognizer();
    return new AnalyzerBackend(analyzer, {
      detector: { path: models.detector.path, inputSize: analyzer.detector.detSize },
      recognizer: { path: models.recognizer.path, inputSize: rec.inputSize },
    });
  }

  decode(bytes: Uint8Array, source: string): Promise<RgbImage> {
    return this.analyzer.decode(bytes, source);
  }

  detect(img: RgbImage, opts: DetectOptions): Promise<DetectedFace[]> {
    return this.analyzer.detect(img, opts);
  }

  align(img: RgbImage, faces: readonly DetectedFace[]): RgbImage[] {
    return this.analyzer.alignFaces(img, faces);
  }

  embed(crops: readonly RgbImage[]): Promise<Embeddings> {
    return this.analyzer.requireRecognizer().embed(crops);
  }

  async warmUp(): Promise<void> {
    await this.analyzer.warmUp();
    // a second recognizer run at a typical batch size so the first burst does not grow the arena
    await this.analyzer.requireRecognizer().warmUp(1, 4);
  }

  release(): Promise<void> {
    return this.analyzer.release();
  }
}
