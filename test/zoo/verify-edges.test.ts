/**
 * Mutation-audit tests of checkFile / checkPackDir (pipeline/zoo/verify.ts): every status, on real files,
 * with and without hashing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkFile, checkPackDir, isBadStatus } from '../../pipeline/zoo/verify.js';
import type { ZooFile } from '../../pipeline/zoo/zoo.js';
import { sha256, tempDir, testZoo } from './helpers.js';

const data = Buffer.from('model bytes '.repeat(100));
const entry = (over: Partial<ZooFile> = {}): ZooFile => ({ ...testZoo({ url: 'http://127.0.0.1:1/x.zip', zip: null, files: [{ name: 'm.onnx', data }] }).packs[0]!.files[0]!, ...over });

describe('checkFile', () => {
  it('a folder in place of the file is missing', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'm.onnx'));
    const c = await checkFile('p', entry(), path.join(dir, 'm.onnx'), true);
    expect([c.status, c.actualSize]).toEqual(['missing', null]);
  });

  it('a shorter file is a size mismatch, with its hash when hashing', async () => {
    const file = path.join(tempDir(), 'm.onnx');
    const short = data.subarray(0, 10);
    writeFileSync(file, short);
    const c = await checkFile('p', entry(), file, true);
    expect([c.status, c.actualSize, c.actualSha256]).toEqual(['size-mismatch', 10, sha256(short)]);
    expect((await checkFile('p', entry(), file, false)).actualSha256).toBeNull();
  });

  it('says only what was proven: ok (sha256), size-ok (size only), present (nothing published)', async () => {
    const file = path.join(tempDir(), 'm.onnx');
    writeFileSync(file, data);
    expect((await checkFile('p', entry(), file, true)).status).toBe('ok');
    expect((await checkFile('p', entry(), file, false)).status).toBe('size-ok');
    expect((await checkFile('p', entry({ sha256: null }), file, true)).status).toBe('size-ok');
    expect((await checkFile('p', entry({ sha256: null, size: null }), file, true)).status).toBe('present');
    const other = Buffer.from(data).fill(0x41, 0, 3);
    writeFileSync(file, other);
    expect((await checkFile('p', entry(), file, true)).status).toBe('sha256-mismatch');
  });

  it('bad statuses are missing and both mismatches', () => {
    expect(['ok', 'size-ok', 'present', 'missing', 'size-mismatch', 'sha256-mismatch'].map((s) => isBadStatus(s as never))).toEqual([false, false, false, true, true, true]);
  });

  it('checkPackDir says whether the pack folder exists', async () => {
    const pack = testZoo({ url: 'http://127.0.0.1:1/x.zip', zip: null, files: [{ name: 'm.onnx', data }] }).packs[0]!;
    const missing = await checkPackDir(pack, path.join(tempDir(), 'nope'), false);
    expect(missing.present).toBe(false);
    expect(missing.files.map((f) => f.status)).toEqual(['missing']);
  });
});
