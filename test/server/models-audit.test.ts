/**
 * Which models serve picks and what it says about them (server/models.ts, server/report.ts), where a
 * mutation audit of the request layer found it unchecked: a file flag wins over the manifest, the
 * manifest over the environment, --match-threshold over the report; a manifest named but missing is an
 * error unless both files are given; the environment variable is named in its errors; a changed
 * file's remedy fits how it was promoted; the detector size a report evaluated (non-square, one the
 * detector cannot take, notes joined); `promotedMatchThreshold` for other bytes and for a regenerated
 * report; no int8 note between two saturating CPUs; reading a report by its report.json, refusing
 * another schema version or a missing field. Synthetic reports and small model files; the detector is
 * the built-in SCRFD fixture (a real graph, fixed 640x640 input).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { RECOGNIZER_ENV } from '../../pipeline/faces/models.js';
import { sha256 } from '../../pipeline/fsutil.js';
import type { Report } from '../../pipeline/report/types.js';
import { resolveServerConfig } from '../../server/config.js';
import { entryFromFile, entryFromReport, writeManifest, type ManifestEntry } from '../../server/manifest.js';
import { int8HostNote, promotedMatchThreshold, selectModels } from '../../server/models.js';
import { readReport } from '../../server/report.js';
import { fixtureFile } from '../fixtures/index.js';
import { exampleRecognizerReport } from '../report/example.js';

let tmp: string;
let det: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-models-audit-'));
  det = await fixtureFile('scrfd');
});
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

const savedEnv = process.env[RECOGNIZER_ENV];
afterEach(() => {
  if (savedEnv === undefined) delete process.env[RECOGNIZER_ENV];
  else process.env[RECOGNIZER_ENV] = savedEnv;
});

let n = 0;
/** A recognizer model file (`bytes`) and its report folder, the report's LFW threshold set to `threshold`. */
async function recognizerWithReport(bytes: string, threshold: number): Promise<{ dir: string; model: string; write: (threshold: number) => Promise<void> }> {
  const dir = path.join(tmp, `case${++n}`);
  const model = path.join(dir, 'models', 'rec.onnx');
  await mkdir(path.join(dir, 'report'), { recursive: true });
  await mkdir(path.dirname(model), { recursive: true });
  await writeFile(model, bytes);
  const write = async (t: number) => {
    const base = exampleRecognizerReport();
    const v = base.recognizer!.verification!;
    const r: Report = {
      ...base,
      variant: { ...base.variant, path: model, sha256: sha256(bytes), sizeBytes: bytes.length },
      recognizer: { ...base.recognizer!, verification: { ...v, variant: { ...v.variant, bestThreshold: { ...v.variant.bestThreshold, threshold: t } } } },
    };
    await writeFile(path.join(dir, 'report', 'report.json'), JSON.stringify(r, null, 2));
  };
  await write(threshold);
  return { dir, model, write };
}

/** A manifest in `dir`/models promoting `entries`. */
async function manifestWith(dir: string, entries: Partial<Record<'detector' | 'recognizer', ManifestEntry>>): Promise<string> {
  const file = path.join(dir, 'models', 'manifest.json');
  await writeManifest(file, entries);
  return file;
}

async function promotedRecognizer(bytes: string, threshold: number) {
  const rec = await recognizerWithReport(bytes, threshold);
  const manifest = path.join(rec.dir, 'models', 'manifest.json');
  const { entry } = await entryFromReport(manifest, path.join(rec.dir, 'report'), false);
  await manifestWith(rec.dir, { recognizer: entry });
  return { ...rec, manifest };
}

const refusal = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

