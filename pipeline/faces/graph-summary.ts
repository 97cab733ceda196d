/**
 * The few facts about an ONNX graph that face-model profiles are detected from: declared inputs and
 * outputs with their shapes, and the first nodes (InsightFace decides a recognizer's normalisation from
 * them). Kept as a plain, JSON-serialisable summary so profile detection is a pure function and tests can
 * feed hand-written summaries.
 */
import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import { FaceoptError } from '../errors.js';
import { requireFile } from '../fsutil.js';
import { decodeModel } from '../onnx/model.js';

/** A dimension: a number when fixed, the symbolic name (string) or null when dynamic. */
export type Dim = number | string | null;

export interface ValueSummary {
  readonly name: string;
  readonly shape: readonly Dim[];
}

export interface GraphSummary {
  /** Graph inputs that are not initializers, in graph order. */
  readonly inputs: readonly ValueSummary[];
  /** Graph outputs, in graph order (InsightFace relies on this order). */
  readonly outputs: readonly ValueSummary[];
  /** The first nodes in graph order (name and op type); 16 are kept. */
  readonly firstNodes: readonly { readonly name: string; readonly opType: string }[];
}

type ValueInfo = onnxProto.onnx.IValueInfoProto;

function shapeOf(v: ValueInfo): Dim[] {
  const dims = v.type?.tensorType?.shape?.dim ?? [];
  return dims.map((d) => {
    if (d.dimParam) return d.dimParam;
    if (d.dimValue !== undefined && d.dimValue !== null) {
      const n = Number(d.dimValue);
      return n > 0 ? n : null;
    }
    return null;
  });
}

/**
 * Summarise a decoded ModelProto: inputs (initializers excluded), outputs and the first 16 nodes.
 * Exposed so callers that already hold a decoded model do not parse it twice.
 */
export function summarizeModel(model: onnxProto.onnx.IModelProto): GraphSummary {
  const g = model.graph;
  if (!g) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: 'the model has no graph' });
  const initializers = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  return {
    inputs: (g.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map((v) => ({ name: v.name ?? '', shape: shapeOf(v) })),
    outputs: (g.output ?? []).map((v) => ({ name: v.name ?? '', shape: shapeOf(v) })),
    firstNodes: (g.node ?? []).slice(0, 16).map((n) => ({ name: n.name ?? '', opType: n.opType ?? '' })),
  };
}

/**
 * Read an ONNX file and summarise its graph. A missing file gives FACEOPT_ERR_FILE_NOT_FOUND, a file cut
 * short FACEOPT_ERR_MODEL_TRUNCATED, bytes that are not a ModelProto FACEOPT_ERR_NOT_ONNX.
 */
export async function readGraphSummary(file: string): Promise<GraphSummary> {
  requireFile(file);
  // the same diagnosis as everywhere a model is read: a truncated download is not "not ONNX"
  return summarizeModel(decodeModel(await readFile(file), file));
}
