import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, saveModel, makeNode, DataType, onnx, readTensor, makeTensor, floatToHalf, halfToFloat } from '../../pipeline/onnx/index.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { maxOutputDiff } from './compare.js';
import { tinyModel } from './tiny.js';

const chain = () => tinyModel({
  opset: 13,
  input: { name: 'x', shape: ['N', 2] },
  outputs: ['z'],
  nodes: [
    makeNode('Add', ['y', 'c'], ['z'], 'add'),
    makeNode('Mul', ['x', 'w'], ['y'], 'mul'),
  ],
  initializers: [{ name: 'w', dims: [2], data: [2, 3] }, { name: 'c', dims: [2], data: [1, -1] }],
});

describe('tensors: typed arrays from raw_data and typed fields', () => {
  const cases: [string, number, number[], (v: number[]) => unknown][] = [
    ['float32', DataType.FLOAT, [1.5, -2.25, 3e-8], (v) => ({ floatData: v })],
    ['int8', DataType.INT8, [-128, 0, 127], (v) => ({ int32Data: v })],
    ['uint8', DataType.UINT8, [0, 128, 255], (v) => ({ int32Data: v })],
    ['int32', DataType.INT32, [-(2 ** 31), 7, 2 ** 31 - 1], (v) => ({ int32Data: v })],
    ['int64', DataType.INT64, [-5, 0, 2 ** 40], (v) => ({ int64Data: v })],
  ];
  for (const [name, dt, values, typed] of cases) {
    it(`${name}: raw and typed forms decode to the same values and survive the wire`, () => {
      const raw = makeTensor('t', dt, [3], values);
      const typedProto = onnx.TensorProto.decode(onnx.TensorProto.encode({ name: 't', dataType: dt, dims: [3], ...(typed(values) as object) }).finish());
      const a = readTensor(onnx.TensorProto.decode(onnx.TensorProto.encode(raw).finish()));
      const b = readTensor(typedProto);
      const asNum = (d: ArrayLike<number | bigint>) => Array.from(d as ArrayLike<number>, Number);
      expect(asNum(a.data)).toEqual(dt === DataType.FLOAT ? Array.from(Float32Array.from(values)) : values);
      expect(asNum(b.data)).toEqual(asNum(a.data));
      expect(a.dims).toEqual([3]);
    });
  }
  it('float16: bit patterns in int32_data or raw_data; conversion rounds to nearest even', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(halfToFloat(0x0001)).toBeCloseTo(5.960464477539063e-8, 20);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    const t = readTensor({ name: 'h', dataType: DataType.FLOAT16, dims: [2], int32Data: [0x3c00, 0xc000] });
    expect(Array.from(t.data as Uint16Array, halfToFloat)).toEqual([1, -2]);
    const r = readTensor(makeTensor('h', DataType.FLOAT16, [2], [0.5, 3]));
    expect(Array.from(r.data as Uint16Array, halfToFloat)).toEqual([0.5, 3]);
  });
  it('refuses strings with a coded error', () => {
    let err: unknown;
    try { readTensor({ name: 's', dataType: DataType.STRING, dims: [1] }); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_UNSUPPORTED_TENSOR')).toBe(true);
  });
});