describe('precedence', () => {
  it('--recognizer FILE wins over the manifest, the manifest over the environment, --match-threshold over the report', async () => {
    const rec = await promotedRecognizer('promoted-recognizer', 0.37);
    const other = path.join(rec.dir, 'other.onnx');
    await writeFile(other, 'another-recognizer');
    await writeManifest(rec.manifest, { detector: await entryFromFile(rec.manifest, det) }); // both roles promoted
    const config = resolveServerConfig({ manifest: rec.manifest });

    const fromManifest = await selectModels(config);
    expect(fromManifest.recognizer).toMatchObject({ source: 'manifest', path: rec.model });
    expect(fromManifest.matchThreshold).toEqual({ value: 0.37, source: 'report' });
    expect((await selectModels({ ...config, matchThreshold: 0.42 })).matchThreshold).toEqual({ value: 0.42, source: 'flag' });

    const flagged = await selectModels({ ...config, recognizer: other });
    expect(flagged.recognizer).toMatchObject({ source: 'file', path: other });
    expect(flagged.detector.source).toBe('manifest');
    expect(flagged.matchThreshold.source).toBe('default');

    process.env[RECOGNIZER_ENV] = other;
    expect((await selectModels(config)).recognizer).toMatchObject({ source: 'manifest', path: rec.model });
    // without a manifest entry for the role, the environment names it
    const detOnly = await manifestWith(path.join(tmp, `case${++n}`), { detector: await entryFromFile(path.join(tmp, 'x', 'manifest.json'), det) });
    expect((await selectModels(resolveServerConfig({ manifest: detOnly }))).recognizer).toMatchObject({ source: 'file', path: other });
  });

  it('a recognizer named by the environment that is not there: the error names the variable', async () => {
    process.env[RECOGNIZER_ENV] = path.join(tmp, 'nowhere', 'rec.onnx');
    const e = await refusal(selectModels(resolveServerConfig({ detector: det, manifest: null })));
    expect(isFaceoptError(e), String(e)).toBe(true);
    expect((e as Error).message).toContain(RECOGNIZER_ENV);
    expect((e as Error).message).not.toContain('--recognizer');
  });

  it('a manifest named with --manifest that does not exist is an error, not silently skipped', async () => {
    process.env[RECOGNIZER_ENV] = path.join(tmp, 'nowhere', 'rec.onnx');
    const missing = path.join(tmp, 'no-such-folder', 'manifest.json');
    const e = await refusal(selectModels(resolveServerConfig({ detector: det, manifest: missing })));
    expect(isFaceoptError(e, 'FACEOPT_ERR_FILE_NOT_FOUND'), String(e)).toBe(true);
    expect((e as Error).message).toContain(missing);
    // both files given: the manifest is not needed, so not read
    const rec = path.join(tmp, 'given-rec.onnx');
    await writeFile(rec, 'given');
    const both = await selectModels(resolveServerConfig({ detector: det, recognizer: rec, manifest: missing }));
    expect(both.manifest).toBeNull();
    expect(both.recognizer.source).toBe('file');
  });
});

describe('a promoted file that changed', () => {
  it('the remedy says to evaluate again for a report-promoted file, to promote again for a plain one', async () => {
    const rec = await promotedRecognizer('report-promoted', 0.4);
    await writeFile(rec.model, 'changed-after');
    const e = await refusal(selectModels(resolveServerConfig({ detector: det, manifest: rec.manifest })));
    expect(isFaceoptError(e, 'FACEOPT_ERR_CHECKSUM'), String(e)).toBe(true);
    expect((e as Error).message).toContain('evaluate it again (`faceopt evaluate`)');

    const dir = path.join(tmp, `case${++n}`);
    await mkdir(path.join(dir, 'models'), { recursive: true });
    const plain = path.join(dir, 'models', 'rec.onnx');
    await writeFile(plain, 'plain-file');
    const manifest = await manifestWith(dir, { recognizer: await entryFromFile(path.join(dir, 'models', 'manifest.json'), plain) });
    await writeFile(plain, 'plain-file-changed');
    const f = await refusal(selectModels(resolveServerConfig({ detector: det, manifest })));
    expect(isFaceoptError(f, 'FACEOPT_ERR_CHECKSUM'), String(f)).toBe(true);
    expect((f as Error).message).toContain('promote it again (`faceopt promote --recognizer FILE`)');
  });
});

