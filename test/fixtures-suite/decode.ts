/**
 * Independent read-back of encoded fixtures for the tests: decode the bytes with onnx-proto and count
 * what a reviewer would count (op histogram, float parameters, initializer storage), without trusting
 * the builder's own bookkeeping.
 */
import onnxProto from 'onnx-proto';

export type DecodedModel = onnxProto.onnx.ModelProto;

/** Decode ONNX bytes. */
export function decode(bytes: Uint8Array): DecodedModel {
  return onnxProto.onnx.ModelProto.decode(bytes);
}

/** Node count per op type. */
export function opHistogram(m: DecodedModel): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of m.graph!.node!) h[n.opType!] = (h[n.opType!] ?? 0) + 1;
  return h;
}

/** Number of float32 initializer elements (the usual "parameter count"). */
export function floatParams(m: DecodedModel): number {
  let total = 0;
  for (const t of m.graph!.initializer!) {
    if (t.dataType === 1) total += t.dims!.reduce((a: number, d) => a * Number(d), 1);
  }
  return total;
}

/** Declared dims of a value info: numbers, or dim_param strings. */
export function dims(v: onnxProto.onnx.IValueInfoProto): (number | string)[] {
  return v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
}

/** Initializer dims by name. */
export function initializerDims(m: DecodedModel): Map<string, number[]> {
  return new Map(m.graph!.initializer!.map((t) => [t.name!, t.dims!.map(Number)]));
}
