/**
 * `faceopt models fetch PACK`: download a pack's zip, check it, unpack it, check every model file, and
 * only then put the pack folder in place. Each step works on temporary names inside the models folder
 * (same file system, so the final rename is atomic); any failure removes them, so a pack folder is
 * either complete and verified or untouched. A pack already present and intact is not fetched again
 * unless `force` is set.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { FaceoptError, isFaceoptError, writeFailed } from '../errors.js';
import { ensureDir, trackTemp, writeFileAtomic } from '../fsutil.js';
import { modelsDir as defaultModelsDir } from '../paths.js';
import { bodyTooLong, downloadToFile } from './download.js';
import { createProgress, silentProgress, type ProgressSink } from './progress.js';
import { extractZip } from './unpack.js';
import { checkPackDir, isBadStatus, type FileCheck } from './verify.js';
import { findPack, loadZoo, packDir, type Zoo } from './zoo.js';

const NOT_THE_PACK = 'The download is not the published pack (nothing was kept): fetch it again, or check --url.';

export interface FetchOptions {
  /** Models folder (default: FACEOPT_MODELS or `models/`). */
  readonly modelsDir?: string;
  readonly zoo?: Zoo;
  /** Download from here instead of the manifest URL (a mirror); checksums still apply. */
  readonly url?: string;
  /** Fetch even when an intact copy is present. */
  readonly force?: boolean;
  /** Where the progress display goes; null for none. Default stderr. */
  readonly progress?: ProgressSink | null;
  readonly connectTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
}

export interface FetchResult {
  readonly pack: string;
  readonly dir: string;
  readonly status: 'fetched' | 'already-present';
  readonly url: string | null;
  readonly bytes: number;
  readonly zipSha256: string | null;
  readonly files: readonly FileCheck[];
}

/** Name of the provenance record written into each fetched pack folder. */
export const FETCH_RECORD = '.faceopt-fetch.json';

