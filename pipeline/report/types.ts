/**
 * The Report: everything a reviewer needs to decide whether a variant may serve, as one serialisable,
 * versioned object. report.json is this object verbatim and the single source; report.md, report.html and
 * `faceopt report` are renderings of it. Absent sections are `null` (never missing keys) so the schema
 * reads the same for every role. docs/report-schema.md describes every field.
 *
 * Bump REPORT_SCHEMA_VERSION on any change an older reader would misread; loadReport refuses other versions.
 */
import type { AccuracyDelta, CosineSummary, DetectionComparison, LatencySummary, VerificationResult } from '../evaluate/metrics.js';
import type { GateResult } from '../evaluate/gates.js';

export const REPORT_SCHEMA_VERSION = 1;

export type ModelRole = 'recognizer' | 'detector' | 'generic';

/** One model file, identified by content. */
export interface ModelFile {
  /** Display name, e.g. `mobileface_paddle_128d`. */
  name: string;
  path: string;
  sha256: string;
  sizeBytes: number;
  /** `fp32`, `int8-qdq`, `int8-qdq-symmetric`, `fp16`, ... */
  precision: string;
}

/** Where the numbers were measured and how the variant was made. */
export interface Provenance {
  toolVersion: string;
  /** ISO 8601 time the report was created. */
  createdAt: string;
  /** The command line that produced the report, when known. */
  command: string | null;
  machine: {
    cpuModel: string;
    cores: number;
    /**
     * The x86 instructions onnxruntime's int8 kernels multiply with here ('AVX-512 VNNI', 'AVX2 without
     * VNNI', ...): int8 results measured with VNNI may differ on a CPU without it. Absent in older reports.
     */
    int8Dot?: string;
    totalMemoryBytes: number;
    platform: string;
    arch: string;
    nodeVersion: string;
    onnxruntimeVersion: string;
  };
  /** Null for variants made without calibration (e.g. fp16). */
  calibration: {
    /** Collector: `minmax`, `percentile`, `entropy`. */
    method: string;
    images: number;
    /** Every calibration setting as given (typed scalars only). */
    config: Record<string, string | number | boolean | null>;
    statsPath: string | null;
    statsSha256: string;
  } | null;
  /** Layers left in float in the variant, and why (excluded by flag, sensitivity search, unsupported op). */
  floatLayers: { layer: string; op: string; reason: string }[];
  /**
   * The run that made the variant (`faceopt optimize`): its command line and its own warnings (calibration
   * photos without a face, rewrites). A later `faceopt evaluate` of the same file keeps it, and lists those
   * warnings again as the making run's. Absent in reports written before it was recorded.
   */
  madeBy?: { command: string | null; warnings: string[] } | null;
}

/** Which photos and pairs were used, and how evaluation faces were kept apart from calibration faces. */
export interface EvaluationData {
  facesSource: string | null;
  pairsFile: string | null;
  boxFiles: string[];
  split: {
    /** `by-identity` (one folder, split by person), `list` (calibration list given; the rest evaluates),
     *  `separate-sources` (different folders), `none` (no calibration, e.g. fp16). */
    method: 'by-identity' | 'list' | 'separate-sources' | 'none';
    /** One sentence a reviewer reads, e.g. "60 identities for calibration, 963 others for evaluation". */
    description: string;
    calibrationImages: number;
    evaluationImages: number;
    calibrationIdentities: number | null;
    evaluationIdentities: number | null;
    /** Identities present on both sides (should be 0); null when identities are unknown. */
    sharedIdentities: number | null;
  };
  /**
   * Recognizers: how the evaluated faces were found and aligned (one crop per photo, the same for both
   * models). Absent in reports made before 2026-12-07 and for detectors.
   */
  alignment?: { detector: string; detectorSha256: string; scoreThreshold: number; face: string } | null;
}

export interface RecognizerResults {
  /** Per-face cosine, reference vs variant embedding of the same aligned face. */
  cosine: CosineSummary;
  /** Null without a pairs file. */
  verification: {
    pairsFile: string;
    /** Pairs dropped because a face was not found in one of the images (same for both models). */
    skippedPairs: number;
    reference: VerificationResult;
    variant: VerificationResult;
    delta: AccuracyDelta;
  } | null;
}

export interface DetectorResults {
  /** Detector input size [width, height] the evaluation ran at. */
  inputSize: [number, number];
  /** The variant's detections vs the reference model's on the same photos. */
  vsReference: DetectionComparison;
  /** Both models vs annotated boxes (dlib XML), when given. */
  vsGroundTruth: { boxFiles: string[]; reference: DetectionComparison; variant: DetectionComparison } | null;
  /** Detections on photos without human faces (all are false positives). */
  faceFree: { images: number; referenceDetections: number; variantDetections: number } | null;
}

/** Speed of one model. Latency is milliseconds per batch. */
export interface ModelSpeed {
  batch1: LatencySummary;
  batch8: LatencySummary | null;
  sessionStartMs: number;
  /** Peak resident memory while this model ran, in bytes; null when not measured. */
  peakMemoryBytes: number | null;
}

export interface SpeedResults {
  executionProvider: string;
  threads: number | null;
  reference: ModelSpeed;
  variant: ModelSpeed;
  /**
   * The median of `blockSpeedups` (2 = twice as fast); reference p50 / variant p50 over all runs in
   * reports written before 2026-12-06 and where there are no blocks.
   */
  speedup: { batch1: number; batch8: number | null };
  /**
   * Reference p50 / variant p50 per pair of blocks (the models take turns in blocks of runs), in time
   * order: its spread shows how much the machine's speed moved during the measurement. Absent in older
   * reports.
   */
  blockSpeedups?: { batch1: number[]; batch8: number[] | null };
  /**
   * The batch the `batch1` rows were timed at when both models fix a batch above 1 (a model exported as
   * [4, 3, 112, 112] refuses batch 1); absent when they ran at batch 1.
   */
  batch1TimedAt?: number;
  /** E.g. "measured while other processes ran". */
  note: string | null;
}

/** Per-layer sensitivity from the mixed-precision search. */
export interface Sensitivity {
  /** What `metric` means, e.g. "mean cosine loss when only this layer is quantized". */
  metric: string;
  layers: { layer: string; op: string; metric: number }[];
}

export interface Report {
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  role: ModelRole;
  /** Variant label, e.g. `int8`, `tensorrt-int8`; the report folder is `<reference.name>.<variant>`. */
  variantName: string;
  reference: ModelFile;
  variant: ModelFile;
  /** variant.sizeBytes / reference.sizeBytes. */
  sizeRatio: number;
  provenance: Provenance;
  evaluationData: EvaluationData;
  recognizer: RecognizerResults | null;
  detector: DetectorResults | null;
  speed: SpeedResults | null;
  sensitivity: Sensitivity | null;
  gates: GateResult;
  /** Things the reviewer must know (e.g. "not a face model: face-specific evaluation unavailable"). */
  warnings: string[];
}
