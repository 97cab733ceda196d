/**
 * File helpers every stage uses: atomic writes (temp file in the same folder + rename, so a crash never
 * leaves a half-written file), sha256 of a file, and a readable "does it exist" check.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { FaceoptError, writeFailed } from './errors.js';

/**
 * Create folder `dir` and its missing parents, one level at a time. Node's own `mkdir(dir, { recursive:
 * true })` never returns where a parent exists but refuses new entries with ENOENT (under /proc it spun
 * at 100% CPU: `optimize --report-dir /proc/x` hung); here any failure is FACEOPT_ERR_WRITE_FAILED, and a
 * file in the way says so.
 */
export function ensureDir(dir: string): string[] {
  const { abs, missing } = existingAncestor(dir);
  const made: string[] = [];
  for (const d of missing) {
    try {
      mkdirSync(d);
      made.push(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d).isDirectory()) continue;
      throw writeFailed(abs, e);
    }
  }
  return made;
}

/** Remove folders `ensureDir` made for a write that failed, innermost first, where they are still empty. */
function removeMadeDirs(made: readonly string[]): void {
  for (const d of [...made].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      return; // not empty (another writer), or gone: leave it and its parents
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
    throw writeFailed(abs, `${at} is a file, not a folder`);
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
    throw writeFailed(abs, e);
  }
}

/** Temporary files and folders in use now, removed if the process is stopped by a signal. */
const pendingTemps = new Set<string>();
const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * On SIGINT/SIGTERM/SIGHUP while temporary paths exist: remove them, then die of the same signal (the
 * shell sees 130/143 as before). A `finally` never runs when a signal ends Node, so without this an
 * interrupted download, model or stats write left `.NAME.PID.xxxx.tmp` files (a 340 kB piece of a zip
 * in models/ after Ctrl-C in `models fetch`). Where the process has its own handlers (the server's
 * graceful stop), those decide how it ends; the temporary paths are removed all the same.
 */
function onCleanupSignal(signal: NodeJS.Signals): void {
  removePendingTemps();
  for (const s of CLEANUP_SIGNALS) process.removeListener(s, onCleanupSignal);
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** Remove every temporary path registered with trackTemp (synchronously; errors are ignored). */
export function removePendingTemps(): void {
  for (const p of pendingTemps) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch { /* best effort: the process is being stopped */ }
  }
  pendingTemps.clear();
}

/**
 * Register temporary path `p` (a file or a folder) for removal if a signal stops the process before the
 * returned function is called (after the path was renamed into place or removed). The signal handlers
 * exist only while something is registered, so a process with nothing pending dies of a signal as usual.
 */
export function trackTemp(p: string): () => void {
  const abs = path.resolve(p);
  if (pendingTemps.size === 0) for (const s of CLEANUP_SIGNALS) process.on(s, onCleanupSignal);
  pendingTemps.add(abs);
  return () => {
    if (!pendingTemps.delete(abs) || pendingTemps.size > 0) return;
    for (const s of CLEANUP_SIGNALS) process.removeListener(s, onCleanupSignal);
  };
}

/**
 * What `file` is when it exists and is not a regular file (or a link to one, which a write replaces), else
 * null. A link to a device, pipe or socket counts as one: `--out /dev/stdout` (a link) was replaced by
 * a regular file as root, as `/dev/null` itself was.
 */
export function specialFileKind(file: string): string | null {
  let st;
  try {
    st = lstatSync(file);
  } catch {
    return null;
  }
  if (st.isSymbolicLink()) {
    try {
      st = statSync(file);
    } catch {
      return null; // a dangling link: replaced like a file
    }
    if (st.isFile() || st.isDirectory()) return null;
    const kind = specialFileKind(realpathSync(file));
    return kind ? `a link to ${kind}` : null;
  }
  if (st.isFile()) return null;
  return st.isDirectory() ? 'a folder' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isFIFO() ? 'a named pipe' : st.isSocket() ? 'a socket' : 'not a regular file';
}

/**
 * FACEOPT_ERR_WRITE_FAILED when `file` is a device, pipe, socket or folder: a write by rename would put a
 * regular file in its place (`--out /dev/null` as root replaced the system's /dev/null with the model).
 */
export function refuseSpecialFile(file: string): void {
  const kind = specialFileKind(file);
  if (kind) throw writeFailed(file, `it is ${kind}, not a regular file, and faceopt writes by replacing the file; name a file path`);
}

/** Write `data` to `file` atomically; creates the parent folder. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await writeFilesAtomic([[file, data]]);
}

/**
 * Write `file` and flush it to the disk before it is renamed into place: without the fsync a power loss
 * soon after the rename can leave the new name on an empty or partial file (the rename reaches the disk
 * before the data on some file systems).
 */
async function writeDurably(file: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Write a set of files that belong together (a report's json, md and html) all or nothing: every file
 * to a temp beside it first, then each renamed into place. A write that fails (a full disk) leaves the
 * earlier set untouched; a rename that fails after others (rare: same folder) removes the whole set
 * rather than leave files of two runs side by side. Each file still appears atomically.
 */
export async function writeFilesAtomic(files: readonly (readonly [string, string | Uint8Array])[]): Promise<void> {
  const temps: { file: string; tmp: string; untrack: () => void }[] = [];
  const made: string[] = [];
  let renamed = 0;
  try {
    for (const [file, data] of files) {
      const dir = path.dirname(path.resolve(file));
      refuseSpecialFile(file);
      made.push(...ensureDir(dir));
      const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      temps.push({ file, tmp, untrack: trackTemp(tmp) });
      try {
        await writeDurably(tmp, data);
      } catch (e) {
        throw writeFailed(file, e);
      }
    }
    for (const t of temps) {
      try {
        await rename(t.tmp, t.file);
        renamed++;
      } catch (e) {
        if (renamed > 0) await Promise.all(files.map(([f]) => rm(f, { force: true }).catch(() => undefined)));
        throw writeFailed(t.file, e);
      }
    }
  } finally {
    for (const t of temps) {
      await rm(t.tmp, { force: true }).catch(() => undefined);
      t.untrack();
    }
    if (renamed < files.length) removeMadeDirs(made);
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

/**
 * The text of a list file (`--calibration-list`, `--pairs`), refused (FACEOPT_ERR_BAD_ARGUMENT) when it is a
 * folder or binary: an image passed by mistake put ~950 of its bytes, NULs included, into the error line.
 */
export function readTextListFile(file: string, flag: string, expected: string): string {
  if (!existsSync(file)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: file });
  if (!statSync(file).isFile()) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected, name: flag, received: `${file} (not a file)` });
  const text = readFileSync(file, 'utf8');
  if (looksBinary(text)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected, name: flag, received: `${file} (a binary file: an image or a model?)` });
  }
  return text;
}

/** Whether text read as UTF-8 is in fact a binary file (an image or a model): control bytes or invalid UTF-8 in its first 4 KiB. */
export function looksBinary(text: string): boolean {
  return /[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text.slice(0, 4096));
}
