/**
 * Mutation-audit tests of the zip reader (pipeline/zoo/unpack.ts): the checks a model installer relies on
 * (unsafe names, encryption, unknown compression, size limits, sizes and CRCs of every entry, duplicate
 * names, multi-disk archives) each exercised with real zip bytes built here and patched where a field
 * must lie.
 */
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { extractZip, readZipEntries, type ExtractOptions } from '../../pipeline/zoo/unpack.js';
import { buildZip, tempDir, type ZipInput } from './helpers.js';

function zipFile(entries: ZipInput[] | Buffer): string {
  const file = path.join(tempDir(), 'pack.zip');
  writeFileSync(file, Buffer.isBuffer(entries) ? entries : buildZip(entries));
  return file;
}

async function extractError(file: string, opts: ExtractOptions = {}, out = path.join(tempDir(), 'out')): Promise<Error> {
  const err = await extractZip(file, out, opts).then(() => null, (e: unknown) => e);
  if (err === null) throw new Error('extractZip succeeded');
  expect(isFaceoptError(err, 'FACEOPT_ERR_MODEL_TRUNCATED')).toBe(true);
  return err as Error;
}

/** Offsets of the central directory headers of a zip built by buildZip (no archive comment). */
function centralOffsets(zip: Buffer): number[] {
  const eocd = zip.length - 22;
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    expect(zip.readUInt32LE(p)).toBe(0x02014b50);
    out.push(p);
    p += 46 + zip.readUInt16LE(p + 28) + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
  return out;
}

/** Copy of `zip` with central directory entry `index` changed by `edit` (offset of its header given). */
function patchCentral(zip: Buffer, index: number, edit: (b: Buffer, at: number) => void): Buffer {
  const b = Buffer.from(zip);
  edit(b, centralOffsets(b)[index]!);
  return b;
}

describe('zip reader: names', () => {
  it('rejects a drive-letter name as absolute', async () => {
    const err = await extractError(zipFile([{ name: 'C:/evil.onnx', data: 'x' }]));
    expect(err.message).toContain('absolute path');
    const err2 = await extractError(zipFile([{ name: 'c:evil.onnx', data: 'x' }]));
    expect(err2.message).toContain('absolute path');
  });

  it('treats backslashes as folder separators: ..\\ climbs out, top\\ is a top folder', async () => {
    const err = await extractError(zipFile([{ name: '..\\evil.onnx', data: 'x' }]));
    expect(err.message).toContain('parent-folder');
    const out = path.join(tempDir(), 'out');
    const got = await extractZip(zipFile([{ name: 'top\\a.onnx', data: 'a' }, { name: 'top\\b.onnx', data: 'b' }]), out);
    expect(got.map((f) => f.name)).toEqual(['a.onnx', 'b.onnx']);
    expect(readFileSync(path.join(out, 'b.onnx'), 'utf8')).toBe('b');
  });

  it('rejects a NUL byte in a name with the zip error, writing nothing', async () => {
    const out = path.join(tempDir(), 'out');
    const err = await extractError(zipFile([{ name: 'a\0.onnx', data: 'x' }]), {}, out);
    expect(err.message).toContain('NUL in name');
    expect(existsSync(out)).toBe(false);
  });

  it('reads UTF-8 names (general purpose flag 0x800) as UTF-8', async () => {
    const out = path.join(tempDir(), 'out');
    const got = await extractZip(zipFile([{ name: 'modèle.onnx', data: 'm' }]), out);
    expect(got.map((f) => f.name)).toEqual(['modèle.onnx']);
    expect(readdirSync(out)).toEqual(['modèle.onnx']);
  });

  it('refuses two entries with one name instead of writing the file twice', async () => {
    const err = await extractError(zipFile([{ name: 'a.onnx', data: 'first' }, { name: 'a.onnx', data: 'second' }]));
    expect(err.message).toContain('appears twice');
  });

  it('skips an entry whose name is only "." (it names no file)', async () => {
    const out = path.join(tempDir(), 'out');
    const got = await extractZip(zipFile([{ name: '.', data: '' }, { name: 'a.onnx', data: 'a' }]), out);
    expect(got.map((f) => f.name)).toEqual(['a.onnx']);
  });

  it('skips macOS .DS_Store litter at the top of a flat archive', async () => {
    const out = path.join(tempDir(), 'out');
    const got = await extractZip(zipFile([{ name: '.DS_Store', data: 'junk' }, { name: 'a.onnx', data: 'a' }]), out);
    expect(got.map((f) => f.name)).toEqual(['a.onnx']);
    expect(readdirSync(out)).toEqual(['a.onnx']);
  });
});

