/**
 * The shape rewrites TensorRT plans need, each exact and each checked by running the graph:
 *  - recognizers get a dynamic batch dimension, so one engine serves every batch in its profile:
 *    the input's batch becomes symbolic, Reshape shape constants that hard-code a batch of 1 are
 *    rewritten (1 -> 0, "copy the input's batch", when the Reshape's data carries the batch on axis
 *    0; 1 -> -1 under allowzero=1), Resize `sizes` constants become `scales`, stale value_info is
 *    dropped, and outputs take the symbolic batch. The result must run at batch 2 with the first
 *    sample equal to a batch-1 run, or the rewrite is refused with the node that blocks it.
 *  - detectors get a fixed input size (`--det-size`): input dims set, constant Resize sizes turned
 *    into scales (so FPN upsampling follows the new size), value_info dropped and output dims taken
 *    from a run at the new size.
 */
import { FaceoptError } from '../errors.js';
import type { OnnxModel } from '../onnx/model.js';
import type { Graph } from '../onnx/graph.js';
import { DataType, attrInt, attrInts, onnx, type NodeProto, type ValueInfoProto } from '../onnx/proto.js';
import { probeModel, seededInput } from './probe.js';

/** A shape to write into a ValueInfoProto: numbers, symbolic names, or null for unknown. */
type Dim = number | string | null;

function setShape(v: ValueInfoProto, dims: readonly Dim[]): void {
  v.type ??= { tensorType: { elemType: DataType.FLOAT } };
  v.type.tensorType ??= { elemType: DataType.FLOAT };
  v.type.tensorType.shape = onnx.TensorShapeProto.create({
    dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
  });
}

/** A constant int64 vector feeding `name` (initializer or Constant node), or undefined. */
function constInts(g: Graph, name: string): number[] | undefined {
  if (!name || (!g.hasInitializer(name) && !g.constantValue(name))) return undefined;
  const t = g.getTensor(name);
  if (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32) return undefined;
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/**
 * Which axis carries the batch for each tensor reachable from the graph input (axis 0 at the input),
 * following Transpose permutations; tensors where it cannot be told are left out.
 */
export function batchAxes(g: Graph, inputName: string): Map<string, number> {
  const axis = new Map<string, number>([[inputName, 0]]);
  const metadataOps = new Set(['Shape', 'Size', 'Constant', 'ConstantOfShape', 'NonZero']);
  for (const n of g.nodes) {
    const op = n.opType ?? '';
    if (metadataOps.has(op)) continue;
    const ins = n.input ?? [];
    const first = ins.find((i) => i && axis.has(i));
    if (first === undefined) continue;
    const a = axis.get(first)!;
    let out: number | undefined = a;
    if (op === 'Transpose') {
      const perm = attrInts(n, 'perm');
      out = perm ? perm.indexOf(a) : undefined;
      if (out === -1) out = undefined;
    } else if (op === 'Reshape') {
      out = first === ins[0] && a === 0 ? 0 : undefined;
    } else if (op === 'Flatten') {
      out = a === 0 && attrInt(n, 'axis', 1) >= 1 ? 0 : undefined;
    } else if (op === 'Squeeze' || op === 'Unsqueeze') {
      const axes = attrInts(n, 'axes') ?? constInts(g, ins[1] ?? '') ?? [];
      out = axes.every((x) => x > a) ? a : undefined;
    } else if (op === 'Gather') {
      out = first === ins[0] && attrInt(n, 'axis', 0) > a ? a : undefined;
    } else if (op === 'Gemm' || op === 'MatMul') {
      out = first === ins[0] && a === 0 ? 0 : undefined;
    }
    if (out === undefined) continue;
    for (const o of n.output ?? []) if (o) axis.set(o, out);
  }
  return axis;
}

/**
 * Replace constant `sizes` of Resize nodes by the equivalent `scales`, given the real dims of each
 * Resize input (from a probe). Exact when the ratio is representable (nearest/linear upsampling by
 * integer factors, as in FPN necks). Returns the rewrites done.
 */
export function resizeSizesToScales(g: Graph, inputDims: Record<string, number[]>): string[] {
  const done: string[] = [];
  for (const n of g.nodes) {
    if (n.opType !== 'Resize') continue;
    const sizes = constInts(g, n.input?.[3] ?? '');
    if (!sizes) continue;
    const x = n.input![0]!;
    const dims = inputDims[x];
    if (!dims || dims.length !== sizes.length) {
      throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `Resize ${n.name} has constant sizes [${sizes.join(',')}] but the rank of its input ${x} is unknown` });
    }
    const scales = sizes.map((s, i) => Math.fround(s / dims[i]!));
    sizes.forEach((s, i) => {
      if (Math.floor(dims[i]! * scales[i]!) !== s) {
        throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `Resize ${n.name}: size ${s} from ${dims[i]} is not an exact scale, so the graph cannot follow a new input size` });
      }
    });
    const name = g.uniqueName(`${n.name || x}_scales`);
    g.setTensor(name, DataType.FLOAT, [scales.length], Float32Array.from(scales));
    const old = n.input![3]!;
    n.input = [x, n.input![1] ?? '', name];
    g.invalidate();
    // the sizes no node reads any more (onnxruntime warned of them at every load of the bundle's model.onnx)
    if (g.hasInitializer(old) && !g.isRead(old)) g.removeInitializer(old);
    done.push(`Resize ${n.name}: constant sizes [${sizes.join(',')}] -> scales [${scales.join(',')}]`);
  }
  return done;
}

