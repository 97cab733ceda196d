/**
 * Exact float rewrites done before Q/DQ insertion so every weight TensorRT sees is laid out
 * [output channels, ...] and quantized per channel on axis 0 (what TensorRT's per-channel weight
 * quantization expects for Conv and fully connected layers):
 *  - MatMul(A, W) with a constant 2-D W [K, N] and a 2-D A becomes Gemm(A, Wᵀ, transB=1);
 *  - Gemm(A, B, transB=0) with a constant B becomes Gemm(A, Bᵀ, transB=1).
 * Both are exact (the same products summed in the same order per output). Tensor names of
 * activations do not change, so calibration stats keep matching.
 */
import type { Graph } from '../onnx/graph.js';
import { DataType, attrInt, setAttr, type NodeProto } from '../onnx/proto.js';

function transpose2d(g: Graph, name: string): { name: string; dims: number[] } {
  const t = g.getTensor(name);
  const [k, n] = t.dims as [number, number];
  const src = g.getFloat(name);
  const out = new Float32Array(k * n);
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) out[j * k + i] = src[i * n + j]!;
  const outName = g.uniqueName(`${name}_transposed`);
  g.setTensor(outName, DataType.FLOAT, [n, k], out);
  return { name: outName, dims: [n, k] };
}

/** Length of a 1-D shape vector built from constants, Concat and Unsqueeze'd scalars, or undefined. */
function shapeVectorLength(g: Graph, t: string, depth = 0): number | undefined {
  if (depth > 8) return undefined;
  if (g.hasInitializer(t) || g.constantValue(t)) return g.getTensor(t).dims[0] ?? 1;
  const p = g.producer(t);
  if (p?.opType === 'Concat') {
    let total = 0;
    for (const i of p.input ?? []) {
      const len = i ? shapeVectorLength(g, i, depth + 1) : 0;
      if (len === undefined) return undefined;
      total += len;
    }
    return total;
  }
  if (p?.opType === 'Unsqueeze') {
    const src = g.producer(p.input?.[0] ?? '');
    // Gather with a scalar index gives a scalar; Unsqueeze of a scalar gives one element
    if (src?.opType === 'Gather' && src.input?.[1] && (g.hasInitializer(src.input[1]) || g.constantValue(src.input[1]))) {
      return g.getTensor(src.input[1]).dims.length === 0 ? 1 : undefined;
    }
  }
  return undefined;
}

/** True when `tensor` is known to be 2-D: from a Flatten(axis 1), a 2-element Reshape, or a recorded shape. */
function isRank2(g: Graph, tensor: string, ranks: Record<string, number>): boolean {
  if (ranks[tensor] !== undefined) return ranks[tensor] === 2;
  const p = g.producer(tensor);
  if (p?.opType === 'Flatten') return true;
  if (p?.opType === 'Gemm') return true;
  if (p?.opType === 'Reshape' && p.input?.[1]) return shapeVectorLength(g, p.input[1]) === 2;
  const vi = g.valueInfo(tensor);
  return vi?.shape?.length === 2;
}

export interface PrepareResult {
  /** Human-readable list of rewrites done. */
  rewrites: string[];
}

/**
 * Rewrite weighted ops of `g` (in place) so their constant weights are [out, in] with axis 0 the
 * output channel. `ranks` may give known tensor ranks (from a shape probe) for MatMul inputs.
 */
export function prepareForTensorrt(g: Graph, ranks: Record<string, number> = {}): PrepareResult {
  const rewrites: string[] = [];
  for (const n of [...g.nodes]) {
    if (n.opType === 'MatMul') {
      const [a, w] = n.input ?? [];
      if (!a || !w || !g.hasInitializer(w) || g.initializer(w)!.dataType !== DataType.FLOAT) continue;
      if (g.getTensor(w).dims.length !== 2 || !isRank2(g, a, ranks)) continue;
      const wt = transpose2d(g, w);
      const gemm: NodeProto = { opType: 'Gemm', name: n.name, input: [a, wt.name], output: [...(n.output ?? [])], attribute: [] };
      setAttr(gemm, 'transB', 1, 'int');
      g.proto.node![g.nodes.indexOf(n)] = gemm;
      g.invalidate();
      rewrites.push(`MatMul ${n.name} -> Gemm(transB=1) with ${w} transposed to [${wt.dims.join(',')}]`);
    } else if (n.opType === 'Gemm' && attrInt(n, 'transB', 0) === 0 && attrInt(n, 'transA', 0) === 0) {
      const b = n.input?.[1];
      if (!b || !g.hasInitializer(b) || g.initializer(b)!.dataType !== DataType.FLOAT || g.getTensor(b).dims.length !== 2) continue;
      const bt = transpose2d(g, b);
      n.input = n.input!.map((x, i) => (i === 1 ? bt.name : x));
      setAttr(n, 'transB', 1, 'int');
      g.invalidate();
      rewrites.push(`Gemm ${n.name}: transB 0 -> 1 with ${b} transposed to [${bt.dims.join(',')}]`);
    }
  }
  g.pruneUnused();
  return { rewrites };
}
