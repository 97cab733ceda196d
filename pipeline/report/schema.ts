/**
 * Runtime validation of a parsed report.json against the Report type. The checkers are typed so the
 * compiler insists that every field of every interface has a checker of exactly its type (a field added to
 * types.ts without a checker here is a compile error), and a failure names the JSON path:
 * "recognizer.cosine.mean: expected a finite number, got \"x\"".
 */
import type { GateCheck, GateResult, GateThresholds } from '../evaluate/gates.js';
import type { AccuracyDelta, CosineSummary, DetectionComparison, FoldResult, KFoldAccuracy, LatencySummary, RocPoint, TarAtFar, VerificationResult } from '../evaluate/metrics.js';
import type { DetectorResults, EvaluationData, ModelFile, ModelSpeed, Provenance, RecognizerResults, Report, Sensitivity, SpeedResults } from './types.js';

/** Thrown by checkers; loadReport turns it into FACEOPT_ERR_REPORT. */
export class SchemaError extends Error {
  constructor(readonly path: string, expected: string, got: unknown) {
    super(`${path || '(root)'}: expected ${expected}, got ${describe(got)}`);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

/** A checker of values of type T; the phantom member makes Check<T> invariant in T. */
export interface Check<T> {
  (value: unknown, path: string): void;
  readonly _type?: (t: T) => T;
}

const make = <T>(fn: (value: unknown, path: string) => void): Check<T> => fn as Check<T>;
const at = (path: string, key: string | number): string => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key);

export const num = make<number>((v, p) => { if (typeof v !== 'number' || !Number.isFinite(v)) throw new SchemaError(p, 'a finite number', v); });
export const int = make<number>((v, p) => { if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new SchemaError(p, 'a non-negative integer', v); });
export const str = make<string>((v, p) => { if (typeof v !== 'string') throw new SchemaError(p, 'a string', v); });
export const bool = make<boolean>((v, p) => { if (typeof v !== 'boolean') throw new SchemaError(p, 'true or false', v); });

export function oneOf<const V extends readonly (string | number)[]>(...values: V): Check<V[number]> {
  return make((v, p) => { if (!values.includes(v as string | number)) throw new SchemaError(p, `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`, v); });
}

export function nullable<T>(c: Check<T>): Check<T | null> {
  return make((v, p) => { if (v !== null) c(v, p); });
}

export function optional<T>(c: Check<T>): Check<T | undefined> {
  return make((v, p) => { if (v !== undefined) c(v, p); });
}

export function arr<T>(c: Check<T>): Check<T[]> {
  return make((v, p) => {
    if (!Array.isArray(v)) throw new SchemaError(p, 'an array', v);
    v.forEach((x, i) => c(x, at(p, i)));
  });
}

export function tuple2<A, B>(a: Check<A>, b: Check<B>): Check<[A, B]> {
  return make((v, p) => {
    if (!Array.isArray(v) || v.length !== 2) throw new SchemaError(p, 'an array of 2', v);
    a(v[0], at(p, 0));
    b(v[1], at(p, 1));
  });
}

export function record<T>(c: Check<T>): Check<Record<string, T>> {
  return make((v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SchemaError(p, 'an object', v);
    for (const [k, x] of Object.entries(v)) c(x, at(p, k));
  });
}

/** Object checker: one checker per key of T, no key left out. Unknown extra keys are allowed. */
export function obj<T>(fields: { [K in keyof T]-?: Check<T[K]> }): Check<T> {
  return make((v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SchemaError(p, 'an object', v);
    for (const [k, c] of Object.entries(fields) as [string, Check<unknown>][]) c((v as Record<string, unknown>)[k], at(p, k));
  });
}

const scalar = make<string | number | boolean | null>((v, p) => {
  if (v !== null && typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) throw new SchemaError(p, 'a string, number, boolean or null', v);
});

const histogram = make<{ edges: number[]; counts: number[] }>((v, p) => {
  obj<{ edges: number[]; counts: number[] }>({ edges: arr(num), counts: arr(int) })(v, p);
  const h = v as { edges: number[]; counts: number[] };
  if (h.edges.length !== h.counts.length + 1) throw new SchemaError(at(p, 'edges'), `${h.counts.length + 1} edges for ${h.counts.length} counts`, h.edges.length);
});

const cosineSummary = obj<CosineSummary>({ count: int, mean: num, p1: num, min: num, max: num, nonFinite: int, histogram });
const fold = obj<FoldResult>({ size: int, positives: int, threshold: num, accuracy: num });
const kFold = obj<KFoldAccuracy>({ folds: int, foldMode: oneOf('lfw-sets', 'consecutive'), accuracyMean: num, accuracyStd: num, perFold: arr(fold) });
const tar = obj<TarAtFar>({ far: num, tar: nullable(num), threshold: nullable(num), falseAccepts: int, achievedFar: nullable(num), resolved: bool, note: optional(str) });
const rocPoint = obj<RocPoint>({ fpr: num, tpr: num, threshold: nullable(num) });
const verificationResult = obj<VerificationResult>({
  pairs: int, positives: int, negatives: int,
  bestThreshold: obj({ threshold: num, accuracy: num }),
  kFold, tarAtFar: arr(tar),
  roc: obj({ auc: nullable(num), points: arr(rocPoint) }),
});
const delta = obj<AccuracyDelta>({
  reference: num, variant: num, delta: num, perFold: arr(num), foldStd: num, foldMin: num, foldMax: num, fixed: int, broken: int,
  bootstrap: obj<AccuracyDelta['bootstrap']>({ resamples: int, seed: num, confidence: num, low: num, high: num, thresholdsRechosen: optional(bool) }),
});
const detection = obj<DetectionComparison>({
  images: int, iouThreshold: num, referenceFaces: int, candidateFaces: int, matched: int,
  recall: nullable(num), precision: nullable(num), meanIou: nullable(num),
  keypointError: nullable(obj({ normalization: oneOf('sqrt(w*h) of the reference box'), faces: int, mean: num, p95: num, max: num })),
  scoreDrift: nullable(obj({ meanAbs: num, maxAbs: num, meanSigned: num })),
  missedScores: optional(arr(num)),
  keypointsLost: optional(int),
});
const latency = obj<LatencySummary>({ samples: int, meanMs: num, p50Ms: num, p95Ms: num, minMs: num, maxMs: num });
const modelSpeed = obj<ModelSpeed>({ batch1: latency, batch8: nullable(latency), sessionStartMs: num, peakMemoryBytes: nullable(int) });
const speed = obj<SpeedResults>({
  executionProvider: str, threads: nullable(int), reference: modelSpeed, variant: modelSpeed,
  speedup: obj({ batch1: num, batch8: nullable(num) }),
  blockSpeedups: optional(obj({ batch1: arr(num), batch8: nullable(arr(num)) })),
  batch1TimedAt: optional(int),
  note: nullable(str),
});
const recognizer = obj<RecognizerResults>({
  cosine: cosineSummary,
  verification: nullable(obj({ pairsFile: str, skippedPairs: int, reference: verificationResult, variant: verificationResult, delta })),
});
const detector = obj<DetectorResults>({
  inputSize: tuple2(int, int), vsReference: detection,
  vsGroundTruth: nullable(obj({ boxFiles: arr(str), reference: detection, variant: detection })),
  faceFree: nullable(obj({ images: int, referenceDetections: int, variantDetections: int })),
});
const modelFile = obj<ModelFile>({ name: str, path: str, sha256: str, sizeBytes: int, precision: str });
const provenance = obj<Provenance>({
  toolVersion: str, createdAt: str, command: nullable(str),
  machine: obj<Provenance['machine']>({ cpuModel: str, cores: int, int8Dot: optional(str), totalMemoryBytes: int, platform: str, arch: str, nodeVersion: str, onnxruntimeVersion: str }),
  calibration: nullable(obj({ method: str, images: int, config: record(scalar), statsPath: nullable(str), statsSha256: str })),
  floatLayers: arr(obj({ layer: str, op: str, reason: str })),
  madeBy: optional(nullable(obj({ command: nullable(str), warnings: arr(str) }))),
});
const evaluationData = obj<EvaluationData>({
  facesSource: nullable(str), pairsFile: nullable(str), boxFiles: arr(str),
  split: obj({
    method: oneOf('by-identity', 'list', 'separate-sources', 'none'), description: str,
    calibrationImages: int, evaluationImages: int,
    calibrationIdentities: nullable(int), evaluationIdentities: nullable(int), sharedIdentities: nullable(int),
  }),
  alignment: optional(nullable(obj({ detector: str, detectorSha256: str, scoreThreshold: num, face: str }))),
});
const sensitivity = obj<Sensitivity>({ metric: str, layers: arr(obj({ layer: str, op: str, metric: num })) });
const thresholds = obj<GateThresholds>({
  recognizer: obj({ minMeanCosine: num, minMinCosine: num, minAccuracyDeltaPp: num }),
  detector: obj({ minRecall: num, maxKeypointError: num }),
});
const gateCheck = obj<GateCheck>({ id: str, status: oneOf('pass', 'fail', 'skipped'), measured: nullable(num), threshold: num, comparator: oneOf('>=', '<='), sentence: str });
const gates = obj<GateResult>({ pass: bool, reasons: arr(str), checks: arr(gateCheck), thresholds });

/** The checker of a whole Report (schema version 1). */
export const reportSchema: Check<Report> = obj<Report>({
  schemaVersion: oneOf(1),
  role: oneOf('recognizer', 'detector', 'generic'),
  variantName: str,
  reference: modelFile,
  variant: modelFile,
  sizeRatio: num,
  provenance,
  evaluationData,
  recognizer: nullable(recognizer),
  detector: nullable(detector),
  speed: nullable(speed),
  sensitivity: nullable(sensitivity),
  gates,
  warnings: arr(str),
});
