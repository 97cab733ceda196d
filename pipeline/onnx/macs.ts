/**
 * Multiply-accumulate count of Conv/Gemm/MatMul (and their quantized forms) at a concrete input size.
 * Output shapes are measured, not inferred: the graph is run once on zeros in onnxruntime with the
 * relevant tensors exposed as outputs, so every op between inputs and the counted layers (Resize,
 * Reshape, Concat...) is handled exactly as the runtime does it.
 */
import type { OnnxModel } from './model.js';
import { makeValueInfo } from './graph.js';
import { DataType, attrInt, toNumber, type Int64, type NodeProto } from './proto.js';
import { createSession, floatTensor, runSession } from '../runtime.js';

export interface MacsResult {
  /** Input shapes used (symbolic dims resolved). */
  inputShapes: Record<string, number[]>;
  total: number;
  byOp: Record<string, number>;
  /** Per layer: name, op, MACs. */
  layers: { name: string; op: string; macs: number }[];
}

const COUNTED: Record<string, { weight: number; kind: 'conv' | 'gemm' | 'matmul' }> = {
  Conv: { weight: 1, kind: 'conv' },
  ConvInteger: { weight: 1, kind: 'conv' },
  QLinearConv: { weight: 3, kind: 'conv' },
  Gemm: { weight: 1, kind: 'gemm' },
  MatMul: { weight: 1, kind: 'matmul' },
  MatMulInteger: { weight: 1, kind: 'matmul' },
  QLinearMatMul: { weight: 3, kind: 'matmul' },
};

/**
 * Resolve an input's shape: symbolic or unknown dims become `batch` for the first axis and the
 * `spatial` size (H, W) for the last two axes of a 4-D image input.
 */
export function concreteShape(shape: (number | string | null)[] | null, opts: { batch?: number; spatial?: [number, number] } = {}): number[] {
  const dims = shape ?? [];
  const [h, w] = opts.spatial ?? [640, 640];
  return dims.map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    if (i === 0) return opts.batch ?? 1;
    if (dims.length === 4 && i === 2) return h;
    if (dims.length === 4 && i === 3) return w;
    return 1;
  });
}

/** Count MACs by running the model once at the given input size. */
export async function countMacs(model: OnnxModel, opts: { batch?: number; spatial?: [number, number] } = {}): Promise<MacsResult> {
  const probe = model.clone();
  const g = probe.graph;
  const counted = g.nodes.filter((n) => COUNTED[n.opType ?? ''] && (!n.domain || n.domain === 'ai.onnx' || n.domain === 'com.microsoft'));
  const exposed = new Set<string>(g.outputs.map((o) => o.name));
  const expose = (t: string | undefined) => {
    if (!t || exposed.has(t) || g.hasInitializer(t)) return;
    exposed.add(t);
    // element type unknown in general; onnxruntime accepts an output declared without a type only for
    // float graphs, so declare float for float layers and the quantized type otherwise
    g.proto.output!.push(makeValueInfo(t, 0, null));
  };
  for (const n of counted) {
    expose(n.output?.[0]);
    if (COUNTED[n.opType!]!.kind === 'matmul') expose(n.input?.[0]);
  }
  // onnxruntime requires a type on graph outputs: take it from value_info where known, else float
  for (const o of g.proto.output!) {
    if (!o.type?.tensorType?.elemType) {
      const known = g.valueInfo(o.name ?? '');
      const producer = g.producer(o.name ?? '');
      const quantOut = producer && ['QLinearConv', 'QLinearMatMul'].includes(producer.opType ?? '') ? DataType.UINT8
        : producer && ['ConvInteger', 'MatMulInteger'].includes(producer.opType ?? '') ? DataType.INT32 : DataType.FLOAT;
      o.type = { tensorType: { elemType: known?.elemType || quantOut } };
    }
  }
  const inputShapes: Record<string, number[]> = {};
  const feeds: Record<string, ReturnType<typeof floatTensor>> = {};
  for (const inp of g.inputs) {
    const dims = concreteShape(inp.shape, opts);
    inputShapes[inp.name] = dims;
    feeds[inp.name] = floatTensor(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }
  const session = await createSession(probe.toBytes(), { optimization: 'disabled' });
  let outputs;
  try {
    outputs = await runSession(session, feeds, [...exposed], 'macs probe');
  } finally {
    await session.release();
  }
  const shapeOf = (t: string) => (outputs[t]?.dims ?? []) as readonly number[];
  const weightDims = (n: NodeProto, idx: number) => {
    let name = n.input?.[idx] ?? '';
    // QDQ graphs: the weight reaches the layer through DequantizeLinear(int8 initializer)
    // (or, for weight-only float layers, through Cast + Mul)
    const dq = g.producer(name);
    if (dq?.opType === 'DequantizeLinear') name = dq.input?.[0] ?? '';
    else if (dq?.opType === 'Mul' && g.producer(dq.input?.[0] ?? '')?.opType === 'Cast') name = g.producer(dq.input![0]!)!.input?.[0] ?? '';
    return g.hasInitializer(name) ? g.getTensor(name).dims : undefined;
  };
  const layers: MacsResult['layers'] = [];
  const byOp: Record<string, number> = {};
  for (const n of counted) {
    const spec = COUNTED[n.opType!]!;
    const out = shapeOf(n.output![0]!);
    const outN = out.reduce((a, b) => a * b, 1);
    let macs = 0;
    if (spec.kind === 'conv') {
      const w = weightDims(n, spec.weight);
      if (w) macs = outN * w.slice(1).reduce((a, b) => a * b, 1);
    } else if (spec.kind === 'gemm') {
      const w = weightDims(n, 1);
      const transB = attrInt(n, 'transB', 0);
      if (w) macs = outN * (transB ? w[1]! : w[0]!);
    } else {
      // A may itself be a constant (MatMul(W, x)): initializers are not exposed, so take its stored dims
      const aName = n.input![0]!;
      const a = g.hasInitializer(aName) ? (g.initializer(aName)!.dims ?? []).map((d) => toNumber(d as Int64)) : shapeOf(aName);
      macs = outN * (a[a.length - 1] ?? 0);
    }
    layers.push({ name: n.name ?? '', op: n.opType!, macs });
    byOp[n.opType!] = (byOp[n.opType!] ?? 0) + macs;
  }
  return { inputShapes, total: layers.reduce((s, l) => s + l.macs, 0), byOp, layers };
}
