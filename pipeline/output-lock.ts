/**
 * Output locks: one run writes a given output (model file, bundle or report folder) at a time. A lock is
 * a file per real output path in this user's folder of the system's temporary directory, holding the
 * owner's pid and start time, so a lock left by a process that died is taken over (split out of
 * fsutil.ts, behaviour unchanged).
 */
import { existsSync, linkSync, mkdirSync, readFileSync, realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FaceoptError } from './errors.js';
import { sha256, trackTemp } from './fsutil.js';

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