describe('Graph façade', () => {
  it('indexes producers/consumers and sorts nodes topologically', () => {
    const m = chain();
    const g = m.graph;
    expect(g.inputs.map((i) => [i.name, i.shape])).toEqual([['x', ['N', 2]]]);
    expect(g.producer('y')?.name).toBe('mul');
    expect(g.consumers('y').map((n) => n.name)).toEqual(['add']);
    expect(g.producer('x')).toBeUndefined();
    g.toposort();
    expect(g.nodes.map((n) => n.name)).toEqual(['mul', 'add']);
  });
  it('reads and writes initializers as typed arrays', () => {
    const g = chain().graph;
    expect(Array.from(g.getFloat('w'))).toEqual([2, 3]);
    g.setTensor('w', DataType.FLOAT, [2], new Float32Array([4, 5]));
    expect(Array.from(g.getFloat('w'))).toEqual([4, 5]);
    expect(g.initializerNames().sort()).toEqual(['c', 'w']);
  });
  it('adds, renames and removes nodes and tensors', async () => {
    const m = chain();
    const g = m.graph;
    g.toposort();
    const relu = g.addNode(makeNode('Relu', ['z'], ['r'], ''));
    expect(relu.name).toBe('Relu');
    g.proto.output![0]!.name = 'r';
    g.renameTensor('y', 'scaled');
    expect(g.producer('scaled')?.name).toBe('mul');
    expect(g.consumers('scaled')[0]?.name).toBe('add');
    expect(g.uniqueName('scaled')).toBe('scaled_1');
    const sess = await maxOutputDiff(m.toBytes(), m.toBytes(), [1, 2]);
    expect(sess.outputs.r).toEqual([1, 2]);
    g.removeNodes([relu]);
    g.proto.output![0]!.name = 'z';
    g.setTensor('unused', DataType.FLOAT, [1], [0]);
    g.addNode(makeNode('Neg', ['x'], ['dead'], 'dead'));
    expect(g.pruneUnused()).toBe(1);
    expect(g.hasInitializer('unused')).toBe(false);
  });
  it('reports a node whose input nothing produces', () => {
    const m = chain();
    m.graph.nodes[0]!.input = ['missing', 'c'];
    m.graph.invalidate();
    expect(() => m.graph.toposort()).toThrow(/missing/);
  });
  it('counts ops', () => {
    expect(chain().graph.opHistogram()).toEqual({ Add: 1, Mul: 1 });
  });
});

describe('model files', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-onnx-'));
  it('missing, empty, non-ONNX and truncated files give coded errors', () => {
    const codes = (f: () => unknown) => { try { f(); } catch (e) { return (e as { code?: string }).code; } return 'none'; };
    expect(codes(() => loadModel(path.join(dir, 'nope.onnx')))).toBe('FACEOPT_ERR_FILE_NOT_FOUND');
    writeFileSync(path.join(dir, 'empty.onnx'), '');
    expect(codes(() => loadModel(path.join(dir, 'empty.onnx')))).toBe('FACEOPT_ERR_NOT_ONNX');
    writeFileSync(path.join(dir, 'text.onnx'), 'hello, I am a text file and not a model at all\n'.repeat(10));
    expect(codes(() => loadModel(path.join(dir, 'text.onnx')))).toBe('FACEOPT_ERR_NOT_ONNX');
    const bytes = chain().toBytes();
    writeFileSync(path.join(dir, 'cut.onnx'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    expect(codes(() => loadModel(path.join(dir, 'cut.onnx')))).toBe('FACEOPT_ERR_MODEL_TRUNCATED');
  });
  it('saves atomically and never over the source', async () => {
    const file = path.join(dir, 'chain.onnx');
    await saveModel(chain(), file);
    const m = loadModel(file);
    await expect(saveModel(m, file)).rejects.toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE' });
    await saveModel(m, path.join(dir, 'copy.onnx'));
    expect(readFileSync(path.join(dir, 'copy.onnx'))).toEqual(readFileSync(file));
  });
  it('resolves tensors stored as external data beside the file', async () => {
    const m = chain();
    const w = m.graph.initializer('w')!;
    const payload = Buffer.concat([Buffer.alloc(16, 0xee), Buffer.from(new Float32Array([7, 8]).buffer)]);
    writeFileSync(path.join(dir, 'weights.bin'), payload);
    w.rawData = new Uint8Array();
    w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    w.externalData = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '16' }, { key: 'length', value: '8' }];
    writeFileSync(path.join(dir, 'ext.onnx'), m.toBytes());
    const back = loadModel(path.join(dir, 'ext.onnx'));
    expect(Array.from(back.graph.getFloat('w'))).toEqual([7, 8]);
    w.externalData = [{ key: 'location', value: 'absent.bin' }];
    writeFileSync(path.join(dir, 'ext2.onnx'), m.toBytes());
    expect(() => loadModel(path.join(dir, 'ext2.onnx'))).toThrow(/absent\.bin/);
  });
});
