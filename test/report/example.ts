/**
 * Realistic example reports built from hand-made data with the real metric functions: a recognizer INT8
 * variant (600 faces, 600 LFW-style pairs, latency samples, sensitivity of 40 layers) and a detector
 * variant. Deterministic (seeded), so tests can assert exact renderings.
 */
import { evaluateGates, type GateThresholds } from '../../pipeline/evaluate/gates.js';
import { compareDetections, compareVerification, cosineSummary, latencySummary, mulberry32, type Detection } from '../../pipeline/evaluate/metrics.js';
import { pairedSpeedup } from '../../pipeline/evaluate/speed.js';
import type { Report } from '../../pipeline/report/types.js';

const machine = {
  cpuModel: 'Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz', cores: 2, totalMemoryBytes: 8 * 1024 ** 3,
  platform: 'linux', arch: 'x64', nodeVersion: 'v20.20.2', onnxruntimeVersion: '1.30.0',
};

function samples(rand: () => number, n: number, base: number, spread: number): number[] {
  return Array.from({ length: n }, () => base + spread * rand() ** 3);
}

/** A recognizer report; `damage` lowers the variant's agreement so gates fail. */
export function exampleRecognizerReport(opts: { damage?: number; thresholds?: GateThresholds } = {}): Report {
  const damage = opts.damage ?? 0;
  const rand = mulberry32(2024);
  const cosines = Array.from({ length: 600 }, () => 0.9988 + 0.0011 * (rand() - 0.5) - damage * rand());
  cosines[17] = 0.9812;
  cosines[401] = 0.9763 - damage;
  const ref: number[] = [];
  const same: boolean[] = [];
  for (let i = 0; i < 300; i++) { ref.push(0.45 + 0.4 * rand() - (i % 50 === 0 ? 0.3 : 0)); same.push(true); }
  for (let i = 0; i < 300; i++) { ref.push(0.02 + 0.2 * rand() + (i % 75 === 0 ? 0.3 : 0)); same.push(false); }
  const variant = ref.map((s) => s + 0.02 * (rand() - 0.5) - 3 * damage * rand());
  const cmp = compareVerification(ref, variant, same, { seed: 1, resamples: 1000 });
  const b1r = latencySummary(samples(rand, 50, 4.1, 1.2));
  const b1v = latencySummary(samples(rand, 50, 1.55, 0.6));
  const b8r = latencySummary(samples(rand, 30, 29.5, 6));
  const b8v = latencySummary(samples(rand, 30, 9.8, 2.5));
  // per-block ratios as measureSpeed records them; the speed-up is their median
  const blocks1 = [2.41, 2.63, 2.5];
  const blocks8 = [3.02, 3.12];
  const partial: Omit<Report, 'gates'> = {
    schemaVersion: 1,
    role: 'recognizer',
    variantName: 'int8',
    reference: { name: 'mobileface_paddle_128d', path: '../shared/models/mobileface_paddle_128d.onnx', sha256: 'a'.repeat(64), sizeBytes: 4_113_472, precision: 'fp32' },
    variant: { name: 'mobileface_paddle_128d.int8', path: 'models/mobileface_paddle_128d.int8.onnx', sha256: 'b'.repeat(64), sizeBytes: 1_097_531, precision: 'int8-qdq' },
    sizeRatio: 1_097_531 / 4_113_472,
    provenance: {
      toolVersion: '0.1.0', createdAt: '2025-01-15T10:20:30.000Z',
      command: 'faceopt optimize --int8 --model ../shared/models/mobileface_paddle_128d.onnx --faces ../shared/faces/lfw',
      machine,
      calibration: { method: 'entropy', images: 300, config: { calibrationSize: 300, perChannel: true, symmetric: false, percentile: null }, statsPath: 'models/mobileface_paddle_128d.stats.json', statsSha256: 'c'.repeat(64) },
      floatLayers: [
        { layer: 'conv_1_conv2d', op: 'Conv', reason: 'first layer: sensitivity 0.00412 above the budget' },
        { layer: 'fc1 | out', op: 'Gemm', reason: 'embedding layer kept float by --exclude Gemm' },
      ],
    },
    evaluationData: {
      facesSource: '../shared/faces/lfw', pairsFile: '../shared/faces/lfw/pairs_devtest.tsv', boxFiles: [],
      split: { method: 'list', description: 'calibration.txt lists 300 images of 60 identities; evaluation uses the 1549 DevTest images of 963 other identities.', calibrationImages: 300, evaluationImages: 1549, calibrationIdentities: 60, evaluationIdentities: 963, sharedIdentities: 0 },
    },
    recognizer: {
      cosine: cosineSummary(cosines),
      verification: { pairsFile: '../shared/faces/lfw/pairs_devtest.tsv', skippedPairs: 2, reference: cmp.reference, variant: cmp.variant, delta: cmp.delta },
    },
    detector: null,
    speed: {
      executionProvider: 'cpu', threads: 2,
      reference: { batch1: b1r, batch8: b8r, sessionStartMs: 84.2, peakMemoryBytes: 96_468_992 },
      variant: { batch1: b1v, batch8: b8v, sessionStartMs: 61.7, peakMemoryBytes: 71_303_168 },
      speedup: { batch1: pairedSpeedup(blocks1, b1r, b1v), batch8: pairedSpeedup(blocks8, b8r, b8v) }, blockSpeedups: { batch1: blocks1, batch8: blocks8 }, note: null,
    },
    sensitivity: {
      metric: 'mean cosine loss when only this layer is quantized',
      layers: Array.from({ length: 40 }, (_, i) => ({ layer: `conv_${i + 1}`, op: i % 3 === 0 ? 'Conv' : i % 3 === 1 ? 'PRelu' : 'Add', metric: 0.004 / (1 + ((i * 7) % 40)) })),
    },
    warnings: [],
  };
  return { ...partial, gates: evaluateGates(partial, opts.thresholds) };
}

