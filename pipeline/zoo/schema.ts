/**
 * The shape of models/zoo.json and its validation. The manifest is data other people edit by hand, so it
 * is checked field by field on every load: a bad file stops with FACEOPT_ERR_ZOO_INVALID naming the
 * field (`packs[1].files[0].sha256`), never with a TypeError three calls later. Besides types, the check
 * enforces the manifest's one house rule: every non-null number or checksum names at least one source
 * from the `sources` table, so nothing in it can be an unmarked guess.
 */
import { FaceoptError } from '../errors.js';

/** What a file in a pack does; the same words InsightFace's model router uses for its tasks. */
export const MODEL_ROLES = ['detector', 'recognizer', 'landmark_2d_106', 'landmark_3d_68', 'genderage'] as const;
export type ModelRole = (typeof MODEL_ROLES)[number];

/** Zip layouts: files at the top level, or inside one sub-folder (antelopev2.zip has `antelopev2/`). */
export const ZIP_LAYOUTS = ['flat', 'nested'] as const;
export type ZipLayout = (typeof ZIP_LAYOUTS)[number];

/** The manifest versions this code reads. */
export const SUPPORTED_ZOO_VERSIONS = [1] as const;

export interface ZooSource {
  readonly title: string;
  readonly url: string | null;
}

/** Fact name -> ids of the sources it was taken from. */
export type FactSources = Readonly<Record<string, readonly string[]>>;

export interface ZooFile {
  readonly name: string;
  readonly role: ModelRole;
  /** Input width and height in pixels, as the InsightFace runtime feeds it. */
  readonly inputSize: readonly [number, number] | null;
  /** Length of the embedding (recognizers only). */
  readonly embeddingSize: number | null;
  /** Length of the (single) output vector for recognizers, landmark and attribute models. */
  readonly outputSize: number | null;
  readonly size: number | null;
  readonly sha256: string | null;
  readonly sources: FactSources;
  readonly note: string | null;
}

export interface ZooZip {
  readonly size: number | null;
  readonly sha256: string | null;
  readonly layout: ZipLayout | null;
  readonly sources: FactSources;
}

export interface ZooPack {
  readonly name: string;
  readonly description: string;
  readonly license: string;
  readonly url: string;
  readonly zip: ZooZip;
  readonly files: readonly ZooFile[];
}

export interface Zoo {
  readonly version: number;
  readonly sources: Readonly<Record<string, ZooSource>>;
  readonly packs: readonly ZooPack[];
  /** Where the manifest was read from (for messages). */
  readonly file: string;
}

const SHA256 = /^[0-9a-f]{64}$/;
const PACK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*\.onnx$/;

/** Collects the failing field path; throws the coded error at the first problem. */
class Checker {
  constructor(private readonly file: string) {}

  fail(at: string, expected: string, got: unknown): never {
    const shown = got === undefined ? 'nothing' : JSON.stringify(got)?.slice(0, 80) ?? String(got);
    throw new FaceoptError('FACEOPT_ERR_ZOO_INVALID', { path: this.file, reason: `${at}: expected ${expected}, got ${shown}` });
  }

  object(v: unknown, at: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(at, 'an object', v);
    return v as Record<string, unknown>;
  }

  array(v: unknown, at: string, nonEmpty = true): unknown[] {
    if (!Array.isArray(v) || (nonEmpty && v.length === 0)) this.fail(at, nonEmpty ? 'a non-empty array' : 'an array', v);
    return v;
  }

  string(v: unknown, at: string, pattern?: RegExp, what = 'a non-empty string'): string {
    if (typeof v !== 'string' || v.length === 0 || (pattern && !pattern.test(v))) this.fail(at, what, v);
    return v;
  }

  optString(v: unknown, at: string): string | null {
    return v === null ? null : this.string(v, at, undefined, 'a string or null');
  }

  optInt(v: unknown, at: string): number | null {
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(at, 'a positive integer or null', v);
    return v;
  }

  optSha(v: unknown, at: string): string | null {
    return v === null ? null : this.string(v, at, SHA256, '64 lowercase hex characters or null');
  }

  oneOf<T extends string>(v: unknown, at: string, allowed: readonly T[], nullable: boolean): T | null {
    if (nullable && v === null) return null;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(at, `one of ${allowed.join(', ')}${nullable ? ' or null' : ''}`, v);
    }
    return v as T;
  }

  /** Every fact that has a value must list at least one known source id. */
  sources(v: unknown, at: string, facts: Record<string, unknown>, known: ReadonlySet<string>): FactSources {
    const table = this.object(v, at);
    const out: Record<string, string[]> = {};
    for (const [fact, ids] of Object.entries(table)) {
      if (!(fact in facts)) this.fail(`${at}.${fact}`, `one of the facts ${Object.keys(facts).join(', ')}`, fact);
      const list = this.array(ids, `${at}.${fact}`).map((id, i) => this.string(id, `${at}.${fact}[${i}]`));
      for (const id of list) if (!known.has(id)) this.fail(`${at}.${fact}`, `source ids from "sources"`, id);
      out[fact] = list;
    }
    for (const [fact, value] of Object.entries(facts)) {
      if (value !== null && !out[fact]) this.fail(`${at}.${fact}`, `a source for ${fact} (its value is not null)`, undefined);
    }
    return out;
  }
}

