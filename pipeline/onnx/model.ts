/**
 * Reading and writing ONNX models. `loadModel` accepts a path or bytes, resolves tensors stored as
 * external data beside the file, and turns every way a file can be wrong (missing, truncated, not ONNX)
 * into one coded error. `saveModel` writes atomically and never over the model it was read from.
 */
import { readFileSync, existsSync, realpathSync, openSync, readSync, closeSync, fstatSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError, MODEL_FILE_HINT } from '../errors.js';
import { leavesDir } from '../paths.js';
import { writeFileAtomic } from '../fsutil.js';
import { Graph } from './graph.js';
import { onnx, toNumber, type Int64, type ModelProto, type TensorProto } from './proto.js';

/** A decoded model: the proto, its graph façade and where it came from. */
export class OnnxModel {
  readonly proto: ModelProto;
  readonly graph: Graph;
  /** Absolute path of the file it was read from, if any. */
  readonly sourcePath?: string;

  constructor(proto: ModelProto, sourcePath?: string) {
    this.proto = proto;
    proto.graph ??= onnx.GraphProto.create();
    this.graph = new Graph(proto.graph!);
    this.sourcePath = sourcePath;
  }

  /** The opset version imported for a domain ('' = ai.onnx); 0 when not imported. */
  opset(domain = ''): number {
    const match = (d: string | null | undefined) => (domain === '' ? !d || d === 'ai.onnx' : d === domain);
    const entry = (this.proto.opsetImport ?? []).find((o) => match(o.domain));
    return entry ? toNumber(entry.version as Int64) : 0;
  }

  /** Set the opset version of a domain (adding the import when missing). */
  setOpset(version: number, domain = ''): void {
    const match = (d: string | null | undefined) => (domain === '' ? !d || d === 'ai.onnx' : d === domain);
    const list = (this.proto.opsetImport ??= []);
    const entry = list.find((o) => match(o.domain));
    if (entry) entry.version = version; else list.push(onnx.OperatorSetIdProto.create({ domain, version }));
  }

  /** IR version as a number. */
  get irVersion(): number {
    return toNumber(this.proto.irVersion as Int64);
  }

  /** Serialize to protobuf bytes. */
  toBytes(): Uint8Array {
    return onnx.ModelProto.encode(this.proto).finish();
  }

  /** A deep copy (through the wire format, so nothing is shared). */
  clone(): OnnxModel {
    return new OnnxModel(onnx.ModelProto.decode(this.toBytes()), this.sourcePath);
  }
}

const SIGNATURE_HINT = 'expected a protobuf ModelProto';

/** Read a model from a file path or from bytes (external data is resolved relative to `baseDir`). */
export function loadModel(source: string | Uint8Array, opts: { baseDir?: string; label?: string } = {}): OnnxModel {
  const label = typeof source === 'string' ? source : (opts.label ?? '<buffer>');
  let bytes: Uint8Array;
  let sourcePath: string | undefined;
  if (typeof source === 'string') {
    if (!existsSync(source)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: source, hint: MODEL_FILE_HINT });
    sourcePath = path.resolve(source);
    try {
      bytes = readFileSync(source);
    } catch (e) {
      throw new FaceoptError('FACEOPT_ERR_NOT_ONNX', { path: label, reason: (e as Error).message }, { cause: e });
    }
  } else {
    bytes = source;
  }
  const proto = decodeModel(bytes, label);
  const baseDir = opts.baseDir ?? (sourcePath ? path.dirname(sourcePath) : process.cwd());
  resolveExternalData(proto, baseDir);
  return new OnnxModel(proto, sourcePath);
}

/**
 * Decode a ModelProto, telling a file cut short (FACEOPT_ERR_MODEL_TRUNCATED: download again) from one
 * that is not ONNX at all (FACEOPT_ERR_NOT_ONNX).
 */