/** A detector report (SCRFD-shaped): the variant misses 1 of 120 faces and moves landmarks slightly. */
export function exampleDetectorReport(): Report {
  const rand = mulberry32(99);
  const images = Array.from({ length: 30 }, (_, img) => {
    const reference: Detection[] = [];
    const candidate: Detection[] = [];
    for (let f = 0; f < 4; f++) {
      const x = 50 + f * 150;
      const y = 40 + 10 * rand();
      const w = 90 + 20 * rand();
      const kps = [[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]].map(([a, b]) => [x + a! * w, y + b! * w] as [number, number]);
      const score = 0.7 + 0.29 * rand();
      reference.push({ box: [x, y, x + w, y + w], score, keypoints: kps });
      if (img === 7 && f === 2) continue;
      const d = () => (rand() - 0.5) * 1.2;
      candidate.push({ box: [x + d(), y + d(), x + w + d(), y + w + d()], score: score + (rand() - 0.5) * 0.02, keypoints: kps.map(([a, b]) => [a + d(), b + d()] as [number, number]) });
    }
    return { reference, candidate };
  });
  const base = exampleRecognizerReport();
  const partial: Omit<Report, 'gates'> = {
    ...base,
    role: 'detector',
    reference: { ...base.reference, name: 'scrfd_500m_bnkps', path: '../shared/models/scrfd_500m_bnkps.onnx', sizeBytes: 2_524_817 },
    variant: { ...base.variant, name: 'scrfd_500m_bnkps.int8', path: 'models/scrfd_500m_bnkps.int8.onnx', sizeBytes: 812_004 },
    sizeRatio: 812_004 / 2_524_817,
    recognizer: null,
    detector: {
      inputSize: [640, 640], vsReference: compareDetections(images),
      vsGroundTruth: null, faceFree: { images: 1, referenceDetections: 1, variantDetections: 1 },
    },
    sensitivity: null,
  };
  return { ...partial, gates: evaluateGates(partial) };
}
