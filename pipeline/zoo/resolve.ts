/**
 * Turning a command's model argument into a file path. Every command that takes a model accepts either
 * a path (`../shared/models/x.onnx`) or a zoo reference `PACK/FILE` (`buffalo_l/w600k_r50.onnx`, or
 * without the suffix, `buffalo_l/w600k_r50`), which means `<modelsDir>/<PACK>/<FILE>`.
 *
 * Precedence: an existing file at the path wins, so a local folder that happens to be called like a pack
 * still works. Otherwise a two-part argument whose first part is a pack name is a zoo reference; a
 * two-part argument whose first part is neither a pack nor an existing folder is reported as an unknown
 * pack (most likely a typo of one), and anything else as a missing file.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError, MODEL_FILE_HINT } from '../errors.js';
import { modelsDir as defaultModelsDir } from '../paths.js';
import { findFile, loadZoo, packDir, type Zoo, type ZooFile, type ZooPack } from './zoo.js';

export interface ResolveOptions {
  /** Models folder for PACK/FILE references (default: FACEOPT_MODELS or `models/`). */
  readonly modelsDir?: string;
  /** Zoo manifest (default: loadZoo()). */
  readonly zoo?: Zoo;
  /** Folder relative paths are taken from (default: process.cwd()). */
  readonly cwd?: string;
  /** The flag or argument the model came from, for messages (default "the model argument"). */
  readonly flag?: string;
}

export interface ResolvedModel {
  /** Absolute path of the model file; it exists. */
  readonly path: string;
  /** The pack and manifest entry when the argument was a zoo reference, else null. */
  readonly pack: ZooPack | null;
  readonly file: ZooFile | null;
}

const PACK_REF = /^([^/\\]+)\/([^/\\]+)$/;

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Resolve a model argument and say where it came from. Throws FACEOPT_ERR_UNKNOWN_PACK (lists the known
 * packs), FACEOPT_ERR_UNKNOWN_MODEL_FILE (lists the pack's files), FACEOPT_ERR_MODEL_MISSING (a known
 * file not downloaded yet; names `faceopt models fetch PACK`), FACEOPT_ERR_FILE_NOT_FOUND (a plain path
 * that does not exist) or FACEOPT_ERR_BAD_ARGUMENT (empty argument, or a folder).
 */
export function resolveModelRef(arg: string, opts: ResolveOptions = {}): ResolvedModel {
  const text = typeof arg === 'string' ? arg.trim() : '';
  if (text === '') {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a model path or PACK/FILE', name: opts.flag ?? 'the model argument', received: JSON.stringify(arg ?? '') });
  }
  const cwd = opts.cwd ?? process.cwd();
  const asPath = path.resolve(cwd, text);
  if (isFile(asPath)) return { path: asPath, pack: null, file: null };
  if (existsSync(asPath)) {
    // a TensorRT bundle (models/<name>.trt) is a folder: name the graphs in it
    const bundle = ['model.qdq.onnx', 'model.fp16.onnx', 'model.onnx'].filter((f) => isFile(path.join(asPath, f)));
    const what = existsSync(path.join(asPath, 'plan.json')) && bundle.length ? `a TensorRT bundle folder; pass one of its graphs: ${bundle.map((f) => path.join(text, f)).join(', ')}` : statSync(asPath).isDirectory() ? 'a folder' : 'not a regular file: a device, pipe or socket';
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a model file (.onnx) or PACK/FILE', name: opts.flag ?? 'the model argument', received: `${text} (${what})` });
  }

  const ref = PACK_REF.exec(text);
  if (ref && !path.isAbsolute(text) && ref[1] !== '.' && ref[1] !== '..') {
    const [, packName, fileName] = ref as unknown as [string, string, string];
    const zoo = opts.zoo ?? loadZoo();
    const pack = zoo.packs.find((p) => p.name === packName);
    if (pack) {
      const file = findFile(pack, fileName);
      const filePath = path.join(packDir(opts.modelsDir ?? defaultModelsDir(), pack), file.name);
      if (!isFile(filePath)) throw new FaceoptError('FACEOPT_ERR_MODEL_MISSING', { path: filePath, pack: pack.name });
      return { path: filePath, pack, file };
    }
    if (!existsSync(path.resolve(cwd, packName))) {
      throw new FaceoptError('FACEOPT_ERR_UNKNOWN_PACK', { pack: packName, known: zoo.packs.map((p) => p.name).join(', ') });
    }
  }
  const fromEnv = opts.flag?.startsWith('FACEOPT_') ? ` (the path is the ${opts.flag} environment variable's)` : '';
  throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: asPath, hint: `${fromEnv}${MODEL_FILE_HINT}` });
}

/**
 * Resolve a command's model argument (a path or `PACK/FILE`) to the absolute path of an existing file.
 * Same rules and errors as resolveModelRef; use that one when the manifest entry (role, input size)
 * is also wanted.
 */
export function resolveModelArg(arg: string, opts: ResolveOptions = {}): string {
  return resolveModelRef(arg, opts).path;
}