export function decodeModel(bytes: Uint8Array, label: string): ModelProto {
  if (bytes.byteLength === 0) throw new FaceoptError('FACEOPT_ERR_NOT_ONNX', { path: label, reason: 'the file is empty' });
  // A ModelProto begins with field 1 (ir_version, varint: tag byte 0x08) in every exporter we know.
  const looksLikeOnnx = bytes[0] === 0x08;
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    const msg = (e as Error).message;
    if (looksLikeOnnx && /index out of range|premature|truncated/i.test(msg)) {
      throw new FaceoptError('FACEOPT_ERR_MODEL_TRUNCATED', { path: label, reason: `protobuf decoding stopped early: ${msg}` }, { cause: e });
    }
    throw new FaceoptError('FACEOPT_ERR_NOT_ONNX', { path: label, reason: `${SIGNATURE_HINT}; ${msg}` }, { cause: e });
  }
  const ir = toNumber(proto.irVersion as Int64);
  if (!proto.graph || ir <= 0 || ir > 20 || !(proto.graph.node?.length)) {
    throw new FaceoptError(looksLikeOnnx ? 'FACEOPT_ERR_MODEL_TRUNCATED' : 'FACEOPT_ERR_NOT_ONNX', {
      path: label,
      reason: !proto.graph ? 'no graph' : !(proto.graph.node?.length) ? 'the graph has no nodes' : `IR version ${ir} is not valid`,
    });
  }
  return proto;
}

/** Whether `file` lies in `dir` or below it ('..w.bin' beside the model does: paths.ts leavesDir). */
function insideDir(dir: string, file: string): boolean {
  return !leavesDir(path.relative(dir, file));
}

/** Load tensors whose data lives in external files into raw_data. */
function resolveExternalData(proto: ModelProto, baseDir: string): void {
  const tensors: TensorProto[] = [...(proto.graph?.initializer ?? [])];
  for (const n of proto.graph?.node ?? []) for (const a of n.attribute ?? []) if (a.t) tensors.push(a.t);
  for (const t of tensors) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = kv.location;
    const file = location ? path.resolve(baseDir, location) : '';
    if (!location || !insideDir(baseDir, file)) {
      throw new FaceoptError('FACEOPT_ERR_EXTERNAL_DATA', { tensor: t.name, path: location ?? '(none)', reason: 'the location must be a file beside the model' });
    }
    let fd: number | undefined;
    try {
      fd = openSync(file, 'r');
      const size = fstatSync(fd).size;
      const offset = kv.offset ? Number(kv.offset) : 0;
      const length = kv.length ? Number(kv.length) : size - offset;
      if (offset + length > size) throw new Error(`needs bytes ${offset}..${offset + length} but the file has ${size}`);
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, offset);
      t.rawData = buf;
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      t.externalData = [];
    } catch (e) {
      throw new FaceoptError('FACEOPT_ERR_EXTERNAL_DATA', { tensor: t.name, path: file, reason: (e as Error).message }, { cause: e });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

/**
 * Write a model atomically. Refuses to write over the file the model (or `opts.source`) was read from,
 * so an optimisation never destroys its input.
 */
export async function saveModel(model: OnnxModel, file: string, opts: { source?: string } = {}): Promise<void> {
  const target = path.resolve(file);
  for (const src of new Set([model.sourcePath, opts.source].map((p) => (p ? path.resolve(p) : p)))) {
    if (!src || !existsSync(target) || !existsSync(src)) continue;
    const real = realpathSync(target);
    if (realpathSync(src) === real) {
      throw new FaceoptError('FACEOPT_ERR_OVERWRITE_SOURCE', { what: 'model ', path: file });
    }
    // nor over a file holding the source's external data (its weights)
    if (externalDataFiles(src).some((d) => realpathSync(d) === real)) {
      throw new FaceoptError('FACEOPT_ERR_OVERWRITE_SOURCE', { what: 'model\'s external data ', path: file });
    }
  }
  await writeFileAtomic(target, model.toBytes());
}

/**
 * The external data files a model file refers to (resolved beside it, the ones that exist), for its size
 * on disk and for never writing over them. Empty for a self-contained model or one that cannot be read.
 */
export function externalDataFiles(file: string): string[] {
  let proto: ModelProto;
  try {
    const bytes = readFileSync(file);
    // an external tensor names its file under the key "location": a model without those bytes has none,
    // and is not decoded a second time (a 166 MB recognizer took ~0.5 s and its size in memory)
    if (bytes.indexOf('location') < 0) return [];
    proto = onnx.ModelProto.decode(bytes);
  } catch {
    return [];
  }
  const baseDir = path.dirname(path.resolve(file));
  const tensors: TensorProto[] = [...(proto.graph?.initializer ?? [])];
  for (const n of proto.graph?.node ?? []) for (const a of n.attribute ?? []) if (a.t) tensors.push(a.t);
  const files = new Set<string>();
  for (const t of tensors) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const location = (t.externalData ?? []).find((e) => e.key === 'location')?.value;
    if (!location) continue;
    const f = path.resolve(baseDir, location);
    if (insideDir(baseDir, f) && existsSync(f)) files.add(f);
  }
  return [...files];
}