function checkFile(c: Checker, raw: unknown, at: string, known: ReadonlySet<string>): ZooFile {
  const f = c.object(raw, at);
  const role = c.oneOf(f.role, `${at}.role`, MODEL_ROLES, false) as ModelRole;
  let inputSize: [number, number] | null = null;
  if (f.inputSize !== null) {
    const pair = c.array(f.inputSize, `${at}.inputSize`);
    if (pair.length !== 2) c.fail(`${at}.inputSize`, '[width, height] or null', f.inputSize);
    inputSize = [c.optInt(pair[0], `${at}.inputSize[0]`) ?? c.fail(`${at}.inputSize[0]`, 'a positive integer', null),
      c.optInt(pair[1], `${at}.inputSize[1]`) ?? c.fail(`${at}.inputSize[1]`, 'a positive integer', null)];
  }
  const embeddingSize = c.optInt(f.embeddingSize, `${at}.embeddingSize`);
  if (embeddingSize !== null && role !== 'recognizer') c.fail(`${at}.embeddingSize`, 'null for a non-recognizer', embeddingSize);
  const facts = {
    inputSize,
    embeddingSize,
    outputSize: c.optInt(f.outputSize, `${at}.outputSize`),
    size: c.optInt(f.size, `${at}.size`),
    sha256: c.optSha(f.sha256, `${at}.sha256`),
  };
  return {
    name: c.string(f.name, `${at}.name`, FILE_NAME, 'a file name ending in .onnx (letters, digits, _ . -)'),
    role,
    ...facts,
    sources: c.sources(f.sources, `${at}.sources`, facts, known),
    note: c.optString(f.note ?? null, `${at}.note`),
  };
}

function checkPack(c: Checker, raw: unknown, at: string, known: ReadonlySet<string>): ZooPack {
  const p = c.object(raw, at);
  const z = c.object(p.zip, `${at}.zip`);
  const zipFacts = {
    size: c.optInt(z.size, `${at}.zip.size`),
    sha256: c.optSha(z.sha256, `${at}.zip.sha256`),
    layout: c.oneOf(z.layout, `${at}.zip.layout`, ZIP_LAYOUTS, true),
  };
  const files = c.array(p.files, `${at}.files`).map((f, i) => checkFile(c, f, `${at}.files[${i}]`, known));
  const seen = new Set<string>();
  files.forEach((f, i) => {
    if (seen.has(f.name)) c.fail(`${at}.files[${i}].name`, 'a name unique within the pack', f.name);
    seen.add(f.name);
  });
  return {
    name: c.string(p.name, `${at}.name`, PACK_NAME, 'a pack name (letters, digits, _ . -)'),
    description: c.string(p.description, `${at}.description`),
    license: c.string(p.license, `${at}.license`),
    url: c.string(p.url, `${at}.url`, /^https?:\/\/\S+$/, 'an http(s) URL'),
    zip: { ...zipFacts, sources: c.sources(z.sources, `${at}.zip.sources`, zipFacts, known) },
    files,
  };
}

/**
 * Check a parsed zoo manifest and return it typed. `file` only names the manifest in the error; any
 * problem throws FACEOPT_ERR_ZOO_INVALID with the failing field's path and what was expected there.
 */
export function validateZoo(raw: unknown, file: string): Zoo {
  const c = new Checker(file);
  const root = c.object(raw, '(root)');
  const version = root.version;
  if (!(SUPPORTED_ZOO_VERSIONS as readonly unknown[]).includes(version)) {
    c.fail('version', `one of ${SUPPORTED_ZOO_VERSIONS.join(', ')} (this faceopt reads no other)`, version);
  }
  const sourceTable = c.object(root.sources, 'sources');
  const sources: Record<string, ZooSource> = {};
  for (const [id, s] of Object.entries(sourceTable)) {
    const o = c.object(s, `sources.${id}`);
    sources[id] = { title: c.string(o.title, `sources.${id}.title`), url: c.optString(o.url, `sources.${id}.url`) };
  }
  const known = new Set(Object.keys(sources));
  const packs = c.array(root.packs, 'packs').map((p, i) => checkPack(c, p, `packs[${i}]`, known));
  const names = new Set<string>();
  packs.forEach((p, i) => {
    if (names.has(p.name)) c.fail(`packs[${i}].name`, 'a pack name used once', p.name);
    names.add(p.name);
  });
  return { version: version as number, sources, packs, file };
}
