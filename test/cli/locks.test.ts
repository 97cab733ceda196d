/**
 * Output locks and special files, in process: a lock left by a killed run whose pid the next run gets
 * again (containers: pid 1 every time) or whose pid now belongs to another process is taken over; a
 * live holder is refused; a link to a device is never replaced by a write.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, specialFileKind, writeFileAtomic } from '../../pipeline/fsutil.js';
import { lockOutputs, outputLockPath, processStartTime, removeStaleLock } from '../../pipeline/output-lock.js';

const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-locks-test-'));
const plant = (target: string, content: string) => {
  const lock = outputLockPath(target);
  mkdirSync(path.dirname(lock), { recursive: true });
  writeFileSync(lock, content);
  return lock;
};
const refusal = (fn: () => unknown) => { try { fn(); return null; } catch (e) { return (e as Error).message; } };

describe('output locks', () => {
  it("a lock naming this process's pid that this process does not hold is stale (it blocked every run in a container)", () => {
    const out = path.join(dir, 'a.onnx');
    const lock = plant(out, `${process.pid}\n${processStartTime(process.pid) ?? ''}\nsomeone-else\n${out}\n`);
    const release = lockOutputs([{ path: out, flag: '--out' }]);
    expect(readFileSync(lock, 'utf8').split('\n')[0]).toBe(String(process.pid));
    // held now: a second take in this process is refused
    expect(refusal(() => lockOutputs([{ path: out, flag: '--out' }]))).toMatch(/is writing now/);
    release();
    expect(existsSync(lock)).toBe(false);
  });
  it('a live process with another start time than the lock records is not its holder; one with the same is', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const start = processStartTime(child.pid!);
      expect(start).toMatch(/^\d+$/);
      const out = path.join(dir, 'b.onnx');
      plant(out, `${child.pid}\n${Number(start) - 1}\ntoken\n${out}\n`);
      lockOutputs([{ path: out, flag: '--out' }])();
      plant(out, `${child.pid}\n${start}\ntoken\n${out}\n`);
      expect(refusal(() => lockOutputs([{ path: out, flag: '--out' }]))).toContain(`faceopt run pid ${child.pid} is writing now`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('taking over a stale lock', () => {
  const deadLock = (out: string) => `999999999\n1\ndead-token\n${out}\n`;
  const own = (name: string) => { const f = path.join(dir, name); writeFileSync(f, `${process.pid}\n\nmine\n`); return f; };
  const markerOf = (lock: string, stale: string) => `${lock}.${sha256(stale).slice(0, 16)}.takeover`;

  it('removes the lock only while it is still the stale one, and leaves no marker behind', () => {
    const out = path.join(dir, 'c.onnx');
    const stale = deadLock(out);
    const lock = plant(out, stale);
    expect(removeStaleLock(lock, stale, own('c.own'))).toBe('removed');
    expect(existsSync(lock)).toBe(false);
    // a run that read the stale lock long ago, after another run took the output: the live lock stays
    const live = `${process.pid}\n${processStartTime(process.pid)}\nlive-token\n${out}\n`;
    plant(out, live);
    const before = lstatSync(lock);
    expect(removeStaleLock(lock, stale, own('c.own2'))).toBe('changed');
    expect(readFileSync(lock, 'utf8')).toBe(live);
    expect(lstatSync(lock).ctimeMs).toBe(before.ctimeMs); // never moved aside and put back
    expect(existsSync(markerOf(lock, stale))).toBe(false);
  });

  it('waits while another run takes the same stale lock over, then takes the output', async () => {
    const out = path.join(dir, 'd.onnx');
    const stale = deadLock(out);
    const lock = plant(out, stale);
    const marker = markerOf(lock, stale);
    // the other run (a process of its own: this one blocks in lockOutputs) holds the marker and finishes
    // its takeover 600 ms from now
    const child = spawn(process.execPath, ['-e', `setTimeout(() => { require('fs').unlinkSync(${JSON.stringify(lock)}); require('fs').unlinkSync(${JSON.stringify(marker)}); }, 600)`], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(marker, `${child.pid}\n${processStartTime(child.pid!)}\nits-token\n${out}\n`);
    expect(removeStaleLock(lock, stale, own('d.own'))).toBe('busy');
    expect(readFileSync(lock, 'utf8')).toBe(stale);
    const t0 = Date.now();
    const release = lockOutputs([{ path: out, flag: '--out' }]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(readFileSync(lock, 'utf8').split('\n')[0]).toBe(String(process.pid));
    release();
    await new Promise((r) => child.once('exit', r));
  });

  it('a marker left by a run that died mid-takeover is cleared, and the takeover goes on (it blocked the output for good)', () => {
    const out = path.join(dir, 'e.onnx');
    const stale = deadLock(out);
    const lock = plant(out, stale);
    writeFileSync(markerOf(lock, stale), `999999998\n1\nits-token\n${out}\n`);
    const t0 = Date.now();
    const release = lockOutputs([{ path: out, flag: '--out' }]);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(existsSync(markerOf(lock, stale))).toBe(false);
    expect(readFileSync(lock, 'utf8').split('\n')[0]).toBe(String(process.pid));
    release();
  });

  it('a takeover by a live run that does not finish is refused after 2 s, naming that run and the files to remove', async () => {
    const out = path.join(dir, 'f.onnx');
    const stale = deadLock(out);
    const lock = plant(out, stale);
    const marker = markerOf(lock, stale);
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      writeFileSync(marker, `${child.pid}\n${processStartTime(child.pid!)}\nits-token\n${out}\n`);
      const message = refusal(() => lockOutputs([{ path: out, flag: '--out' }]));
      expect(message).toMatch(/^Expected an output whose stale lock can be taken over/);
      expect(message).toContain(`faceopt run pid ${child.pid} is taking over`);
      expect(message).toContain(marker);
      expect(readFileSync(lock, 'utf8')).toBe(stale);
    } finally {
      child.kill('SIGKILL');
      rmSync(marker, { force: true });
      rmSync(lock, { force: true }); // nothing left in the shared lock folder
    }
  });
});

describe('special files', () => {
  it('a link to a device is refused, and left as it is (as root a write replaced it with a regular file)', async () => {
    const link = path.join(dir, 'stdout');
    symlinkSync('/dev/null', link);
    expect(specialFileKind(link)).toBe('a link to a device');
    await expect(writeFileAtomic(link, 'model')).rejects.toMatchObject({ code: 'FACEOPT_ERR_WRITE_FAILED' });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    // a link to a regular file is replaced like the file
    const file = path.join(dir, 'real.onnx');
    writeFileSync(file, 'x');
    const toFile = path.join(dir, 'link.onnx');
    symlinkSync(file, toFile);
    expect(specialFileKind(toFile)).toBeNull();
  });
});
