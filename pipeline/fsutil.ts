/**
 * File helpers every stage uses: atomic writes (temp file in the same folder + rename, so a crash never
 * leaves a half-written file), sha256 of a file, and a readable "does it exist" check.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { rename, rm, writeFile } from 'node:fs/promises';
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
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  refuseSpecialFile(file);
  const made = ensureDir(dir);
  const untrack = trackTemp(tmp);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    removeMadeDirs(made); // a failed write into a new folder left it behind, empty
    throw writeFailed(file, e);
  } finally {
    untrack();
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
        await writeFile(tmp, data);
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

/** The folder of this user's output locks (per user: another user's locks could be neither read nor removed). */
function lockDir(): string {
  return path.join(tmpdir(), `faceopt-locks-${process.getuid?.() ?? 'user'}`);
}

/**
 * The lock file for output `target` (a model file, a bundle or report folder): one per real path, in a
 * folder of the system's temporary directory, so taking it makes nothing beside the outputs.
 */
export function outputLockPath(target: string): string {
  const abs = path.resolve(target);
  // the real path of the nearest existing folder, so a link and its target share one lock
  let at = path.dirname(abs);
  const rest = [path.basename(abs)];
  while (!existsSync(at) && path.dirname(at) !== at) { rest.unshift(path.basename(at)); at = path.dirname(at); }
  let real = at;
  try { real = realpathSync(at); } catch { /* as given */ }
  const key = path.join(real, ...rest);
  return path.join(lockDir(), `${sha256(key).slice(0, 32)}.lock`);
}

/** When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), or null where unknown. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Locks this process holds now (lock path -> the token written in it). */
const heldLocks = new Map<string, string>();

/**
 * Whether the run that wrote lock `content` (`pid`, its start time, a token, the output) still runs. A
 * pid is not enough: in a container every run can get the same pid (1, or the launcher's child), so a
 * lock left by a run that was killed looked like this run's own, or like a live run, for good. The
 * start time recorded beside the pid tells a restarted process apart; this process's own pid counts
 * only for a lock it holds (its token).
 */
function lockHolderAlive(lock: string, content: string): boolean {
  const [pidText, start, token] = content.split('\n');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return heldLocks.get(lock) === token;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStartTime(pid);
  return !start || !/^\d+$/.test(start) || now === null || now === start;
}

/**
 * Take the outputs `targets` for this run: FACEOPT_ERR_BAD_ARGUMENT (naming `flag` and the other run's
 * pid) when another faceopt run is writing one of them now. Two runs into the same --out used to race:
 * each replaced the other's model while it was being evaluated, and the report left could describe one
 * run's file with the other's numbers. A lock left by a run that died (or a signal stopped) is taken
 * over. Returns the release function.
 */
export function lockOutputs(targets: readonly { path: string; flag: string }[]): () => void {
  const held: (() => void)[] = [];
  try {
    const seen = new Set<string>();
    for (const t of targets) {
      const lock = outputLockPath(t.path);
      if (seen.has(lock)) continue;
      seen.add(lock);
      held.push(takeLock(lock, t));
    }
  } catch (e) {
    for (const r of held) r();
    throw e;
  }
  return () => { for (const r of held.splice(0)) r(); };
}

/** How long a run waits for another run's takeover of the same stale lock before it gives up. */
const TAKEOVER_WAIT_MS = 2_000;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The file whose creation gives one run the right to remove the stale lock whose content is `stale`. */
function takeoverMarker(lock: string, stale: string): string {
  return `${lock}.${sha256(stale).slice(0, 16)}.takeover`;
}

/**
 * Remove lock `lock` judged stale with content `stale`, if it still is that lock. Only the run that
 * creates the takeover marker named after that content (a hard link of its own lock file `own`, so the
 * marker says whose it is) may remove it, and it removes it only while the lock still reads `stale`:
 * the lock path then goes from the stale lock to none and from none to one run's lock, never from a
 * live lock to anything. (Moving the lock aside and putting it back when it was no longer the stale one,
 * as before, let a third run take the emptied path meanwhile: two runs went ahead.) 'busy' when another
 * run holds the marker; the marker is removed again at once, so a run that read the stale lock long ago
 * gets it later, finds another lock and removes nothing.
 */
export function removeStaleLock(lock: string, stale: string, own: string): 'removed' | 'changed' | 'busy' {
  const marker = takeoverMarker(lock, stale);
  try {
    linkSync(own, marker);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EEXIST' ? 'busy' : 'changed'; // 'changed': the caller looks again
  }
  try {
    let now: string | null = null;
    try { now = readFileSync(lock, 'utf8'); } catch { /* gone */ }
    if (now !== stale) return 'changed';
    unlinkSync(lock);
    return 'removed';
  } finally {
    try { unlinkSync(marker); } catch { /* gone */ }
  }
}