describe('the detector size a promoted detector was evaluated at', () => {
  const detectorAt = async (inputSize: [number, number], report: string | null = null) => {
    const dir = path.join(tmp, `case${++n}`);
    await mkdir(path.join(dir, 'models'), { recursive: true });
    const rec = path.join(dir, 'rec.onnx');
    await writeFile(rec, 'recognizer');
    const entry = { ...await entryFromFile(path.join(dir, 'models', 'manifest.json'), det, 'int8'), inputSize, report };
    return { manifest: await manifestWith(dir, { detector: entry }), rec };
  };

  it('a non-square evaluated size is not served (serve takes N for NxN): the default size, with a note; --det-size at one side of it still gets the note', async () => {
    const { manifest, rec } = await detectorAt([640, 480]);
    const picked = await selectModels(resolveServerConfig({ recognizer: rec, manifest }));
    expect(picked.detSize).toBeNull();
    expect(picked.detector.reportNote).toMatch(/evaluated the detector at 640x480, which serve cannot take/);
    const flagged = await selectModels(resolveServerConfig({ recognizer: rec, manifest, detSize: 640 }));
    expect(flagged.detSize).toBeNull();
    expect(flagged.detector.reportNote).toBe('serving the detector at 640x640 (--det-size), but its report evaluated it at 640x480: its verdict is for that size');
  });

  it('an evaluated size the detector cannot take is refused at selection, like --det-size', async () => {
    const { manifest, rec } = await detectorAt([320, 320]);
    const e = await refusal(selectModels(resolveServerConfig({ recognizer: rec, manifest })));
    expect(isFaceoptError(e), String(e)).toBe(true);
    expect((e as Error).message).toContain("the input size the detector's report evaluated (320x320)");
  });

  it('a missing report\'s note and a --det-size note are both kept', async () => {
    const { manifest, rec } = await detectorAt([320, 320], 'gone/report.json');
    const picked = await selectModels(resolveServerConfig({ recognizer: rec, manifest, detSize: 640 }));
    expect(picked.detector.report).toBeNull();
    expect(picked.detector.reportNote).toMatch(/^report .*gone\/report\.json is not here: .*; serving the detector at 640x640 \(--det-size\), but its report evaluated it at 320x320/);
  });
});

describe('promotedMatchThreshold', () => {
  it('is the report\'s threshold for the promoted bytes (as it is now), null for other bytes of the same size', async () => {
    const rec = await promotedRecognizer('twelve-bytes', 0.31);
    expect(await promotedMatchThreshold(rec.model, rec.manifest)).toBe(0.31);
    await rec.write(0.33); // the report regenerated since promotion: serve reads it, so compare does
    expect(await promotedMatchThreshold(rec.model, rec.manifest)).toBe(0.33);
    const twin = path.join(rec.dir, 'twin.onnx');
    await writeFile(twin, 'twelve-BYTES');
    expect(await promotedMatchThreshold(twin, rec.manifest)).toBeNull();
  });
});

describe('int8HostNote', () => {
  it('says nothing when the report was measured on a CPU whose int8 sums saturate as well', () => {
    const r = exampleRecognizerReport();
    r.provenance.machine = { ...r.provenance.machine, int8Dot: 'AVX2 without VNNI' };
    expect(int8HostNote(r, 'AVX-512 without VNNI')).toBeNull();
  });
});

describe('readReport', () => {
  it('reads a report.json path as well as its folder; refuses another schema version and a missing field', async () => {
    const rec = await recognizerWithReport('report-reading', 0.35);
    const file = path.join(rec.dir, 'report', 'report.json');
    expect((await readReport(file)).file).toBe(file);
    expect((await readReport(path.dirname(file))).file).toBe(file);

    const r = exampleRecognizerReport();
    const other = path.join(rec.dir, 'other.json');
    await writeFile(other, JSON.stringify({ ...r, schemaVersion: r.schemaVersion + 1 }));
    const e = await refusal(readReport(other));
    expect(isFaceoptError(e, 'FACEOPT_ERR_REPORT'), String(e)).toBe(true);
    expect((e as Error).message).toContain(`schema version ${r.schemaVersion + 1}`);

    const { gates: _gone, ...withoutGates } = r;
    await writeFile(other, JSON.stringify(withoutGates));
    const f = await refusal(readReport(other));
    expect(isFaceoptError(f, 'FACEOPT_ERR_REPORT'), String(f)).toBe(true);
    expect((f as Error).message).toContain('gates');
  });
});