function resizesWithConstantSizes(g: Graph): NodeProto[] {
  return g.nodes.filter((n) => n.opType === 'Resize' && constInts(g, n.input?.[3] ?? '') !== undefined);
}

function staticDims(shape: (number | string | null)[] | null, what: string): number[] {
  if (!shape || shape.some((d) => typeof d !== 'number')) {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `${what} has dims [${(shape ?? []).join(',')}], which are not all fixed` });
  }
  return shape as number[];
}

export interface BatchRewriteResult {
  /** The symbolic batch dim name used on the input and outputs. */
  batchDim: string;
  rewrites: string[];
  /** Output dims without the batch (per output), as measured. */
  outputDims: Record<string, number[]>;
}

/**
 * Make the batch dimension of a recognizer dynamic (mutates `model`), then check by running it at
 * batch 1 and 2 that sample 0 is unchanged. FACEOPT_ERR_GRAPH names what blocks the rewrite.
 */
export async function makeBatchDynamic(model: OnnxModel, opts: { dimName?: string; tolerance?: number } = {}): Promise<BatchRewriteResult> {
  const g = model.graph;
  const input = g.proto.input!.find((v) => v.name === g.inputs[0]?.name);
  if (!input) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: 'the model has no graph input' });
  const shape = g.inputs[0]!.shape ?? [];
  if (shape.length < 2) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `input ${input.name} has rank ${shape.length}; a batched input needs rank >= 2` });
  const inner = staticDims(shape.slice(1), `input ${input.name} (after the batch)`);
  const batchDim = typeof shape[0] === 'string' && shape[0] ? shape[0] : (opts.dimName ?? 'batch');
  const rewrites: string[] = [];

  const resizes = resizesWithConstantSizes(g);
  if (resizes.length) {
    const probe = await probeModel(model, [1, ...inner], { tensors: resizes.map((n) => n.input![0]!), what: 'the original graph' });
    rewrites.push(...resizeSizesToScales(g, probe.dims));
  }

  const axes = batchAxes(g, input.name!);
  for (const n of g.nodes) {
    if (n.opType !== 'Reshape') continue;
    const [data, shapeName] = n.input ?? [];
    const values = constInts(g, shapeName ?? '');
    if (!data || !shapeName || !values || axes.get(data) !== 0 || values[0] !== 1) continue;
    const allowZero = attrInt(n, 'allowzero', 0) === 1;
    const next = [...values];
    if (!allowZero) next[0] = 0;
    else if (!values.includes(-1)) next[0] = -1;
    else throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `Reshape ${n.name} (allowzero=1) hard-codes batch 1 in [${values.join(',')}] next to a -1, so the batch cannot be made dynamic` });
    const name = g.uniqueName(`${shapeName}_dynamic_batch`);
    g.setTensor(name, DataType.INT64, [next.length], BigInt64Array.from(next, (v) => BigInt(v)));
    n.input = [data, name];
    g.invalidate();
    rewrites.push(`Reshape ${n.name}: shape [${values.join(',')}] -> [${next.join(',')}]`);
  }

  setShape(input, [batchDim, ...inner]);
  g.dropValueInfo(g.proto.valueInfo!.map((v) => v.name ?? ''));
  for (const o of g.proto.output!) if (o.type?.tensorType) o.type.tensorType.shape = null;
  g.pruneUnused();
  g.invalidate();

  // check: batch 2 reproduces the batch-1 result of sample 0, and learn which output dims are the batch
  const per = inner.reduce((a, b) => a * b, 1);
  const a = seededInput(per, 11);
  const b = seededInput(per, 12);
  const two = new Float32Array(2 * per);
  two.set(a, 0);
  two.set(b, per);
  const r1 = await probeModel(model, [1, ...inner], { data: a, what: 'the batch-dynamic graph' });
  const r2 = await probeModel(model, [2, ...inner], { data: two, what: 'the batch-dynamic graph' });
  const outputDims: Record<string, number[]> = {};
  const tol = opts.tolerance ?? 1e-4;
  for (const o of g.proto.output!) {
    const name = o.name!;
    const d1 = r1.dims[name]!;
    const d2 = r2.dims[name]!;
    if (d1[0] !== 1 || d2[0] !== 2 || d1.length !== d2.length || d1.slice(1).some((d, i) => d !== d2[i + 1])) {
      const suspects = g.nodes.filter((n) => n.opType === 'Reshape' && constInts(g, n.input?.[1] ?? '')?.[0] === 1).map((n) => n.name);
      throw new FaceoptError('FACEOPT_ERR_GRAPH', {
        reason: `output ${name} has dims [${d1.join(',')}] at batch 1 but [${d2.join(',')}] at batch 2, so the batch does not flow through the graph${suspects.length ? ` (check ${suspects.join(', ')})` : ''}`,
      });
    }
    const v1 = r1.values[name];
    const v2 = r2.values[name];
    if (v1 && v2) {
      let scale = 0;
      for (const x of v1) scale = Math.max(scale, Math.abs(x));
      for (let i = 0; i < v1.length; i++) {
        if (Math.abs(v1[i]! - v2[i]!) > tol * Math.max(1, scale)) {
          throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `output ${name}: sample 0 differs between batch 1 and batch 2 runs (${v1[i]} vs ${v2[i]} at ${i}), so the batch mixes samples` });
        }
      }
    }
    outputDims[name] = d1.slice(1);
    setShape(o, [batchDim, ...d1.slice(1)]);
  }
  return { batchDim, rewrites, outputDims };
}

