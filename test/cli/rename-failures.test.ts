/**
 * Mutation-audit test of writeFilesAtomic's rename phase (pipeline/fsutil.ts): when a rename fails after
 * an earlier file of the set was renamed into place, the whole set is removed rather than leaving files
 * of two runs side by side, and no temporary file stays. The rename failure is injected; the files are
 * real.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

const inject = vi.hoisted(() => ({ failRenameTo: '' }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const rename = async (from: import('node:fs').PathLike, to: import('node:fs').PathLike): Promise<void> => {
    if (inject.failRenameTo && String(to) === inject.failRenameTo) {
      inject.failRenameTo = '';
      throw Object.assign(new Error(`EIO: injected, rename '${String(from)}'`), { code: 'EIO' });
    }
    return real.rename(from, to);
  };
  return { ...real, rename, default: { ...real, rename } };
});

const { isFaceoptError } = await import('../../pipeline/errors.js');
const { writeFilesAtomic } = await import('../../pipeline/fsutil.js');

const root = mkdtempSync(path.join(tmpdir(), 'faceopt-audit-rename-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('writeFilesAtomic, a rename failing part-way', () => {
  it('removes the set (earlier files of those names included) and every temporary file', async () => {
    const a = path.join(root, 'report.md');
    const b = path.join(root, 'report.json');
    writeFileSync(a, 'old md');
    writeFileSync(b, 'old json');
    inject.failRenameTo = b;
    const e = await writeFilesAtomic([[a, 'new md'], [b, 'new json']]).then(() => null, (err: unknown) => err);
    expect(inject.failRenameTo).toBe('');
    expect(isFaceoptError(e, 'FACEOPT_ERR_WRITE_FAILED')).toBe(true);
    expect(readdirSync(root)).toEqual([]);
  });

  it('a first rename that fails leaves the earlier files as they were', async () => {
    const d = mkdtempSync(path.join(root, 'first-'));
    const a = path.join(d, 'a.txt');
    const b = path.join(d, 'b.txt');
    writeFileSync(a, 'old a');
    writeFileSync(b, 'old b');
    inject.failRenameTo = a;
    await writeFilesAtomic([[a, 'new a'], [b, 'new b']]).catch(() => undefined);
    expect(readdirSync(d).sort()).toEqual(['a.txt', 'b.txt']);
    expect([readFileSync(a, 'utf8'), readFileSync(b, 'utf8')]).toEqual(['old a', 'old b']);
  });
});
