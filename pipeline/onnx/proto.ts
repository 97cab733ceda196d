/**
 * The ONNX protobuf types (from onnx-proto / protobufjs) and small helpers for the wire format's quirks:
 * int64 fields arrive as `Long` objects, attributes are a tagged union, and data types are enum numbers.
 * Everything else in pipeline/onnx goes through these helpers instead of touching Long or tags directly.
 */
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
// eslint-disable-next-line @typescript-eslint/no-namespace
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;
export const AttrType = onnx.AttributeProto.AttributeType;

/** A protobuf int64 as it arrives from protobufjs. */
export type Int64 = number | { toNumber(): number };

/** Convert a protobuf int64 (number or Long) to a JS number. */
export function toNumber(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Human name of an ONNX tensor data type (e.g. 1 -> "float32"). */
export function dataTypeName(t: number): string {
  const names: Record<number, string> = {
    1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string',
    9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
  };
  return names[t] ?? `type${t}`;
}

/** Attribute values as plain JS. */
export type AttrValue = number | string | number[] | string[] | TensorProto | GraphProto;

/** Read attribute `name` of a node as plain JS (numbers for ints/floats, strings for bytes). */
export function getAttr(node: NodeProto, name: string): AttrValue | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  if (!a) return undefined;
  switch (a.type) {
    case AttrType.FLOAT: return a.f ?? 0;
    case AttrType.INT: return toNumber(a.i as Int64);
    case AttrType.STRING: return Buffer.from(a.s ?? new Uint8Array()).toString('utf8');
    case AttrType.TENSOR: return a.t ?? undefined;
    case AttrType.GRAPH: return a.g ?? undefined;
    case AttrType.FLOATS: return [...(a.floats ?? [])];
    case AttrType.INTS: return (a.ints ?? []).map((v) => toNumber(v as Int64));
    case AttrType.STRINGS: return (a.strings ?? []).map((s) => Buffer.from(s).toString('utf8'));
    default: return undefined;
  }
}

/** Typed attribute readers with defaults. */
export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const v = getAttr(node, name);
  return typeof v === 'number' ? v : dflt;
}
export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const v = getAttr(node, name);
  return typeof v === 'number' ? v : dflt;
}
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const v = getAttr(node, name);
  return Array.isArray(v) ? (v as number[]) : undefined;
}
export function attrString(node: NodeProto, name: string, dflt: string): string {
  const v = getAttr(node, name);
  return typeof v === 'string' ? v : dflt;
}

/** Build an attribute proto from a plain value; `kind` disambiguates int vs float. */
export function makeAttr(name: string, value: AttrValue, kind?: 'int' | 'float' | 'ints' | 'floats'): AttributeProto {
  if (typeof value === 'number') {
    const isInt = kind ? kind === 'int' : Number.isInteger(value);
    return isInt ? { name, type: AttrType.INT, i: value } : { name, type: AttrType.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: AttrType.STRING, s: Buffer.from(value, 'utf8') };
  if (Array.isArray(value)) {
    if (value.length > 0 && typeof value[0] === 'string') {
      return { name, type: AttrType.STRINGS, strings: (value as string[]).map((s) => Buffer.from(s, 'utf8')) };
    }
    const isInts = kind ? kind === 'ints' : (value as number[]).every((v) => Number.isInteger(v));
    return isInts
      ? { name, type: AttrType.INTS, ints: value as number[] }
      : { name, type: AttrType.FLOATS, floats: value as number[] };
  }
  if ('node' in value || 'initializer' in value) return { name, type: AttrType.GRAPH, g: value as GraphProto };
  return { name, type: AttrType.TENSOR, t: value as TensorProto };
}

/** Set (add or replace) an attribute on a node. */
export function setAttr(node: NodeProto, name: string, value: AttrValue, kind?: 'int' | 'float' | 'ints' | 'floats'): void {
  removeAttr(node, name);
  (node.attribute ??= []).push(makeAttr(name, value, kind));
}

/** Remove an attribute from a node (no-op when absent). */
export function removeAttr(node: NodeProto, name: string): void {
  if (node.attribute) node.attribute = node.attribute.filter((a) => a.name !== name);
}

/** Make a node proto. */
export function makeNode(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attrs: Record<string, AttrValue> = {},
  domain = '',
): NodeProto {
  const node: NodeProto = { opType, input: inputs, output: outputs, name, attribute: [] };
  if (domain) node.domain = domain;
  for (const [k, v] of Object.entries(attrs)) setAttr(node, k, v);
  return node;
}
