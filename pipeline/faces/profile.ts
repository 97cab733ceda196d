/**
 * Per-model preprocessing profiles, detected once from the graph the way InsightFace's model zoo does
 * (model_zoo.py routes by output count and input size; scrfd.py picks strides/anchors/keypoints from
 * the output count; arcface_onnx.py looks for Sub and Mul among the first nodes to tell graphs with
 * built-in normalisation), then recorded as a JSON-serialisable object and never re-guessed.
 * Every field can be overridden.
 */
import { FaceoptError } from '../errors.js';
import type { Dim, GraphSummary, ValueSummary } from './graph-summary.js';

export type Triple = readonly [number, number, number];
export type Role = 'detector' | 'recognizer';

interface CommonProfile {
  readonly role: Role;
  readonly inputName: string;
  /** [width, height] when the graph fixes it, null for dynamic H/W. */
  readonly inputSize: readonly [number, number] | null;
  /** Fixed batch size, or null when the batch dimension is dynamic. */
  readonly batch: number | null;
  /** Per-channel mean and std, in the model's channel order: input = (pixel - mean) / std. */
  readonly mean: Triple;
  readonly std: Triple;
  /** Channel order the model expects (InsightFace feeds RGB: BGR frames with swapRB). */
  readonly channelOrder: 'RGB' | 'BGR';
  readonly layout: 'NCHW';
  /** Why each choice was made, for reports. */
  readonly notes: readonly string[];
}

export interface DetectorProfile extends CommonProfile {
  readonly role: 'detector';
  /** Feature strides, smallest first (8,16,32 or 8,16,32,64,128). */
  readonly strides: readonly number[];
  /** Anchors per feature-map cell. */
  readonly numAnchors: number;
  /** Output names per stride, smallest stride first. kps is null for detectors without keypoints. */
  readonly outputs: { readonly scores: readonly string[]; readonly boxes: readonly string[]; readonly kps: readonly string[] | null };
  /** true for [B,N,C] outputs, false for unbatched [N,C], null when the graph does not say. */
  readonly batchedOutputs: boolean | null;
}

export interface RecognizerProfile extends CommonProfile {
  readonly role: 'recognizer';
  readonly inputSize: readonly [number, number];
  readonly output: string;
  /** Embedding length when the graph declares it. */
  readonly embeddingSize: number | null;
}

export type ModelProfile = DetectorProfile | RecognizerProfile;

/** Fields a caller may force instead of trusting detection. */
export interface ProfileOverrides {
  role?: Role;
  inputSize?: readonly [number, number];
  mean?: number | Triple;
  std?: number | Triple;
  channelOrder?: 'RGB' | 'BGR';
}

/** InsightFace SCRFD: blobFromImage(img, 1/128, mean 127.5, swapRB). */
const SCRFD_MEAN = 127.5;
const SCRFD_STD = 128;
/** InsightFace ArcFace without built-in normalisation. */
const ARCFACE_MEAN = 127.5;
const ARCFACE_STD = 127.5;

/** Output-count table of insightface/model_zoo/scrfd.py. */
const SCRFD_LAYOUTS: Record<number, { strides: number[]; numAnchors: number; kps: boolean }> = {
  6: { strides: [8, 16, 32], numAnchors: 2, kps: false },
  9: { strides: [8, 16, 32], numAnchors: 2, kps: true },
  10: { strides: [8, 16, 32, 64, 128], numAnchors: 1, kps: false },
  15: { strides: [8, 16, 32, 64, 128], numAnchors: 1, kps: true },
};

const num = (d: Dim | undefined): number | null => (typeof d === 'number' ? d : null);
const triple = (v: number | Triple): Triple => (typeof v === 'number' ? [v, v, v] : v);

/** The role InsightFace's ModelRouter would give this graph, or null when it would route it nowhere we handle. */
export function guessRole(graph: GraphSummary): Role | null {
  if (graph.outputs.length >= 5) return 'detector';
  const shape = graph.inputs[0]?.shape ?? [];
  const h = num(shape[2]);
  const w = num(shape[3]);
  // InsightFace routes exactly 112x112 to ArcFace; accept the 96..128 crops other recognizers use.
  if (graph.outputs.length === 1 && h !== null && w !== null && h >= 96 && h <= 128 && w >= 96 && w <= 128) return 'recognizer';
  return null;
}

