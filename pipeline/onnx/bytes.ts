/**
 * Where a model file's bytes go (`faceopt inspect --bytes`): each initializer by what reads it (int8
 * weight data, their per-channel scales and zero points, int32 biases and the biases' scales, float
 * weights, activation scales), the graph's nodes and recorded shapes, and the rest of the header. It is
 * how docs/int8.md accounts for an INT8 file's size against the 0.27x goal: the int8 weights are about a
 * quarter of the float file, and everything else here is what stands between a small model and 0.25x.
 * Sizes are the protobuf encoding of each part as the file stores it (external data counts as its bytes).
 */
import { WEIGHTED_OPS, type Graph } from './graph.js';
import type { OnnxModel } from './model.js';
import { DataType, onnx, type NodeProto, type TensorProto } from './proto.js';

/** One part of the file. */
export interface BytePart {
  part: string;
  bytes: number;
  /** How many initializers or nodes it is made of. */
  count: number;
}

export interface ByteBreakdown {
  /** Bytes of the encoded model (the file, with external data inlined). */
  total: number;
  /** Largest part first; the parts add up to `total`. */
  parts: BytePart[];
  /** Bytes of tensor and node names and node names among them (initializer, node, input and output names). */
  nameBytes: number;
  /**
   * The file's own size where the caller knows it: it differs from `total` for a file another tool
   * encoded otherwise (another field order, packed or unpacked values), or with external data.
   */
  fileBytes?: number;
}

const INT8_TYPES: ReadonlySet<number> = new Set([DataType.INT8, DataType.UINT8]);

/** The parts, in the order they are listed when equal. */
export const BYTE_PARTS = [
  'int8 weights',
  'weight scales',
  'weight zero points',
  'int32 biases',
  'bias scales',
  'float weights',
  'float biases',
  'activation scales and zero points',
  'other constants',
  'graph nodes',
  'recorded shapes (value_info)',
  'header, inputs and outputs',
] as const;
export type BytePartName = typeof BYTE_PARTS[number];

/** Whether tensor `name` reaches a weighted op's weight input (directly, or through Cast/Mul/Reshape that cast int8 back). */
function feedsWeights(g: Graph, name: string, depth = 0): boolean {
  if (depth > 3) return false;
  return g.consumers(name).some((c) => (WEIGHTED_OPS.has(c.opType ?? '') && c.input?.[1] === name)
    || (['Cast', 'Mul', 'Reshape', 'DequantizeLinear'].includes(c.opType ?? '') && feedsWeights(g, c.output?.[0] ?? '', depth + 1)));
}

/** The role of initializer `t` from its first consumer. */
function initializerPart(g: Graph, t: TensorProto): BytePartName {
  const name = t.name ?? '';
  const type = t.dataType ?? 0;
  for (const c of g.consumers(name)) {
    const i = (c.input ?? []).indexOf(name);
    const op = c.opType ?? '';
    const x = g.initializer(c.input?.[0] ?? '');
    if (op === 'DequantizeLinear') {
      if (i === 0) return type === DataType.INT32 ? 'int32 biases' : INT8_TYPES.has(type) && feedsWeights(g, c.output?.[0] ?? '') ? 'int8 weights' : 'other constants';
      if (!x) return 'activation scales and zero points';
      const weight = x.dataType === DataType.INT32 ? 'bias' : 'weight';
      return i === 1 ? `${weight} scales` : weight === 'bias' ? 'bias scales' : 'weight zero points';
    }
    if (op === 'QuantizeLinear') return i === 0 ? 'other constants' : 'activation scales and zero points';
    if (op === 'Cast' && INT8_TYPES.has(type) && feedsWeights(g, c.output?.[0] ?? '')) return 'int8 weights';
    if (op === 'Mul' && feedsWeights(g, c.output?.[0] ?? '')) {
      const other = c.input?.find((s) => s !== name) ?? '';
      if (g.producer(other)?.opType === 'Cast') return 'weight scales';
    }
    if (WEIGHTED_OPS.has(op) && i === 1) return 'float weights';
    if (WEIGHTED_OPS.has(op) && i === 2) return 'float biases';
  }
  return 'other constants';
}

const encoded = {
  tensor: (t: TensorProto) => onnx.TensorProto.encode(t).finish().length,
  node: (n: NodeProto) => onnx.NodeProto.encode(n).finish().length,
};

/** Bytes of a protobuf length-delimited field of `len` bytes (tag + length varint + payload). */
function fieldBytes(len: number): number {
  let v = 1;
  for (let x = len; x >= 0x80; x >>>= 7) v++;
  return 1 + v + len;
}

/** Break the encoded model down by part (see the module comment). */
export function byteBreakdown(model: OnnxModel): ByteBreakdown {
  const g = model.graph;
  const bytes = new Map<BytePartName, BytePart>();
  const add = (part: BytePartName, n: number) => {
    const p = bytes.get(part) ?? { part, bytes: 0, count: 0 };
    p.bytes += n;
    p.count += 1;
    bytes.set(part, p);
  };
  let nameBytes = 0;
  for (const t of g.proto.initializer ?? []) {
    add(initializerPart(g, t), fieldBytes(encoded.tensor(t)));
    nameBytes += Buffer.byteLength(t.name ?? '');
  }
  for (const n of g.nodes) {
    add('graph nodes', fieldBytes(encoded.node(n)));
    for (const s of [n.name ?? '', ...(n.input ?? []), ...(n.output ?? [])]) nameBytes += Buffer.byteLength(s);
  }
  for (const v of g.proto.valueInfo ?? []) add('recorded shapes (value_info)', fieldBytes(onnx.ValueInfoProto.encode(v).finish().length));
  const total = model.toBytes().length;
  const counted = [...bytes.values()].reduce((s, p) => s + p.bytes, 0);
  bytes.set('header, inputs and outputs', { part: 'header, inputs and outputs', bytes: total - counted, count: 1 });
  const order = (p: BytePart) => BYTE_PARTS.indexOf(p.part as BytePartName);
  const parts = [...bytes.values()].filter((p) => p.bytes > 0).sort((a, b) => b.bytes - a.bytes || order(a) - order(b));
  return { total, parts, nameBytes };
}
