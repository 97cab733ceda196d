/**
 * Output locks and special files, in process: a lock left by a killed run whose pid the next run gets
 * again (containers: pid 1 every time) or whose pid now belongs to another process is taken over; a
 * live holder is refused; a link to a device is never replaced by a write.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockOutputs, outputLockPath, processStartTime, specialFileKind, writeFileAtomic } from '../../pipeline/fsutil.js';

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
