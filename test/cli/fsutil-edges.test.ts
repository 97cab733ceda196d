/**
 * Mutation-audit tests of pipeline/fsutil.ts (atomic multi-file writes and their cleanup, special files,
 * list files) and pipeline/output-lock.ts (lock identity through links, several outputs at once, release),
 * on real files in a temporary folder.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { checkWritableDir, ensureDir, looksBinary, readTextListFile, specialFileKind, writeFilesAtomic } from '../../pipeline/fsutil.js';
import { lockOutputs, outputLockPath, processStartTime } from '../../pipeline/output-lock.js';

const root = mkdtempSync(path.join(tmpdir(), 'faceopt-audit-fsutil-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => { const d = path.join(root, `t${n++}`); mkdirSync(d); return d; };

async function writeError(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(() => null, (err: unknown) => err);
  if (e === null) throw new Error('the write succeeded');
  return e as Error;
}

describe('writeFilesAtomic', () => {
  it('a set that fails on its second file leaves no temp file, no first file and no folder it made', async () => {
    const d = fresh();
    writeFileSync(path.join(d, 'blocker'), 'a file where a folder is needed');
    const err = await writeError(writeFilesAtomic([[path.join(d, 'new', 'a.txt'), 'a'], [path.join(d, 'blocker', 'b.txt'), 'b']]));
    expect(isFaceoptError(err, 'FACEOPT_ERR_WRITE_FAILED')).toBe(true);
    expect(readdirSync(d)).toEqual(['blocker']);
  });

  it('a failed set keeps the earlier files of the same names as they were', async () => {
    const d = fresh();
    writeFileSync(path.join(d, 'a.txt'), 'earlier');
    writeFileSync(path.join(d, 'blocker'), 'x');
    await writeError(writeFilesAtomic([[path.join(d, 'a.txt'), 'new'], [path.join(d, 'blocker', 'b.txt'), 'b']]));
    expect(readFileSync(path.join(d, 'a.txt'), 'utf8')).toBe('earlier');
    expect(readdirSync(d).sort()).toEqual(['a.txt', 'blocker']);
  });

  it('refuses to replace a folder, and leaves the folder as it was', async () => {
    const d = fresh();
    mkdirSync(path.join(d, 'out.json'));
    writeFileSync(path.join(d, 'out.json', 'inside'), 'kept');
    const err = await writeError(writeFilesAtomic([[path.join(d, 'out.json'), '{}']]));
    expect(isFaceoptError(err, 'FACEOPT_ERR_WRITE_FAILED')).toBe(true);
    expect(err.message).toContain('it is a folder');
    expect(readFileSync(path.join(d, 'out.json', 'inside'), 'utf8')).toBe('kept');
  });

  it('writes through nothing: a link to a file is replaced by the new file, the linked file is kept', async () => {
    const d = fresh();
    writeFileSync(path.join(d, 'target'), 'original');
    symlinkSync(path.join(d, 'target'), path.join(d, 'link'));
    await writeFilesAtomic([[path.join(d, 'link'), 'new']]);
    expect(readFileSync(path.join(d, 'target'), 'utf8')).toBe('original');
    expect(readFileSync(path.join(d, 'link'), 'utf8')).toBe('new');
    expect(readdirSync(d).sort()).toEqual(['link', 'target']);
  });
});

describe('temporary files and signals (built CLI modules, in a child process)', () => {
  it('a signal after one of two temporary files was released still removes the other', () => {
    const d = fresh();
    const a = path.join(d, 'a.tmp');
    const b = path.join(d, 'b.tmp');
    writeFileSync(a, 'a');
    writeFileSync(b, 'b');
    const fsutil = pathToFileURL(path.resolve('dist/pipeline/fsutil.js')).href;
    const script = `const m = await import(${JSON.stringify(fsutil)}); const releaseA = m.trackTemp(${JSON.stringify(a)}); m.trackTemp(${JSON.stringify(b)}); releaseA(); process.kill(process.pid, 'SIGTERM'); setTimeout(() => {}, 5000);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.signal).toBe('SIGTERM');
    expect(existsSync(b)).toBe(false);
    expect(existsSync(a)).toBe(true); // released: renamed into place, not the handler's to remove
  });
});

describe('specialFileKind', () => {
  it('a link to a folder or a file is replaceable (null); a folder itself is not', () => {
    const d = fresh();
    mkdirSync(path.join(d, 'sub'));
    symlinkSync(path.join(d, 'sub'), path.join(d, 'to-dir'));
    symlinkSync(path.join(d, 'missing'), path.join(d, 'dangling'));
    expect(specialFileKind(path.join(d, 'to-dir'))).toBeNull();
    expect(specialFileKind(path.join(d, 'dangling'))).toBeNull();
    expect(specialFileKind(path.join(d, 'sub'))).toBe('a folder');
    expect(specialFileKind(path.join(d, 'none'))).toBeNull();
  });
});

describe('ensureDir and checkWritableDir', () => {
  it('a file in the way is named in the error', () => {
    const d = fresh();
    writeFileSync(path.join(d, 'f'), 'x');
    let err: unknown = null;
    try { ensureDir(path.join(d, 'f', 'sub', 'deeper')); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_WRITE_FAILED')).toBe(true);
    expect((err as Error).message).toContain(`${path.join(d, 'f')} is a file, not a folder`);
  });

  it('checkWritableDir leaves the folder exactly as it was', () => {
    const d = fresh();
    checkWritableDir(path.join(d, 'not', 'yet'));
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('list files', () => {
  it('refuses a folder as a list file with a coded error', () => {
    const d = fresh();
    let err: unknown = null;
    try { readTextListFile(d, '--pairs', 'a pairs file'); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    expect((err as Error).message).toContain('(not a file)');
  });

  it('invalid UTF-8 counts as binary, plain text does not', () => {
    const d = fresh();
    const file = path.join(d, 'latin1.txt');
    writeFileSync(file, Buffer.from([0x61, 0xe9, 0x62, 0x0a])); // "aéb" in Latin-1: not UTF-8
    expect(looksBinary(readFileSync(file, 'utf8'))).toBe(true);
    let err: unknown = null;
    try { readTextListFile(file, '--calibration-list', 'a list of images'); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    expect(looksBinary('a.jpg\nb.jpg\n\tc d\r\n')).toBe(false);
  });
});

describe('output locks', () => {
  it('a path through a link to a folder and the real path share one lock', () => {
    const d = fresh();
    mkdirSync(path.join(d, 'real'));
    symlinkSync(path.join(d, 'real'), path.join(d, 'alias'));
    expect(outputLockPath(path.join(d, 'alias', 'm.onnx'))).toBe(outputLockPath(path.join(d, 'real', 'm.onnx')));
    expect(outputLockPath(path.join(d, 'alias', 'new', 'm.onnx'))).toBe(outputLockPath(path.join(d, 'real', 'new', 'm.onnx')));
  });

  it('one output named by two flags is taken once', () => {
    const out = path.join(fresh(), 'm.onnx');
    const release = lockOutputs([{ path: out, flag: '--out' }, { path: out, flag: '--report' }]);
    expect(existsSync(outputLockPath(out))).toBe(true);
    release();
    expect(existsSync(outputLockPath(out))).toBe(false);
  });

  it('a lock naming pid 0 is stale', () => {
    const out = path.join(fresh(), 'm.onnx');
    const lock = outputLockPath(out);
    mkdirSync(path.dirname(lock), { recursive: true });
    writeFileSync(lock, `0\n\nold\n${out}\n`);
    const release = lockOutputs([{ path: out, flag: '--out' }]);
    expect(readFileSync(lock, 'utf8').split('\n')[0]).toBe(String(process.pid));
    release();
  });

  it('refused on its second output, it releases the first and leaves no temporary file', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const d = fresh();
      const a = path.join(d, 'a.onnx');
      const b = path.join(d, 'b.onnx');
      const lockB = outputLockPath(b);
      mkdirSync(path.dirname(lockB), { recursive: true });
      writeFileSync(lockB, `${child.pid}\n${processStartTime(child.pid!) ?? ''}\nother\n${b}\n`);
      let err: unknown = null;
      try { lockOutputs([{ path: a, flag: '--out' }, { path: b, flag: '--report-dir' }]); } catch (e) { err = e; }
      expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
      expect((err as Error).message).toContain(`faceopt run pid ${child.pid} is writing now`);
      expect(existsSync(outputLockPath(a))).toBe(false);
      const stem = path.basename(outputLockPath(a));
      expect(readdirSync(path.dirname(lockB)).filter((f) => f.startsWith(stem))).toEqual([]);
      rmSync(lockB, { force: true });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('release leaves a lock another run has taken since', () => {
    const out = path.join(fresh(), 'm.onnx');
    const lock = outputLockPath(out);
    const release = lockOutputs([{ path: out, flag: '--out' }]);
    const theirs = `${process.pid}\n\ntheirs\n${out}\n`;
    writeFileSync(lock, theirs); // judged stale by another run and taken over
    release();
    expect(readFileSync(lock, 'utf8')).toBe(theirs);
    rmSync(lock, { force: true });
  });
});