export interface InputSizeResult {
  inputDims: number[];
  outputDims: Record<string, number[]>;
  rewrites: string[];
}

/**
 * Fix a detector's input to `width` x `height` (mutates `model`): input dims set, constant Resize
 * sizes turned into scales, value_info dropped, output dims set from a run at the new size.
 */
export async function fixInputSize(model: OnnxModel, width: number, height: number): Promise<InputSizeResult> {
  const g = model.graph;
  const input = g.proto.input!.find((v) => v.name === g.inputs[0]?.name);
  if (!input) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: 'the model has no graph input' });
  const shape = g.inputs[0]!.shape ?? [];
  if (shape.length !== 4 || typeof shape[1] !== 'number') {
    throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `detector input ${input.name} has dims [${shape.join(',')}]; expected [N, C, H, W] with a fixed C` });
  }
  const batch = typeof shape[0] === 'number' ? shape[0] : 1;
  const rewrites: string[] = [];
  const resizes = resizesWithConstantSizes(g);
  if (resizes.length) {
    const original = staticDims(shape, `input ${input.name}`);
    const probe = await probeModel(model, original, { tensors: resizes.map((n) => n.input![0]!), what: 'the original graph' });
    rewrites.push(...resizeSizesToScales(g, probe.dims));
  }
  const inputDims = [batch, shape[1], height, width];
  if (shape[2] !== height || shape[3] !== width) rewrites.push(`input ${input.name}: [${shape.join(',')}] -> [${inputDims.join(',')}]`);
  setShape(input, inputDims);
  g.dropValueInfo(g.proto.valueInfo!.map((v) => v.name ?? ''));
  for (const o of g.proto.output!) if (o.type?.tensorType) o.type.tensorType.shape = null;
  g.invalidate();
  const probe = await probeModel(model, inputDims, { what: `the detector at ${width}x${height}` });
  const outputDims: Record<string, number[]> = {};
  for (const o of g.proto.output!) {
    outputDims[o.name!] = probe.dims[o.name!]!;
    setShape(o, probe.dims[o.name!]!);
  }
  return { inputDims, outputDims, rewrites };
}