/** arcface_onnx.py: Sub and Mul among the first 8 nodes mean the graph normalises its own input. */
function hasBuiltInNormalisation(graph: GraphSummary): boolean {
  const first = graph.firstNodes.slice(0, 8);
  const sub = first.some((n) => n.name.startsWith('Sub') || n.name.startsWith('_minus') || n.opType === 'Sub');
  const mul = first.some((n) => n.name.startsWith('Mul') || n.name.startsWith('_mul') || n.opType === 'Mul' || n.opType === 'Div');
  return sub && mul;
}

function describe(graph: GraphSummary): string {
  const i = graph.inputs[0];
  return `unknown (${graph.outputs.length} outputs, input ${i ? `[${i.shape.join(',')}]` : 'none'})`;
}

/**
 * Order SCRFD outputs into scores/boxes/kps per stride. InsightFace takes them by position
 * (all scores, then all boxes, then all kps, smallest stride first). Where every output declares its
 * last dimension (1, 4, 10) we match by shape instead, sorting each group by anchor count (largest
 * first = smallest stride), which also handles exporters that interleave outputs.
 */
function matchScrfdOutputs(outputs: readonly ValueSummary[], fmc: number, kps: boolean): DetectorProfile['outputs'] {
  const last = (o: ValueSummary) => num(o.shape[o.shape.length - 1]);
  const byLast = (c: number) => outputs.filter((o) => last(o) === c);
  const groups = [byLast(1), byLast(4), byLast(10)];
  const shapeMatch = groups[0].length === fmc && groups[1].length === fmc && groups[2].length === (kps ? fmc : 0);
  const anchors = (o: ValueSummary) => num(o.shape[o.shape.length - 2]);
  const sort = (g: ValueSummary[]) =>
    g.every((o) => anchors(o) !== null) ? [...g].sort((a, b) => (anchors(b) as number) - (anchors(a) as number)) : g;
  const names = (g: ValueSummary[]) => g.map((o) => o.name);
  if (shapeMatch) {
    return { scores: names(sort(groups[0])), boxes: names(sort(groups[1])), kps: kps ? names(sort(groups[2])) : null };
  }
  const pos = names([...outputs]);
  return { scores: pos.slice(0, fmc), boxes: pos.slice(fmc, 2 * fmc), kps: kps ? pos.slice(2 * fmc, 3 * fmc) : null };
}

/**
 * Anchors per cell: InsightFace's table says 2 for 3-stride and 1 for 5-stride models; where the graph
 * fixes both the input size and the stride-8 anchor count we derive it from the shapes instead.
 */
function anchorsFromShapes(graph: GraphSummary, scoreName: string, inputSize: readonly [number, number] | null, stride: number): number | null {
  const out = graph.outputs.find((o) => o.name === scoreName);
  const n = out ? num(out.shape[out.shape.length - 2]) : null;
  if (!inputSize || n === null) return null;
  const cells = Math.ceil(inputSize[0] / stride) * Math.ceil(inputSize[1] / stride);
  return n % cells === 0 ? n / cells : null;
}