describe('zip reader: entries it cannot read', () => {
  it('refuses an encrypted entry', async () => {
    const zip = patchCentral(buildZip([{ name: 'a.onnx', data: 'x', method: 0 }]), 0, (b, at) => b.writeUInt16LE(b.readUInt16LE(at + 8) | 0x1, at + 8));
    const err = await extractError(zipFile(zip));
    expect(err.message).toContain('is encrypted');
  });

  it('refuses an unknown compression method (implode 6, bzip2 12)', async () => {
    for (const method of [6, 12]) {
      const zip = patchCentral(buildZip([{ name: 'a.onnx', data: 'x', method: 0 }]), 0, (b, at) => b.writeUInt16LE(method, at + 10));
      const err = await extractError(zipFile(zip));
      expect(err.message).toContain(`compression method ${method}`);
    }
  });

  it('refuses a multi-disk archive (the disk holding the directory is not 0)', async () => {
    const zip = Buffer.from(buildZip([{ name: 'a.onnx', data: 'x' }]));
    zip.writeUInt16LE(1, zip.length - 22 + 6);
    const err = await extractError(zipFile(zip));
    expect(err.message).toContain('multi-disk');
  });

  it('refuses a central directory over 256 MiB before reading it', async () => {
    // a sparse 300 MiB file whose end record declares a 300 MiB directory at offset 0
    const file = path.join(tempDir(), 'huge.zip');
    const size = 300 * 1024 * 1024;
    const fd = openSync(file, 'w');
    try {
      ftruncateSync(fd, size);
      const end = Buffer.alloc(22);
      end.writeUInt32LE(0x06054b50, 0);
      end.writeUInt16LE(1, 8);
      end.writeUInt16LE(1, 10);
      end.writeUInt32LE(size - 22, 12);
      end.writeUInt32LE(0, 16);
      writeSync(fd, end, 0, 22, size - 22);
    } finally {
      closeSync(fd);
    }
    const err = await readZipEntries(file).then(() => null, (e: unknown) => e);
    expect(isFaceoptError(err, 'FACEOPT_ERR_MODEL_TRUNCATED')).toBe(true);
    expect((err as Error).message).toContain('central directory lies outside the file');
  });

  it('finds the real end record when the archive comment holds a fake one', async () => {
    const zip = buildZip([{ name: 'a.onnx', data: 'real' }]);
    const fake = Buffer.alloc(22 + 8); // an end-of-directory signature with garbage after it
    fake.writeUInt32LE(0x06054b50, 0);
    fake.writeUInt32LE(0xdeadbeef, 12);
    fake.writeUInt32LE(0xdeadbeef, 16);
    const withComment = Buffer.concat([zip, fake]);
    withComment.writeUInt16LE(fake.length, zip.length - 22 + 20);
    const out = path.join(tempDir(), 'out');
    expect((await extractZip(zipFile(withComment), out)).map((f) => f.name)).toEqual(['a.onnx']);
    expect(readFileSync(path.join(out, 'a.onnx'), 'utf8')).toBe('real');
  });

  it('starts the data after the local header extra field', async () => {
    const zip = buildZip([{ name: 'a.onnx', data: 'payload', method: 0 }]);
    const extra = Buffer.from([0x55, 0x54, 0x05, 0x00, 1, 2, 3, 4, 5]); // extended timestamp, 5 bytes
    const localLen = 30 + 'a.onnx'.length;
    const patched = Buffer.concat([zip.subarray(0, localLen), extra, zip.subarray(localLen)]);
    patched.writeUInt16LE(extra.length, 28);
    const eocd = patched.length - 22;
    patched.writeUInt32LE(patched.readUInt32LE(eocd + 16) + extra.length, eocd + 16);
    const out = path.join(tempDir(), 'out');
    await extractZip(zipFile(patched), out);
    expect(readFileSync(path.join(out, 'a.onnx'), 'utf8')).toBe('payload');
  });
});