/** A takeover marker takes microseconds to live; one this old was left by a run that stopped mid-takeover. */
const MARKER_ABANDONED_MS = 10_000;

/**
 * Whether takeover marker `marker` was abandoned: the run it names (it is a hard link of that run's lock
 * file) is gone, or it is older than any takeover takes. Such a marker blocked the output for good.
 * (Two runs removing one abandoned marker at the same instant, while a third makes a new one, could still
 * let two runs remove locks: that needs a run killed inside its takeover first.)
 */
function abandonedMarker(marker: string): boolean {
  try {
    const content = readFileSync(marker, 'utf8');
    return !lockHolderAlive(marker, content) || Date.now() - statSync(marker).ctimeMs > MARKER_ABANDONED_MS;
  } catch {
    return false; // gone meanwhile: the next attempt sees
  }
}

function takeLock(lock: string, t: { path: string; flag: string }): () => void {
  const unlocked = () => undefined;
  try {
    mkdirSync(path.dirname(lock), { recursive: true, mode: 0o700 });
  } catch {
    return unlocked; // no lock can be taken (a read-only temporary folder): run unlocked rather than not at all
  }
  const token = randomBytes(8).toString('hex');
  const content = `${process.pid}\n${processStartTime(process.pid) ?? ''}\n${token}\n${path.resolve(t.path)}\n`;
  // written whole under another name, then linked into place: link() fails if the lock exists, and a
  // reader never sees it half-written (a lock read between its creation and its write looked stale)
  const tmp = `${lock}.${process.pid}.${token}.tmp`;
  try {
    writeFileSync(tmp, content);
  } catch {
    return unlocked;
  }
  let waited = 0;
  let cleared = 0;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, lock);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return unlocked;
        let other = '';
        try { other = readFileSync(lock, 'utf8'); } catch { continue; /* removed meanwhile: try again */ }
        if (attempt < 3 && !lockHolderAlive(lock, other)) {
          const removed = removeStaleLock(lock, other, tmp);
          if (removed === 'busy') {
            // another run is taking this stale lock over right now: wait for it (not an attempt of ours);
            // a marker whose run died in the middle of it (or older than any takeover takes) is removed
            const marker = takeoverMarker(lock, other);
            if (cleared < 3 && abandonedMarker(marker)) { cleared++; try { unlinkSync(marker); } catch { /* gone */ } attempt--; continue; }
            if (waited < TAKEOVER_WAIT_MS) { sleepSync(5); waited += 5; attempt--; continue; }
            let holder = '';
            try { holder = readFileSync(marker, 'utf8').split('\n')[0] ?? ''; } catch { /* gone */ }
            throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
              expected: 'an output whose stale lock can be taken over (remove the lock and its .takeover file if no faceopt run is writing it)',
              name: t.flag,
              received: `${path.resolve(t.path)}, whose stale lock ${lock} faceopt run pid ${holder || '(unknown)'} is taking over and has not in ${TAKEOVER_WAIT_MS / 1000} s (${marker})`,
            });
          }
          continue;
        }
        const pid = Number.parseInt(other, 10);
        throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
          expected: 'an output no other faceopt run is writing (wait for that run to finish, or choose another path)',
          name: t.flag,
          received: `${path.resolve(t.path)}, which faceopt run ${Number.isNaN(pid) ? '(pid unknown)' : `pid ${pid}`} is writing now (lock ${lock})`,
        });
      }
    }
  } finally {
    try { unlinkSync(tmp); } catch { /* gone */ }
  }
  heldLocks.set(lock, token);
  // not registered with trackTemp: a lock left by a run a signal stopped is taken over by the next run
  // (its process is gone), and keeping the signal handlers for the whole run would delay Ctrl-C until the
  // quantizer's longest synchronous stretch ends
  return () => {
    if (heldLocks.get(lock) !== token) return;
    heldLocks.delete(lock);
    try {
      if (readFileSync(lock, 'utf8').split('\n')[2] === token) unlinkSync(lock);
    } catch { /* already gone */ }
  };
}

/**
 * The text of a list file (`--calibration-list`, `--pairs`), refused (FACEOPT_ERR_BAD_ARGUMENT) when it is a
 * folder or binary: an image passed by mistake put ~950 of its bytes, NULs included, into the error line.
 */
export function readTextListFile(file: string, flag: string, expected: string): string {
  if (!existsSync(file)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: file });
  if (!statSync(file).isFile()) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected, name: flag, received: `${file} (not a file)` });
  const text = readFileSync(file, 'utf8');
  if (/[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text.slice(0, 4096))) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected, name: flag, received: `${file} (a binary file: an image or a model?)` });
  }
  return text;
}

