/**
 * Model files, case by case: opset lookups, clones, which coded error each kind of bad file gives,
 * external data (base folder, offsets, files outside the folder, Constant node tensors, descriptors
 * closed), and saveModel's refusal to write over a source reached another way (opts.source, symlinks).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { externalDataFiles, loadModel, makeNode, onnx, OnnxModel, saveModel } from '../../pipeline/onnx/index.js';
import { decodeModel } from '../../pipeline/onnx/model.js';
import { makeTensor } from '../../pipeline/onnx/tensor.js';
import { DataType, type TensorProto } from '../../pipeline/onnx/proto.js';
import { tinyModel } from './tiny.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'faceopt-model-audit-'));
const mul = () => tinyModel({
  opset: 13, input: { name: 'x', shape: ['N', 2] }, outputs: ['y'],
  nodes: [makeNode('Mul', ['x', 'w'], ['y'], 'mul')],
  initializers: [{ name: 'w', dims: [2], data: [2, 3] }],
});
const error = (f: () => unknown): { code?: string; message?: string } => {
  try { f(); } catch (e) { return e as { code?: string; message?: string }; }
  return {};
};
/** Point tensor `t` at `location` (with optional offset/length) instead of holding its bytes. */
function external(t: TensorProto, location: string, offset?: number, length?: number): void {
  t.rawData = new Uint8Array();
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  t.externalData = [{ key: 'location', value: location }];
  if (offset !== undefined) t.externalData.push({ key: 'offset', value: String(offset) });
  if (length !== undefined) t.externalData.push({ key: 'length', value: String(length) });
}
const floats = (...v: number[]) => Buffer.from(new Float32Array(v).buffer);

describe('OnnxModel', () => {
  it('opset(): "ai.onnx" is the default domain, an absent domain is 0; setOpset replaces the import', () => {
    const m = mul();
    m.proto.opsetImport = [{ domain: 'ai.onnx', version: 11 }];
    expect(m.opset()).toBe(11);
    expect(m.opset('com.microsoft')).toBe(0);
    m.setOpset(13);
    expect(m.proto.opsetImport).toHaveLength(1);
    expect(m.opset()).toBe(13);
    m.setOpset(1, 'com.microsoft');
    expect(m.opset('com.microsoft')).toBe(1);
  });

  it('a clone shares nothing with its model and keeps where it came from', async () => {
    const dir = tmp();
    const file = path.join(dir, 'm.onnx');
    await saveModel(mul(), file);
    const m = loadModel(file);
    const c = m.clone();
    c.graph.nodes[0]!.name = 'changed';
    expect(m.graph.nodes[0]!.name).toBe('mul');
    await expect(saveModel(c, file)).rejects.toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE' });
  });

  it('a model without a graph gets an empty one', () => {
    const m = new OnnxModel(onnx.ModelProto.create({ irVersion: 7 }));
    expect(m.graph.nodes).toEqual([]);
  });
});

describe('decodeModel: which error for which bad bytes', () => {
  const bytesOf = (edit: (m: OnnxModel) => void) => { const m = mul(); edit(m); return m.toBytes(); };

  it('IR version 0 or above 20, and a graph without nodes, are refused with the reason', () => {
    expect(error(() => decodeModel(bytesOf((m) => { m.proto.irVersion = 0; }), 'm.onnx')).message).toMatch(/IR version 0 is not valid/);
    expect(error(() => decodeModel(bytesOf((m) => { m.proto.irVersion = 21; }), 'm.onnx')).message).toMatch(/IR version 21 is not valid/);
    expect(decodeModel(bytesOf((m) => { m.proto.irVersion = 20; }), 'm.onnx').graph).toBeTruthy();
    const empty = error(() => decodeModel(bytesOf((m) => { m.graph.proto.node = []; }), 'm.onnx'));
    expect(empty).toMatchObject({ code: 'FACEOPT_ERR_MODEL_TRUNCATED' });
    expect(empty.message).toMatch(/the graph has no nodes/);
  });

  it('bytes that do not start like a ModelProto are not ONNX, even when cut short or decodable', () => {
    const cut = Buffer.from([0x3a, 0x50, 0x01]); // a graph field (7) whose 80 bytes run past the end
    expect(error(() => decodeModel(cut, 'cut.bin')).code).toBe('FACEOPT_ERR_NOT_ONNX');
    const noIr = bytesOf((m) => { Object.assign(m.proto, { irVersion: undefined }); });
    expect(noIr[0]).not.toBe(0x08);
    expect(error(() => decodeModel(noIr, 'noir.bin')).code).toBe('FACEOPT_ERR_NOT_ONNX');
  });

  it('a ModelProto cut short is truncated, whatever protobufjs calls it', () => {
    const bytes = mul().toBytes();
    for (const n of [3, 10, bytes.length - 3]) {
      expect(error(() => decodeModel(bytes.subarray(0, n), 'cut.onnx')).code).toBe('FACEOPT_ERR_MODEL_TRUNCATED');
    }
  });

  it('an empty file says so; a path that cannot be read as a file is not ONNX', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'empty.onnx'), '');
    expect(error(() => loadModel(path.join(dir, 'empty.onnx'))).message).toMatch(/the file is empty/);
    expect(error(() => loadModel(dir)).code).toBe('FACEOPT_ERR_NOT_ONNX');
  });

  it('errors on bytes name the label given', () => {
    expect(error(() => loadModel(Buffer.from('not a model at all'), { label: 'upload.onnx' })).message).toMatch(/^upload\.onnx is not an ONNX model/);
  });
});

