/**
 * The small protobuf helpers, case by case: int64 conversion, data type names, attribute readers and
 * builders (kinds, defaults, replacing), node building, value infos (symbolic, unknown and scalar
 * shapes across the wire) and name scopes.
 */
import { describe, expect, it } from 'vitest';
import {
  AttrType, attrFloat, attrInt, attrInts, attrString, dataTypeName, getAttr, makeAttr, makeNode, onnx, removeAttr, setAttr, toNumber,
  DataType, type GraphProto,
} from '../../pipeline/onnx/proto.js';
import { makeValueInfo, valueInfoOf } from '../../pipeline/onnx/value-info.js';
import { NameScope } from '../../pipeline/onnx/name-scope.js';

const wireNode = (n: ReturnType<typeof makeNode>) => onnx.NodeProto.decode(onnx.NodeProto.encode(n).finish());

describe('toNumber and dataTypeName', () => {
  it('absent int64 fields read as 0', () => {
    expect(toNumber(undefined)).toBe(0);
    expect(toNumber(null)).toBe(0);
    expect(toNumber(5)).toBe(5);
  });
  it('names the float16 type, and unknown types by number', () => {
    expect(dataTypeName(DataType.FLOAT16)).toBe('float16');
    expect(dataTypeName(99)).toBe('type99');
  });
});

describe('attributes', () => {
  it('kind decides int vs float for whole numbers, and ints vs floats for lists', () => {
    const f = makeAttr('alpha', 1, 'float');
    expect(f.type).toBe(AttrType.FLOAT);
    const fs = makeAttr('scales', [1, 2], 'floats');
    expect(fs.type).toBe(AttrType.FLOATS);
    const n = wireNode(makeNode('X', [], [], 'n'));
    n.attribute = [f, fs];
    const back = wireNode(n);
    expect(getAttr(back, 'alpha')).toBe(1);
    expect(back.attribute![0]!.type).toBe(AttrType.FLOAT);
    expect(getAttr(back, 'scales')).toEqual([1, 2]);
  });

  it('a graph given without nodes is still a GRAPH attribute', () => {
    const g: GraphProto = { name: 'empty', initializer: [] };
    expect(makeAttr('body', g).type).toBe(AttrType.GRAPH);
  });

  it('strings round-trip as UTF-8; readers fall back to their default for another attribute type', () => {
    const n = wireNode(makeNode('X', [], [], 'n', { mode: 'größe', k: 3, scale: 0.5 }));
    expect(getAttr(n, 'mode')).toBe('größe');
    expect(attrInt(n, 'mode', 7)).toBe(7);
    expect(attrFloat(n, 'mode', 0.5)).toBe(0.5);
    expect(attrString(n, 'k', 'dflt')).toBe('dflt');
    expect(attrInts(n, 'missing')).toBeUndefined();
    expect(attrInts(n, 'k')).toBeUndefined();
  });

  it('FLOATS read back as a copy', () => {
    const n = makeNode('X', [], [], 'n', { f: [0.5, 1.5] });
    (getAttr(n, 'f') as number[])[0] = 9;
    expect(getAttr(n, 'f')).toEqual([0.5, 1.5]);
  });

  it('setAttr replaces an attribute; removeAttr drops only the named one', () => {
    const n = makeNode('X', [], [], 'n', { a: 1, b: 2 });
    setAttr(n, 'a', 5);
    expect(n.attribute!.map((a) => a.name)).toEqual(['b', 'a']);
    expect(attrInt(n, 'a', 0)).toBe(5);
    removeAttr(n, 'a');
    expect(n.attribute!.map((a) => a.name)).toEqual(['b']);
  });

  it('makeNode records a non-default domain', () => {
    expect(makeNode('Gelu', ['x'], ['y'], 'g', {}, 'com.microsoft').domain).toBe('com.microsoft');
    expect(makeNode('Relu', ['x'], ['y'], 'r').domain).toBeUndefined();
  });
});

describe('value infos', () => {
  it('symbolic, fixed and unknown dims, and unknown rank vs scalar, survive the wire', () => {
    const wire = (v: ReturnType<typeof makeValueInfo>) => onnx.ValueInfoProto.decode(onnx.ValueInfoProto.encode(v).finish());
    expect(valueInfoOf(makeValueInfo('a', DataType.FLOAT, ['N', 3, null]))).toStrictEqual({ name: 'a', elemType: DataType.FLOAT, shape: ['N', 3, null] });
    expect(valueInfoOf(wire(makeValueInfo('a', DataType.FLOAT, ['N', 3, null])))).toStrictEqual({ name: 'a', elemType: DataType.FLOAT, shape: ['N', 3, null] });
    expect(valueInfoOf(wire(makeValueInfo('s', DataType.INT64, []))).shape).toEqual([]);
    expect(valueInfoOf(wire(makeValueInfo('u', DataType.FLOAT, null))).shape).toBeNull();
    expect(valueInfoOf({ name: 'untyped' })).toStrictEqual({ name: 'untyped', elemType: 0, shape: null });
  });
});

describe('NameScope', () => {
  it('hands out base, base_1, base_2 ... and never the same name twice', () => {
    const s = new NameScope(new Set(['a', 'a_1']));
    expect(s.fresh('a')).toBe('a_2');
    expect(s.fresh('b')).toBe('b');
    expect(s.fresh('b')).toBe('b_1');
    s.reserve('c', 'c_1');
    expect(s.fresh('c')).toBe('c_2');
  });
});
