/** Graph inputs, outputs and value_infos as plain data, and built from it (graph.ts re-exports both). */
import { toNumber, type Int64, type ValueInfoProto } from './proto.js';

/** A graph input/output/value_info as plain data; symbolic dims are strings, unknown dims null. */
export interface ValueInfo {
  name: string;
  elemType: number;
  shape: (number | string | null)[] | null;
}

/** Read a ValueInfoProto's type and shape as plain data. */
export function valueInfoOf(v: ValueInfoProto): ValueInfo {
  const tt = v.type?.tensorType;
  const dims = tt?.shape?.dim;
  return {
    name: v.name ?? '',
    elemType: tt?.elemType ?? 0,
    shape: dims ? dims.map((d) => (d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined ? toNumber(d.dimValue as Int64) : null)) : null,
  };
}

/** Build a ValueInfoProto for a tensor. */
export function makeValueInfo(name: string, elemType: number, shape: (number | string | null)[] | null): ValueInfoProto {
  const vi: ValueInfoProto = { name, type: { tensorType: { elemType } } };
  if (shape) {
    vi.type!.tensorType!.shape = {
      dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return vi;
}
