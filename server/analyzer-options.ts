/**
 * The face pipeline's settings for the served models under the server's config, shared by both backends.
 * Type-only imports: the main thread of the inference-thread backend must not load onnxruntime.
 */
import type { AnalyzerOptions } from '../pipeline/faces/analyzer.js';
import type { ServerConfig } from './config.js';
import type { ServedModels } from './models.js';

/** Detector, recognizer, threads, detector size and pixel limit as the server was configured. */
export function analyzerOptionsFor(models: ServedModels, config: ServerConfig): AnalyzerOptions {
  const detSize = servedDetSize(models, config);
  return {
    detector: models.detector.path,
    recognizer: models.recognizer.path,
    session: { provider: config.provider, intraOpThreads: config.intraOpThreads },
    ...(detSize !== null ? { detSize, detSizeName: config.detSize !== null ? '--det-size' : `the input size the detector's report evaluated (${detSize})` } : {}),
    detect: { threshold: config.detThreshold },
    decode: { maxPixels: config.maxPixels },
    maxBatch: config.batch.maxBatch,
  };
}

/**
 * The detector's input size as served: --det-size, else the size its report evaluated it at, else null
 * (the detector's own default). The sessions and the cache keys both take it from here.
 */
export function servedDetSize(models: Pick<ServedModels, 'detSize'>, config: Pick<ServerConfig, 'detSize'>): number | null {
  return config.detSize ?? models.detSize;
}