function tmpName(dir: string, pack: string, what: string): string {
  return path.join(dir, `.${pack}.${what}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Throw the error that fits the first bad file of a freshly unpacked pack. */
function rejectBadFile(zipLabel: string, bad: FileCheck, unpacked: string[]): never {
  if (bad.status === 'missing') {
    throw new FaceoptError('FACEOPT_ERR_MODEL_TRUNCATED', { path: zipLabel, reason: `it has no ${bad.file} (it has: ${unpacked.join(', ') || 'no files'})` });
  }
  const bytes = (n: number | null): string => (n === null ? '' : ` (${n} bytes)`);
  throw new FaceoptError('FACEOPT_ERR_CHECKSUM', {
    path: `${bad.pack}/${bad.file}`,
    actual: `${bad.actualSha256 ?? 'not computed'}${bytes(bad.actualSize)}`,
    expected: `${bad.expectedSha256 ?? 'unpublished'}${bytes(bad.expectedSize)}`,
    remedy: 'The pack is not the published one (nothing was kept): fetch it again, or check --url.',
  });
}

/**
 * Download, verify and unpack model pack `name` into `<modelsDir>/<name>/`. Throws
 * FACEOPT_ERR_UNKNOWN_PACK, FACEOPT_ERR_DOWNLOAD (offline, HTTP error, short body; the message says
 * where to put the files by hand), FACEOPT_ERR_CHECKSUM (zip or model file differs from the manifest)
 * or FACEOPT_ERR_MODEL_TRUNCATED (damaged zip); in every case nothing is left half-written.
 */
export async function fetchPack(name: string, opts: FetchOptions = {}): Promise<FetchResult> {
  const zoo = opts.zoo ?? loadZoo();
  const pack = findPack(zoo, name);
  const dir = path.resolve(opts.modelsDir ?? defaultModelsDir());
  const target = packDir(dir, pack);

  if (!opts.force && existsSync(target)) {
    const check = await checkPackDir(pack, target, true);
    if (!check.files.some((f) => isBadStatus(f.status))) {
      return { pack: pack.name, dir: target, status: 'already-present', url: null, bytes: 0, zipSha256: null, files: check.files };
    }
  }

  const url = opts.url ?? pack.url;
  // folders this fetch makes (outermost first): removed again, if still empty, when it fails (offline, the
  // usual case, left an empty models folder behind)
  const made: string[] = [];
  for (let d = dir; !existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) made.unshift(d);
  try {
    ensureDir(dir);
  } catch (e) {
    if (isFaceoptError(e)) throw e; // ensureDir's own coded error already says what (it was wrapped twice)
    throw writeFailed(dir, e);
  }
  const zipTmp = tmpName(dir, pack.name, 'zip');
  const unpackTmp = tmpName(dir, pack.name, 'unpack');
  const progress = opts.progress === null ? silentProgress : createProgress(`${pack.name}.zip`, opts.progress ?? process.stderr);
  // Ctrl-C during the download or the unpacking removes them too (a `finally` does not run then)
  const untrack = [trackTemp(zipTmp), trackTemp(unpackTmp)];
  let fetched = false;
  try {
    const got = await downloadToFile(url, zipTmp, {
      connectTimeoutMs: opts.connectTimeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      manualDir: target,
      ...(pack.zip.size !== null ? { maxBytes: pack.zip.size } : {}), // a longer body is not the pack: stop it there
      onProgress: (r, t) => progress.update(r, t ?? pack.zip.size),
    }).catch((e: unknown) => {
      progress.interrupt();
      // longer than the published zip: not the pack (a wrong --url), refused as the size check below would
      if (bodyTooLong(e)) throw new FaceoptError('FACEOPT_ERR_CHECKSUM', { path: url, actual: `more than ${pack.zip.size} bytes`, expected: `${pack.zip.sha256 ?? 'unpublished'} (${pack.zip.size} bytes)`, remedy: NOT_THE_PACK });
      throw e;
    });
    progress.done();
    if (pack.zip.size !== null && got.bytes !== pack.zip.size) {
      throw new FaceoptError('FACEOPT_ERR_CHECKSUM', {
        path: url, actual: `${got.sha256} (${got.bytes} bytes)`, expected: `${pack.zip.sha256 ?? 'unpublished'} (${pack.zip.size} bytes)`,
        remedy: NOT_THE_PACK,
      });
    }
    if (pack.zip.sha256 !== null && got.sha256 !== pack.zip.sha256) {
      throw new FaceoptError('FACEOPT_ERR_CHECKSUM', { path: url, actual: got.sha256, expected: pack.zip.sha256, remedy: NOT_THE_PACK });
    }
    const unpacked = await extractZip(zipTmp, unpackTmp, { stripTopFolder: true });
    const check = await checkPackDir(pack, unpackTmp, true);
    const bad = check.files.find((f) => isBadStatus(f.status));
    if (bad) rejectBadFile(`${pack.name}.zip from ${url}`, bad, unpacked.map((u) => u.name));
    await writeFileAtomic(path.join(unpackTmp, FETCH_RECORD), `${JSON.stringify({
      pack: pack.name, url, finalUrl: got.finalUrl, zipBytes: got.bytes, zipSha256: got.sha256, fetchedAt: new Date().toISOString(),
      files: check.files.map((f) => ({ name: f.file, size: f.actualSize, sha256: f.actualSha256, status: f.status })),
    }, null, 2)}\n`);
    await swapIntoPlace(unpackTmp, target, dir, pack.name);
    const files = check.files.map((f) => ({ ...f, path: path.join(target, f.file) }));
    fetched = true;
    return { pack: pack.name, dir: target, status: 'fetched', url, bytes: got.bytes, zipSha256: got.sha256, files };
  } finally {
    await rm(zipTmp, { force: true });
    await rm(unpackTmp, { recursive: true, force: true });
    if (!fetched) for (const d of [...made].reverse()) await rmdir(d).catch(() => undefined);
    for (const u of untrack) u();
  }
}

/** Replace `target` with the folder `fresh` by renames; an old copy is removed only after success. */
async function swapIntoPlace(fresh: string, target: string, dir: string, pack: string): Promise<void> {
  let old: string | null = null;
  try {
    if (existsSync(target)) {
      old = tmpName(dir, pack, 'old');
      await rename(target, old);
    }
    await rename(fresh, target);
  } catch (e) {
    if (old !== null && !existsSync(target)) await rename(old, target).catch(() => undefined);
    throw writeFailed(target, e);
  }
  if (old !== null) {
    const untrack = trackTemp(old); // the new copy is in place: a Ctrl-C now still removes the old one
    await rm(old, { recursive: true, force: true });
    untrack();
  }
}
