/**
 * Command-line style options for the face commands (detect, embed, compare), turned into typed
 * analyzer and detection options in one place, each value checked and named in its error.
 */
import { checkNumber, FaceoptError } from '../errors.js';
import { PROVIDERS, type Provider, type SessionOptions } from '../runtime.js';
import type { AnalyzerOptions } from './analyzer.js';
import { modelFromArgOrEnv } from './models.js';
import type { DetectOptions } from './scrfd.js';
import type { DecodeOptions } from './decode.js';

/** Raw option values as commander hands them over (strings unless parsed). */
export interface FaceCliOptions {
  detector?: string;
  /** Alias of detector (`faceopt detect --model`). */
  model?: string;
  recognizer?: string;
  detSize?: string | number;
  threshold?: string | number;
  /** The flag that set `threshold`, for messages (compare's is --det-threshold; default --threshold). */
  thresholdFlag?: string;
  nms?: string | number;
  maxFaces?: string | number;
  minFaceSize?: string | number;
  provider?: string;
  threads?: string | number;
  maxPixels?: string | number;
}

/** Session options from --provider and --threads. */
export function sessionOptions(o: FaceCliOptions): SessionOptions {
  const provider = o.provider ?? 'cpu';
  if (!(PROVIDERS as readonly string[]).includes(provider)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `one of ${PROVIDERS.join(', ')}`, name: '--provider', received: provider });
  }
  return {
    provider: provider as Provider,
    ...(o.threads !== undefined ? { intraOpThreads: checkNumber('--threads', o.threads, { min: 1, max: 256, integer: true }) } : {}),
  };
}

/** Detection options from --threshold, --nms, --max-faces and --min-face-size. */
export function detectOptions(o: FaceCliOptions): DetectOptions {
  const out: DetectOptions = {};
  if (o.threshold !== undefined) out.threshold = checkNumber(o.thresholdFlag ?? '--threshold', o.threshold, { min: 0, max: 1 });
  if (o.nms !== undefined) out.nmsThreshold = checkNumber('--nms', o.nms, { min: 0, max: 1 });
  if (o.maxFaces !== undefined) out.maxFaces = checkNumber('--max-faces', o.maxFaces, { min: 0, integer: true });
  if (o.minFaceSize !== undefined) out.minFaceSize = checkNumber('--min-face-size', o.minFaceSize, { min: 0 });
  return out;
}

/** Decoding options from the CLI flags (`--max-pixels`). */
export function decodeOptions(o: Pick<FaceCliOptions, 'maxPixels'>): DecodeOptions {
  return o.maxPixels !== undefined ? { maxPixels: checkNumber('--max-pixels', o.maxPixels, { min: 1, integer: true }) } : {};
}

/**
 * Analyzer options from the flags: the detector from --detector/--model or FACEOPT_DETECTOR, the
 * recognizer (when `withRecognizer`) from --recognizer or FACEOPT_RECOGNIZER.
 */
export function analyzerOptions(o: FaceCliOptions, withRecognizer: boolean): AnalyzerOptions {
  return {
    detector: modelFromArgOrEnv(o.detector ?? o.model, 'detector', '--detector'),
    ...(withRecognizer ? { recognizer: modelFromArgOrEnv(o.recognizer, 'recognizer', '--recognizer') } : {}),
    session: sessionOptions(o),
    ...(o.detSize !== undefined ? { detSize: checkNumber('--det-size', o.detSize, { min: 32, max: 4096, integer: true }), detSizeName: '--det-size' } : {}),
    detect: detectOptions(o),
    decode: decodeOptions(o),
  };
}

/** Round for JSON output: coordinates to 0.01 px, scores to 1e-4. */
export const round = (v: number, digits: number): number => Number(v.toFixed(digits));

/** JSON for people and machines: indented objects, number arrays kept on one line. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/\[[\s\d.,eE+-]*\]/g, (m) => m.replace(/\s+/g, '').replace(/,/g, ', '));
}
