/**
 * Detector input sizes: which size a SCRFD graph runs at for a requested one. Kept apart from the
 * detector itself (no onnxruntime here), so the server checks `--det-size` against the file before it
 * listens, without loading the runtime on its event-loop thread.
 */
import { FaceoptError, checkNumber } from '../errors.js';
import { readGraphSummary } from './graph-summary.js';
import { detectorProfile, guessRole, type DetectorProfile, type ModelProfile, type ProfileOverrides } from './profile.js';

/** Default square input of a dynamic-input detector (InsightFace's det_size). */
export const DEFAULT_DET_SIZE = 640;

/**
 * The [width, height] a detector runs at for a requested size (N for NxN, or [width, height]): a
 * fixed-input graph only its own size, a dynamic one any multiple of 32 from 32 to 4096 (default 640).
 * FACEOPT_ERR_BAD_ARGUMENT naming the setting `name` otherwise.
 */
export function resolveDetSize(profile: DetectorProfile, requested: number | readonly [number, number] | undefined, name = '--det-size'): [number, number] {
  const req: [number, number] | null = requested === undefined ? null
    : typeof requested === 'number' ? [requested, requested] : [requested[0], requested[1]];
  if (req) {
    for (const [i, v] of req.entries()) checkNumber(i === 0 ? `${name} width` : `${name} height`, v, { min: 32, max: 4096, integer: true });
    if (req.some((v) => v % 32 !== 0)) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a multiple of 32', name, received: req.join('x') });
    }
  }
  if (profile.inputSize) {
    if (req && (req[0] !== profile.inputSize[0] || req[1] !== profile.inputSize[1])) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
        expected: `${profile.inputSize.join('x')} (this detector's fixed input size; use a dynamic-input export for other sizes)`,
        name,
        received: req.join('x'),
      });
    }
    return [profile.inputSize[0], profile.inputSize[1]];
  }
  return req ?? [DEFAULT_DET_SIZE, DEFAULT_DET_SIZE];
}

/**
 * `optimize`'s `--det-size` against the model it is given for: a detector's own rule (resolveDetSize: its
 * fixed size, or a multiple of 32), refused for a recognizer (its faces are aligned to its own input
 * size: the setting was ignored), free for a generic model (it sizes the graph's dynamic spatial axes).
 * Checked before any work: a fixed detector given another size failed in calibration, exit 70, and a
 * dynamic one was quantized at a size no detector run accepts.
 */
export function checkOptimizeDetSize(profile: ModelProfile | null, detSize: number | readonly [number, number] | undefined): void {
  if (detSize === undefined || !profile) return;
  if (profile.role === 'detector') { resolveDetSize(profile, detSize); return; }
  throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
    expected: `no --det-size for a recognizer (its faces are aligned to its ${profile.inputSize.join('x')} input; --det-size sizes a detector)`,
    name: '--det-size',
    received: typeof detSize === 'number' ? String(detSize) : detSize.join('x'),
  });
}

/**
 * A detector file's profile, read from its graph without opening a session; FACEOPT_ERR_MODEL_ROLE when
 * the file is not a detector (unless `overrides` say it is). ScrfdDetector.load and the server's
 * `--det-size` check both start here.
 */
export async function readDetectorProfile(path: string, overrides?: ProfileOverrides): Promise<DetectorProfile> {
  const graph = await readGraphSummary(path);
  if (graph.outputs.length < 5 && overrides?.role !== 'detector') {
    throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path, expected: 'detector', actual: guessRole(graph) ?? `a graph with ${graph.outputs.length} output(s)` });
  }
  return detectorProfile(graph, overrides);
}

/** resolveDetSize for a detector file (readDetectorProfile), naming the setting `name` in errors. */
export async function checkDetSize(path: string, requested: number | readonly [number, number], name = '--det-size'): Promise<[number, number]> {
  return resolveDetSize(await readDetectorProfile(path), requested, name);
}
