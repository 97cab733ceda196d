/**
 * Loading the model zoo manifest and looking things up in it. The manifest ships with faceopt at
 * models/zoo.json (FACEOPT_ZOO points elsewhere, e.g. a private zoo); it is validated on every load, so
 * the rest of the code can trust its types. Lookups throw the coded errors users see for a typo in a pack
 * or file name, each listing what does exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FaceoptError } from '../errors.js';
import { validateZoo, type Zoo, type ZooFile, type ZooPack } from './schema.js';

export type { Zoo, ZooFile, ZooPack, ModelRole, ZipLayout } from './schema.js';

/**
 * Where the shipped manifest lives: FACEOPT_ZOO if set, else the first `models/zoo.json` found walking up
 * from this module (pipeline/zoo in a checkout, dist/pipeline/zoo in a build).
 */
export function defaultZooFile(): string {
  if (process.env.FACEOPT_ZOO) return path.resolve(process.env.FACEOPT_ZOO);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'models', 'zoo.json');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return path.resolve('models', 'zoo.json');
}

/** Parse and validate a manifest held in memory (tests, or a manifest fetched from elsewhere). */
export function parseZoo(text: string, file = '(memory)'): Zoo {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FaceoptError('FACEOPT_ERR_ZOO_INVALID', { path: file, reason: `not valid JSON (${(e as Error).message})` }, { cause: e });
  }
  return validateZoo(raw, file);
}

const cache = new Map<string, Zoo>();

/**
 * Load and validate the zoo manifest (default: defaultZooFile()). Results are cached per file path;
 * a missing or unreadable file is FACEOPT_ERR_ZOO_INVALID, since faceopt cannot work without it.
 */
export function loadZoo(file: string = defaultZooFile()): Zoo {
  const abs = path.resolve(file);
  const hit = cache.get(abs);
  if (hit) return hit;
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new FaceoptError('FACEOPT_ERR_ZOO_INVALID', { path: abs, reason: `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` }, { cause: e });
  }
  const zoo = parseZoo(text, abs);
  cache.set(abs, zoo);
  return zoo;
}

/** Names of all packs, in manifest order. */
export function packNames(zoo: Zoo): string[] {
  return zoo.packs.map((p) => p.name);
}

/** The pack called `name`, or FACEOPT_ERR_UNKNOWN_PACK listing the known packs. */
export function findPack(zoo: Zoo, name: string): ZooPack {
  const pack = zoo.packs.find((p) => p.name === name);
  if (!pack) throw new FaceoptError('FACEOPT_ERR_UNKNOWN_PACK', { pack: name, known: packNames(zoo).join(', ') });
  return pack;
}

/**
 * The file of `pack` called `name`; the `.onnx` suffix may be left off (`buffalo_l/w600k_r50`).
 * Unknown names give FACEOPT_ERR_UNKNOWN_MODEL_FILE listing the pack's files.
 */
export function findFile(pack: ZooPack, name: string): ZooFile {
  const wanted = name.endsWith('.onnx') ? name : `${name}.onnx`;
  const file = pack.files.find((f) => f.name === wanted);
  if (!file) {
    throw new FaceoptError('FACEOPT_ERR_UNKNOWN_MODEL_FILE', { pack: pack.name, file: name, known: pack.files.map((f) => f.name).join(', ') });
  }
  return file;
}

/** Folder a pack unpacks into: `<modelsDir>/<pack>`. */
export function packDir(modelsDir: string, pack: ZooPack | string): string {
  return path.join(path.resolve(modelsDir), typeof pack === 'string' ? pack : pack.name);
}