describe('zip reader: sizes and checksums', () => {
  it('limits the total unpacked size: at the limit it unpacks, one byte over it refuses before writing', async () => {
    const file = zipFile([{ name: 'a.onnx', data: Buffer.alloc(100, 1) }, { name: 'b.onnx', data: Buffer.alloc(60, 2) }]);
    const ok = path.join(tempDir(), 'ok');
    expect((await extractZip(file, ok, { maxTotalBytes: 160 })).map((f) => f.size)).toEqual([100, 60]);
    const out = path.join(tempDir(), 'out');
    const err = await extractError(file, { maxTotalBytes: 159 }, out);
    expect(err.message).toContain('it would unpack to 160 bytes, over the 159-byte limit');
    expect(existsSync(out)).toBe(false);
  });

  it('the default limit is 16 GiB of declared sizes', async () => {
    // five entries that each declare just under 4 GiB: about 20 GiB in all
    let zip = buildZip(['a', 'b', 'c', 'd', 'e'].map((n) => ({ name: `${n}.onnx`, data: 'x', method: 0 as const })));
    for (let i = 0; i < 5; i++) zip = patchCentral(zip, i, (b, at) => b.writeUInt32LE(0xfffffffe, at + 24));
    const err = await extractError(zipFile(zip));
    expect(err.message).toContain(`over the ${16 * 1024 ** 3}-byte limit`);
  });

  it('stops an entry that inflates past its declared size', async () => {
    const data = Buffer.alloc(400_000, 7);
    const zip = patchCentral(buildZip([{ name: 'bomb.onnx', data }]), 0, (b, at) => b.writeUInt32LE(1000, at + 24));
    const out = path.join(tempDir(), 'out');
    const err = await extractError(zipFile(zip), {}, out);
    expect(err.message).toContain('bomb.onnx inflates past its declared 1000 bytes');
    // stopped while inflating, not after: also when it is only a little over
    const near = patchCentral(buildZip([{ name: 'near.onnx', data: Buffer.alloc(3000, 7) }]), 0, (b, at) => b.writeUInt32LE(2000, at + 24));
    expect((await extractError(zipFile(near))).message).toContain('near.onnx inflates past its declared 2000 bytes');
  });

  it('refuses an entry shorter than its declared size even when its CRC matches the bytes present', async () => {
    const zip = patchCentral(buildZip([{ name: 'a.onnx', data: 'short', method: 0 }]), 0, (b, at) => b.writeUInt32LE(6, at + 24));
    const err = await extractError(zipFile(zip));
    expect(err.message).toContain('a.onnx has 5 bytes, the directory says 6');
  });

  it('checks the CRC-32 of stored entries too', async () => {
    const err = await extractError(zipFile([{ name: 'a.onnx', data: 'stored bytes', method: 0, crc: 1234 }]));
    expect(err.message).toContain('a.onnx fails its CRC-32 check');
  });

  it('an entry with no data bytes but a declared size is damaged', async () => {
    const zip = patchCentral(buildZip([{ name: 'a.onnx', data: '', method: 0 }]), 0, (b, at) => b.writeUInt32LE(10, at + 24));
    const err = await extractError(zipFile(zip));
    expect(err.message).toContain('a.onnx has 0 bytes, the directory says 10');
  });
});
