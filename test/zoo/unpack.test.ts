import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { crc32, extractZip, readZipEntries } from '../../pipeline/zoo/unpack.js';
import { buildZip, tempDir, type ZipInput } from './helpers.js';

function zipFile(entries: ZipInput[] | Buffer): string {
  const file = path.join(tempDir(), 'pack.zip');
  writeFileSync(file, Buffer.isBuffer(entries) ? entries : buildZip(entries));
  return file;
}

async function expectCorrupt(file: string, fragment: string): Promise<void> {
  const out = path.join(tempDir(), 'out');
  const err = await extractZip(file, out).then(() => null, (e: unknown) => e);
  expect(isFaceoptError(err, 'FACEOPT_ERR_MODEL_TRUNCATED')).toBe(true);
  expect((err as Error).message).toContain(fragment);
}

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('6789'), crc32(Buffer.from('12345')))).toBe(0xcbf43926);
  });
});

describe('zip reader', () => {
  const big = Buffer.alloc(300_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251; // compressible but not trivial

  it('reads the central directory: names, methods, sizes', async () => {
    const file = zipFile([{ name: 'a.onnx', data: big }, { name: 'b.txt', data: 'hi', method: 0 }, { name: 'sub/' }]);
    const entries = await readZipEntries(file);
    expect(entries.map((e) => [e.name, e.method, e.size, e.isDirectory])).toEqual([
      ['a.onnx', 8, 300_000, false], ['b.txt', 0, 2, false], ['sub/', 0, 0, true],
    ]);
    expect(entries[0]!.compressedSize).toBeLessThan(300_000);
  });

  it('unpacks deflated and stored entries byte for byte', async () => {
    const file = zipFile([{ name: 'a.onnx', data: big }, { name: 'b.txt', data: 'hi', method: 0 }, { name: 'empty.bin', data: '' }]);
    const out = path.join(tempDir(), 'out');
    const files = await extractZip(file, out);
    expect(files.map((f) => [f.name, f.size])).toEqual([['a.onnx', 300_000], ['b.txt', 2], ['empty.bin', 0]]);
    expect(readFileSync(path.join(out, 'a.onnx')).equals(big)).toBe(true);
    expect(readFileSync(path.join(out, 'b.txt'), 'utf8')).toBe('hi');
  });

  it('drops a single top folder (antelopev2.zip layout) and macOS litter', async () => {
    const file = zipFile([
      { name: 'antelopev2/' }, { name: 'antelopev2/glintr100.onnx', data: 'g' }, { name: 'antelopev2/sub/x.onnx', data: 'x' },
      { name: '__MACOSX/antelopev2/._glintr100.onnx', data: 'junk' }, { name: 'antelopev2/.DS_Store', data: 'junk' },
    ]);
    const out = path.join(tempDir(), 'out');
    expect((await extractZip(file, out)).map((f) => f.name)).toEqual(['glintr100.onnx', 'sub/x.onnx']);
    expect(readdirSync(out).sort()).toEqual(['glintr100.onnx', 'sub']);
    const keep = path.join(tempDir(), 'keep');
    expect((await extractZip(file, keep, { stripTopFolder: false })).map((f) => f.name)).toEqual(['antelopev2/glintr100.onnx', 'antelopev2/sub/x.onnx']);
  });

  it('keeps flat archives flat', async () => {
    const out = path.join(tempDir(), 'out');
    expect((await extractZip(zipFile([{ name: 'det.onnx', data: 'd' }, { name: 'rec.onnx', data: 'r' }]), out)).map((f) => f.name)).toEqual(['det.onnx', 'rec.onnx']);
  });

  it('rejects a CRC mismatch', () => expectCorrupt(zipFile([{ name: 'a.onnx', data: big, crc: 1234 }]), 'CRC-32'));
  it('rejects names that climb out of the folder', () => expectCorrupt(zipFile([{ name: '../evil.onnx', data: 'x' }]), 'parent-folder'));
  it('rejects absolute names', () => expectCorrupt(zipFile([{ name: '/etc/evil', data: 'x' }]), 'absolute path'));
  it('rejects symlinks', () => expectCorrupt(zipFile([{ name: 'link.onnx', data: '/etc/passwd', symlink: true }]), 'symbolic link'));
  it('rejects a truncated archive', async () => {
    const whole = buildZip([{ name: 'a.onnx', data: big }]);
    await expectCorrupt(zipFile(whole.subarray(0, whole.length - 30)), 'end-of-central-directory');
  });
  it('rejects a file that is not a zip', () => expectCorrupt(zipFile(Buffer.from('<html>404</html>'.repeat(4))), 'end-of-central-directory'));
  it('rejects damaged entry data', async () => {
    const whole = Buffer.from(buildZip([{ name: 'a.onnx', data: big }]));
    for (let i = 40; i < 400; i++) whole[i] = 0xff; // inside the deflate stream
    const file = zipFile(whole);
    await expectCorrupt(file, 'a.onnx');
  });
  it('a missing zip is FACEOPT_ERR_FILE_NOT_FOUND', async () => {
    const err = await readZipEntries('/nonexistent/x.zip').then(() => null, (e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_FILE_NOT_FOUND')).toBe(true);
  });
  it('never writes through an existing file', async () => {
    const out = tempDir();
    writeFileSync(path.join(out, 'a.onnx'), 'precious');
    await expectCorruptIn(zipFile([{ name: 'a.onnx', data: 'new' }]), out);
    expect(readFileSync(path.join(out, 'a.onnx'), 'utf8')).toBe('precious');
    expect(existsSync(out)).toBe(true);
  });
});

async function expectCorruptIn(file: string, out: string): Promise<void> {
  const err = await extractZip(file, out).then(() => null, (e: unknown) => e);
  expect(isFaceoptError(err, 'FACEOPT_ERR_MODEL_TRUNCATED')).toBe(true);
}
