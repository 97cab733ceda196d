/**
 * Float regions that cost as little as possible. When mixed precision keeps an activation float, the
 * depthwise 1x1 convolutions of a `sign-dw` PRelu that read it (the Relu(+-x) halves and the slope) and
 * the Add that joins them would otherwise get their own QuantizeLinear/DequantizeLinear pairs: the halves
 * are int8-exact only on an int8 input's grid, so on a float input they only add rounding, and every
 * Q/DQ pair splits the float island into pieces onnxruntime cannot fuse. Measured on mobileface with
 * 24 tensors kept float: the PRelu of a float pre-activation ran as float convolutions with a
 * Quantize/Dequantize round trip between each, plus layout Transposes at every boundary.
 */
import type { Graph } from '../onnx/graph.js';
import type { NodeProto } from '../onnx/proto.js';

/** A depthwise 1x1 Conv without bias: the sign halves and the slope of the `sign-dw` PRelu form. */
function isPointwiseScale(g: Graph, n: NodeProto | undefined): boolean {
  if (n?.opType !== 'Conv' || (n.input?.[2] ?? '') !== '') return false;
  const w = n.input?.[1];
  if (!w || !g.hasInitializer(w)) return false;
  const dims = g.getTensor(w).dims.map(Number);
  const group = Number(n.attribute?.find((a) => a.name === 'group')?.i ?? 1);
  return dims.length === 4 && dims[1] === 1 && dims[2] === 1 && dims[3] === 1 && group === dims[0];
}

/** A pointwise-scale Conv, or the Relu right after one (a rectified half before Relu folding). */
function isPreluPart(g: Graph, n: NodeProto | undefined): boolean {
  return isPointwiseScale(g, n) || (n?.opType === 'Relu' && isPointwiseScale(g, g.producer(n.input?.[0] ?? '')));
}

/**
 * `floatTensors` grown over the PRelu parts that read them: a pointwise-scale Conv (see above) or the
 * Relu after one whose input is float makes a float output, and an Add whose inputs all come from such
 * parts and include a float one makes a float output. Other ops are left alone, so a float region never
 * spreads along the residual path. Runs before Relu folding, so a float half keeps its Relu.
 */
export function floatClosure(g: Graph, floatTensors: readonly string[]): string[] {
  const floats = new Set(floatTensors);
  if (!floats.size) return [];
  for (const n of g.nodes) { // topological order: one pass reaches the fixpoint
    const y = n.output?.[0];
    if (!y || floats.has(y)) continue;
    const ins = (n.input ?? []).filter((t) => t && !g.hasInitializer(t));
    if (isPreluPart(g, n) && floats.has(ins[0]!)) floats.add(y);
    else if (n.opType === 'Add' && ins.length === 2 && ins.some((t) => floats.has(t)) && ins.every((t) => isPreluPart(g, g.producer(t)))) floats.add(y);
  }
  return [...floats];
}
