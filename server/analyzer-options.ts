/**
 * The face pipeline's settings for the served models under the server's config, shared by both backends.
 * Type-only imports: the main thread of the inference-thread backend must not load onnxruntime.
 */
import type { AnalyzerOptions } from '../pipeline/faces/analyzer.js';
import type { ServerConfig } from './config.js';
import type { ServedModels } from './models.js';

/** Detector, recognizer, threads, detector size and pixel limit as the server was configured. */
export function analyzerOptionsFor(models: ServedModels, config: ServerConfig): AnalyzerOptions {
  return {
    detector: models.detector.path,
    recognizer: models.recognizer.path,
    session: { provider: config.provider, intraOpThreads: config.intraOpThreads },
    ...(config.detSize !== null ? { detSize: config.detSize, detSizeName: '--det-size' }
      : models.detSize !== null ? { detSize: models.detSize, detSizeName: `the input size the detector's report evaluated (${models.detSize})` } : {}),
    detect: { threshold: config.detThreshold },
    decode: { maxPixels: config.maxPixels },
    maxBatch: config.batch.maxBatch,
  };
}

