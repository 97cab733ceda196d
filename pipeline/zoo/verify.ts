/**
 * Checking model files on disk against the zoo manifest. A file is checked as far as the manifest
 * allows: sha256 when one was published, else its size, else only that it exists; the status says which,
 * so "ok" never overstates what was proven. The same check serves `models list` (sizes only, fast),
 * `models verify` (full hashes) and `models fetch` (every unpacked file before it is moved into place).
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256File } from '../fsutil.js';
import { findPack, packDir, type Zoo, type ZooFile, type ZooPack } from './zoo.js';

export type FileStatus =
  | 'ok' //               sha256 matches the published one
  | 'size-ok' //          size matches; no sha256 published (or hashing skipped)
  | 'present' //          exists; nothing published to compare with
  | 'missing'
  | 'size-mismatch'
  | 'sha256-mismatch';

export interface FileCheck {
  readonly pack: string;
  readonly file: string;
  readonly path: string;
  readonly status: FileStatus;
  readonly expectedSize: number | null;
  readonly actualSize: number | null;
  readonly expectedSha256: string | null;
  /** Computed only when hashing was asked for. */
  readonly actualSha256: string | null;
}

export interface PackCheck {
  readonly pack: string;
  readonly dir: string;
  /** The pack folder exists. */
  readonly present: boolean;
  readonly files: readonly FileCheck[];
}

/** True for statuses that mean the file cannot be used as the manifest describes it. */
export function isBadStatus(status: FileStatus): boolean {
  return status === 'missing' || status === 'size-mismatch' || status === 'sha256-mismatch';
}

/**
 * Check one file at `filePath` against its manifest entry. With `hash`, the sha256 is computed (also
 * when none is published, so it can be reported); without, only existence and size are looked at.
 */
export async function checkFile(pack: string, entry: ZooFile, filePath: string, hash: boolean): Promise<FileCheck> {
  const base = { pack, file: entry.name, path: filePath, expectedSize: entry.size, expectedSha256: entry.sha256 };
  let size: number;
  try {
    const st = await stat(filePath);
    if (!st.isFile()) return { ...base, status: 'missing', actualSize: null, actualSha256: null };
    size = st.size;
  } catch {
    return { ...base, status: 'missing', actualSize: null, actualSha256: null };
  }
  if (entry.size !== null && size !== entry.size) {
    return { ...base, status: 'size-mismatch', actualSize: size, actualSha256: hash ? await sha256File(filePath) : null };
  }
  const actualSha256 = hash ? await sha256File(filePath) : null;
  let status: FileStatus;
  if (actualSha256 !== null && entry.sha256 !== null) status = actualSha256 === entry.sha256 ? 'ok' : 'sha256-mismatch';
  else status = entry.size !== null ? 'size-ok' : 'present';
  return { ...base, status, actualSize: size, actualSha256 };
}

/** Check every manifest file of `pack` inside `dir` (default `<modelsDir>/<pack>`). */
export async function checkPackDir(pack: ZooPack, dir: string, hash: boolean): Promise<PackCheck> {
  const files: FileCheck[] = [];
  for (const entry of pack.files) files.push(await checkFile(pack.name, entry, path.join(dir, entry.name), hash));
  return { pack: pack.name, dir, present: existsSync(dir), files };
}

/**
 * Check the downloaded files of one pack (or of every pack, when `packName` is undefined) in
 * `modelsDir`. Unknown pack names throw FACEOPT_ERR_UNKNOWN_PACK.
 */
export async function verifyPacks(zoo: Zoo, modelsDir: string, packName?: string, hash = true): Promise<PackCheck[]> {
  const packs = packName === undefined ? zoo.packs : [findPack(zoo, packName)];
  const out: PackCheck[] = [];
  for (const pack of packs) out.push(await checkPackDir(pack, packDir(modelsDir, pack), hash));
  return out;
}