describe('external data', () => {
  it('bytes loaded with baseDir read their data from that folder; offset without length reads to the end', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'w.bin'), Buffer.concat([Buffer.alloc(4), floats(5, 6)]));
    const m = mul();
    external(m.graph.initializer('w')!, 'w.bin', 4);
    const back = loadModel(m.toBytes(), { baseDir: dir });
    expect(Array.from(back.graph.getFloat('w'))).toEqual([5, 6]);
    expect(back.graph.initializer('w')!.externalData).toEqual([]);
  });

  it('a location outside the model\'s folder is refused, and so is a length past the end', () => {
    const root = tmp();
    const dir = path.join(root, 'model');
    writeFileSync(path.join(root, 'outside.bin'), floats(1, 2));
    const m = mul();
    external(m.graph.initializer('w')!, '../outside.bin');
    expect(error(() => loadModel(m.toBytes(), { baseDir: dir })).code).toBe('FACEOPT_ERR_EXTERNAL_DATA');
    writeFileSync(path.join(root, 'short.bin'), floats(1));
    external(m.graph.initializer('w')!, 'short.bin', 0, 8);
    expect(error(() => loadModel(m.toBytes(), { baseDir: root })).message).toMatch(/needs bytes 0\.\.8 but the file has 4/);
  });

  it('a Constant node\'s tensor stored externally is read too, and listed among the model\'s data files', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'k.bin'), floats(7, 8));
    const value = makeTensor('k', DataType.FLOAT, [2], [0, 0]);
    external(value, 'k.bin');
    const m = tinyModel({
      opset: 13, input: { name: 'x', shape: ['N', 2] }, outputs: ['y'],
      nodes: [makeNode('Constant', [], ['k'], 'const', { value }), makeNode('Mul', ['x', 'k'], ['y'], 'mul')],
    });
    const file = path.join(dir, 'c.onnx');
    writeFileSync(file, m.toBytes());
    expect(Array.from(loadModel(file).graph.getFloat('k'))).toEqual([7, 8]);
    expect(externalDataFiles(file)).toEqual([path.join(dir, 'k.bin')]);
  });

  it('externalDataFiles lists only existing files inside the model\'s folder', () => {
    const root = tmp();
    const dir = path.join(root, 'model');
    mkdirSync(dir);
    writeFileSync(path.join(root, 'outside.bin'), floats(1, 2));
    const m = mul();
    external(m.graph.initializer('w')!, '../outside.bin');
    const file = path.join(dir, 'm.onnx');
    writeFileSync(file, m.toBytes());
    expect(externalDataFiles(file)).toEqual([]);
    external(m.graph.initializer('w')!, 'missing.bin');
    writeFileSync(file, m.toBytes());
    expect(externalDataFiles(file)).toEqual([]);
  });

  it('a data file beside the model whose name starts with two dots is inside its folder', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, '..w.bin'), floats(5, 6));
    const m = mul();
    external(m.graph.initializer('w')!, '..w.bin');
    const file = path.join(dir, 'dots.onnx');
    writeFileSync(file, m.toBytes());
    expect(Array.from(loadModel(file).graph.getFloat('w'))).toEqual([5, 6]);
    expect(externalDataFiles(file)).toEqual([path.join(dir, '..w.bin')]);
  });

  it('reading external data leaves no file descriptor open', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'w.bin'), floats(5, 6));
    const m = mul();
    external(m.graph.initializer('w')!, 'w.bin');
    const bytes = m.toBytes();
    const before = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 20; i++) loadModel(bytes, { baseDir: dir });
    expect(readdirSync('/proc/self/fd').length).toBeLessThan(before + 5);
  });
});

describe('saveModel never writes over its source', () => {
  it('opts.source protects a model read from bytes; a symlink to the source is the source', async () => {
    const dir = tmp();
    const src = path.join(dir, 'src.onnx');
    await saveModel(mul(), src);
    const before = readFileSync(src);
    const fromBytes = loadModel(readFileSync(src));
    await expect(saveModel(fromBytes, src, { source: src })).rejects.toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE' });
    const link = path.join(dir, 'link.onnx');
    symlinkSync(src, link);
    await expect(saveModel(loadModel(src), link)).rejects.toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE' });
    expect(readFileSync(src)).toEqual(before);
    const out = path.join(dir, 'out.onnx');
    await saveModel(fromBytes, out, { source: src });
    expect(readFileSync(out)).toEqual(before);
  });

  it('a source deleted since it was read does not stop a save elsewhere; a relative opts.source still protects it', async () => {
    const dir = tmp();
    const src = path.join(dir, 'gone.onnx');
    await saveModel(mul(), src);
    const m = loadModel(src);
    rmSync(src);
    const out = path.join(dir, 'out.onnx');
    writeFileSync(out, 'old');
    await saveModel(m, out);
    expect(loadModel(out).graph.nodes).toHaveLength(1);
    const rel = path.relative(process.cwd(), out);
    await expect(saveModel(mul(), out, { source: rel })).rejects.toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE' });
  });

  it('nor over the source\'s external data reached through a symlink', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'w.bin'), floats(5, 6));
    const m = mul();
    external(m.graph.initializer('w')!, 'w.bin');
    const file = path.join(dir, 'ext.onnx');
    writeFileSync(file, m.toBytes());
    symlinkSync(path.join(dir, 'w.bin'), path.join(dir, 'w-link.bin'));
    await expect(saveModel(loadModel(file), path.join(dir, 'w-link.bin'))).rejects.toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE' });
    expect(readFileSync(path.join(dir, 'w.bin'))).toEqual(floats(5, 6));
  });
});
