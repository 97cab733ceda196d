/**
 * server/manifest.ts: reading the serving manifest checks every field of an entry, and writing merges
 * roles (a mutation audit found these unchecked). Synthetic manifests in a temporary folder.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryFromFile, entryMatchThreshold, entryPath, readManifest, writeManifest, type ManifestEntry } from '../../server/manifest.js';

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-manifest-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

const entry: ManifestEntry = {
  variant: 'int8', path: 'rec.onnx', sha256: 'a'.repeat(64), sizeBytes: 10, report: null, verdict: { pass: true, reasons: [] },
  matchThreshold: 0.4, promotedAt: '2026-12-07T00:00:00.000Z',
};

let n = 0;
async function manifestWith(recognizer: unknown, extra: object = {}): Promise<string> {
  const file = path.join(tmp, `m${n++}.json`);
  await writeFile(file, JSON.stringify({ schemaVersion: 1, toolVersion: 'x', updatedAt: 'y', detector: null, recognizer, ...extra }));
  return file;
}

async function refusal(file: string): Promise<{ code: string; message: string }> {
  try { readManifest(file); } catch (e) { return e as { code: string; message: string }; }
  throw new Error('readManifest accepted it');
}

describe('readManifest', () => {
  it('takes a well-formed entry', async () => {
    expect(readManifest(await manifestWith(entry)).recognizer).toEqual(entry);
    expect(readManifest(await manifestWith({ ...entry, inputSize: [320, 320] })).recognizer?.inputSize).toEqual([320, 320]);
    expect(readManifest(await manifestWith({ ...entry, verdict: null, matchThreshold: null })).recognizer?.verdict).toBeNull();
  });

  it('refuses each malformed field by name (FACEOPT_ERR_MANIFEST)', async () => {
    const cases: [object, RegExp][] = [
      [{ sha256: '' }, /recognizer\.sha256 must be a non-empty string/],
      [{ sha256: 5 }, /recognizer\.sha256 must be a non-empty string/],
      [{ promotedAt: undefined }, /recognizer\.promotedAt must be a non-empty string/],
      [{ sizeBytes: '10' }, /recognizer\.sizeBytes must be a number/],
      [{ report: 5 }, /recognizer\.report must be a string or null/],
      [{ matchThreshold: '0.4' }, /recognizer\.matchThreshold must be a number or null/],
      [{ inputSize: [0, 320] }, /recognizer\.inputSize must be \[width, height\] or null/],
      [{ inputSize: [320] }, /recognizer\.inputSize must be \[width, height\] or null/],
      [{ inputSize: [320.5, 320] }, /recognizer\.inputSize must be \[width, height\] or null/],
      [{ verdict: { pass: 'yes', reasons: [] } }, /recognizer\.verdict must be \{pass, reasons\} or null/],
      [{ verdict: { pass: false } }, /recognizer\.verdict must be \{pass, reasons\} or null/],
      [{ verdict: 'pass' }, /recognizer\.verdict must be \{pass, reasons\} or null/],
    ];
    for (const [change, text] of cases) {
      const e = await refusal(await manifestWith({ ...entry, ...change }));
      expect(e.code, JSON.stringify(change)).toBe('FACEOPT_ERR_MANIFEST');
      expect(e.message, JSON.stringify(change)).toMatch(text);
    }
  });

  it('refuses another schema version, and says a missing file is missing', async () => {
    const e = await refusal(await manifestWith(entry, { schemaVersion: 2 }));
    expect(e.code).toBe('FACEOPT_ERR_MANIFEST');
    expect(e.message).toMatch(/schema version 2, expected 1/);
    expect((await refusal(path.join(tmp, 'absent.json'))).code).toBe('FACEOPT_ERR_FILE_NOT_FOUND');
  });
});

describe('entries', () => {
  it('paths are relative to the manifest folder, not the working folder', () => {
    expect(entryPath('/srv/models/manifest.json', { ...entry, path: 'rec.onnx' })).toBe('/srv/models/rec.onnx');
    expect(entryPath('/srv/models/manifest.json', { ...entry, path: '/abs/rec.onnx' })).toBe('/abs/rec.onnx');
  });

  it('the report\'s threshold wins over the recorded one; without a report the recorded one', () => {
    expect(entryMatchThreshold(entry, null)).toBe(0.4);
  });

  it('writeManifest keeps the role not promoted, and stores files under the manifest folder relatively', async () => {
    const dir = path.join(tmp, 'w');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'manifest.json');
    await writeFile(path.join(dir, 'det.onnx'), 'det');
    await writeFile(path.join(dir, 'rec.onnx'), 'rec');
    const det = await entryFromFile(file, path.join(dir, 'det.onnx'));
    expect(det.path).toBe('det.onnx');
    expect(det).toMatchObject({ variant: 'unverified', report: null, verdict: null, sizeBytes: 3 });
    await writeManifest(file, { detector: det });
    await writeManifest(file, { recognizer: await entryFromFile(file, path.join(dir, 'rec.onnx'), 'fp32') });
    const m = readManifest(file);
    expect(m.detector?.path).toBe('det.onnx');
    expect(m.recognizer).toMatchObject({ path: 'rec.onnx', variant: 'fp32' });
    // promoting the detector again keeps the recognizer
    await writeManifest(file, { detector: await entryFromFile(file, path.join(dir, 'det.onnx'), 'int8') });
    expect(readManifest(file)).toMatchObject({ detector: { variant: 'int8' }, recognizer: { path: 'rec.onnx', variant: 'fp32' } });
    const outside = await entryFromFile(file, path.join(tmp, 'm0.json'));
    expect(outside.path).toBe(path.join(tmp, 'm0.json'));
    // a file whose name starts with two dots is under the folder too (it was stored absolute)
    await writeFile(path.join(dir, '..rec.onnx'), 'rec');
    expect((await entryFromFile(file, path.join(dir, '..rec.onnx'))).path).toBe('..rec.onnx');
  });
});