/** Profile of a SCRFD detector graph; FACEOPT_ERR_GRAPH when its output layout is not one InsightFace knows. */
export function detectorProfile(graph: GraphSummary, overrides: ProfileOverrides = {}): DetectorProfile {
  const notes: string[] = [];
  const layout = SCRFD_LAYOUTS[graph.outputs.length];
  if (!layout) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', {
      reason: `a SCRFD detector has 6, 9, 10 or 15 outputs (3 or 5 strides, with or without keypoints); this graph has ${graph.outputs.length}`,
    });
  }
  const common = commonProfile(graph, overrides, SCRFD_MEAN, SCRFD_STD, notes);
  const outputs = matchScrfdOutputs(graph.outputs, layout.strides.length, layout.kps);
  const fromShapes = anchorsFromShapes(graph, outputs.scores[0], common.inputSize, layout.strides[0]);
  const numAnchors = fromShapes ?? layout.numAnchors;
  notes.push(`${graph.outputs.length} outputs: strides ${layout.strides.join('/')}, ${numAnchors} anchor(s)${fromShapes !== null ? ' (from output shapes)' : ''}, ${layout.kps ? 'with' : 'without'} keypoints`);
  const rank = graph.outputs.find((x) => x.name === outputs.scores[0])?.shape.length ?? 0;
  const batchedOutputs = rank === 3 ? true : rank === 2 ? false : null;
  return { ...common, role: 'detector', strides: layout.strides, numAnchors, outputs, batchedOutputs, notes };
}

/** Profile of an ArcFace-style recognizer graph (one output, fixed square-ish input). */
export function recognizerProfile(graph: GraphSummary, overrides: ProfileOverrides = {}): RecognizerProfile {
  const notes: string[] = [];
  if (graph.outputs.length !== 1) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `a recognizer has one output (the embedding); this graph has ${graph.outputs.length}` });
  }
  const common = commonProfile(graph, overrides, ARCFACE_MEAN, ARCFACE_STD, notes);
  if (!common.inputSize) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `recognizer input ${common.inputName} has dynamic height/width; pass the crop size as a profile override` });
  }
  const out = graph.outputs[0];
  const embeddingSize = num(out.shape[out.shape.length - 1]);
  notes.push(`one output ${out.name}, embedding size ${embeddingSize ?? 'dynamic'}`);
  return { ...common, role: 'recognizer', inputSize: common.inputSize, output: out.name, embeddingSize, notes };
}

function commonProfile(graph: GraphSummary, o: ProfileOverrides, mean: number, std: number, notes: string[]): Omit<CommonProfile, 'role'> {
  const input = graph.inputs[0];
  if (!input || input.shape.length !== 4 || num(input.shape[1]) !== 3) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', {
      reason: `expected one NCHW image input with 3 channels, got ${input ? `${input.name} [${input.shape.join(',')}]` : 'no input'}`,
    });
  }
  const h = num(input.shape[2]);
  const w = num(input.shape[3]);
  let inputSize: readonly [number, number] | null = h !== null && w !== null ? [w, h] : null;
  if (o.inputSize) {
    inputSize = o.inputSize;
    notes.push(`input size ${o.inputSize.join('x')} (override)`);
  }
  if (hasBuiltInNormalisation(graph)) {
    mean = 0;
    std = 1;
    notes.push('Sub and Mul among the first nodes: the graph normalises its input, feeding raw pixels (mean 0, std 1)');
  } else {
    notes.push(`normalisation (x - ${mean}) / ${std}`);
  }
  if (o.mean !== undefined || o.std !== undefined) notes.push('mean/std overridden');
  if (o.channelOrder) notes.push(`channel order ${o.channelOrder} (override)`);
  return {
    inputName: input.name,
    inputSize,
    batch: num(input.shape[0]),
    mean: triple(o.mean ?? mean),
    std: triple(o.std ?? std),
    channelOrder: o.channelOrder ?? 'RGB',
    layout: 'NCHW',
    notes,
  };
}

/**
 * Detect a model's profile. With `expected`, a graph recognised as the other role gives
 * FACEOPT_ERR_MODEL_ROLE (unless overrides.role forces it); `label` names the model in that error.
 */
export function detectProfile(graph: GraphSummary, overrides: ProfileOverrides = {}, expected?: Role, label = 'model'): ModelProfile {
  const guessed = guessRole(graph);
  const role = overrides.role ?? guessed;
  if (expected && role !== expected) {
    throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path: label, expected, actual: role ?? describe(graph) });
  }
  if (role === 'detector') return detectorProfile(graph, overrides);
  if (role === 'recognizer') return recognizerProfile(graph, overrides);
  throw new FaceoptError('FACEOPT_ERR_MODEL_ROLE', { path: label, expected: 'detector or recognizer', actual: describe(graph) });
}
