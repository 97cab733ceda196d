/**
 * File helpers every stage uses: atomic writes (temp file in the same folder + rename, so a crash never
 * leaves a half-written file), sha256 of a file, and a readable "does it exist" check.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FaceoptError } from './errors.js';

/**
 * Create folder `dir` and its missing parents, one level at a time. Node's own `mkdir(dir, { recursive:
 * true })` never returns where a parent exists but refuses new entries with ENOENT (under /proc it spun
 * at 100% CPU: `optimize --report-dir /proc/x` hung); here any failure is FACEOPT_ERR_WRITE_FAILED, and a
 * file in the way says so.
 */
export function ensureDir(dir: string): void {
  const { abs, missing } = existingAncestor(dir);
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d).isDirectory()) continue;
      throw new FaceoptError('FACEOPT_ERR_WRITE_FAILED', { path: abs, reason: (e as Error).message }, { cause: e });
    }
  }
}

/**
 * The nearest existing folder at or above `dir` and the folders below it still to make (outermost first);
 * FACEOPT_ERR_WRITE_FAILED when a file is in the way.
 */
function existingAncestor(dir: string): { abs: string; at: string; missing: string[] } {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let at = abs;
  while (!existsSync(at) && path.dirname(at) !== at) {
    missing.unshift(at);
    at = path.dirname(at);
  }
  if (!statSync(at).isDirectory()) {
    throw new FaceoptError('FACEOPT_ERR_WRITE_FAILED', { path: abs, reason: `${at} is a file, not a folder` });
  }
  return { abs, at, missing };
}

/**
 * Whether folder `dir` could be written, without making anything: its nearest existing ancestor must be
 * a folder where a file can be created (a probe file is made and removed there). FACEOPT_ERR_WRITE_FAILED
 * now rather than after the work; a run that fails later leaves no empty folders behind.
 */
export function checkWritableDir(dir: string): void {
  const { abs, at } = existingAncestor(dir);
  const probe = path.join(at, `.faceopt-probe.${process.pid}.${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    throw new FaceoptError('FACEOPT_ERR_WRITE_FAILED', { path: abs, reason: (e as Error).message }, { cause: e });
  }
}

/** Write `data` to `file` atomically; creates the parent folder. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  ensureDir(dir);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new FaceoptError('FACEOPT_ERR_WRITE_FAILED', { path: file, reason: (e as Error).message }, { cause: e });
  }
}

/** sha256 (hex) of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(file).on('data', (c) => hash.update(c)).on('end', () => resolve()).on('error', reject);
  });
  return hash.digest('hex');
}

/** sha256 (hex) of bytes in memory. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Throw FACEOPT_ERR_FILE_NOT_FOUND unless `file` exists. */
export function requireFile(file: string): string {
  if (!existsSync(file)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: file });
  return file;
}
