/**
 * Folder creation for outputs: nested folders one level at a time, coded errors where a file is in the
 * way or the system refuses (Node's recursive mkdir never returned under /proc), and a check that
 * makes nothing.
 */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDir, checkWritableDir } from '../../pipeline/fsutil.js';

const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-fsutil-'));
const code = (fn: () => unknown) => { try { fn(); return null; } catch (e) { return (e as { code?: string }).code ?? String(e); } };

describe('ensureDir', () => {
  it('makes missing parents, and is a no-op for an existing folder', () => {
    const deep = path.join(dir, 'a', 'b', 'c');
    ensureDir(deep);
    expect(existsSync(deep)).toBe(true);
    ensureDir(deep);
    ensureDir(dir);
  });
  it('says so when a file is in the way', () => {
    const f = path.join(dir, 'plain.txt');
    writeFileSync(f, 'x');
    expect(code(() => ensureDir(path.join(f, 'sub')))).toBe('FACEOPT_ERR_WRITE_FAILED');
    expect(code(() => ensureDir(f))).toBe('FACEOPT_ERR_WRITE_FAILED');
  });
  it.runIf(existsSync('/proc/self'))('returns a coded error under /proc, where a folder cannot be made', () => {
    expect(code(() => ensureDir(`/proc/faceopt-test-${process.pid}/x`))).toBe('FACEOPT_ERR_WRITE_FAILED');
  });
});

describe('checkWritableDir', () => {
  it('makes nothing and leaves no probe file behind', () => {
    const d = path.join(dir, 'probe-root');
    ensureDir(d);
    checkWritableDir(path.join(d, 'not', 'yet'));
    expect(readdirSync(d)).toEqual([]);
  });
  it('refuses a path under a file, and (on Linux) under /proc', () => {
    const f = path.join(dir, 'plain2.txt');
    writeFileSync(f, 'x');
    expect(code(() => checkWritableDir(path.join(f, 'sub')))).toBe('FACEOPT_ERR_WRITE_FAILED');
    if (existsSync('/proc/self')) expect(code(() => checkWritableDir(`/proc/faceopt-test-${process.pid}`))).toBe('FACEOPT_ERR_WRITE_FAILED');
  });
});
