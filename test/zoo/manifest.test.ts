import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { sha256File } from '../../pipeline/fsutil.js';
import { MODEL_ROLES } from '../../pipeline/zoo/schema.js';
import { defaultZooFile, findFile, findPack, loadZoo, parseZoo } from '../../pipeline/zoo/zoo.js';
import { describeShared, shared } from '../helpers/shared.js';

const ZOO_FILE = path.resolve('models/zoo.json');
const raw = (): Record<string, any> => JSON.parse(readFileSync(ZOO_FILE, 'utf8'));

/** Expect parseZoo on `doc` to fail with FACEOPT_ERR_ZOO_INVALID mentioning `fragment`. */
function expectInvalid(doc: unknown, fragment: string): void {
  try {
    parseZoo(typeof doc === 'string' ? doc : JSON.stringify(doc), 'bad-zoo.json');
  } catch (e) {
    expect(isFaceoptError(e, 'FACEOPT_ERR_ZOO_INVALID')).toBe(true);
    expect((e as Error).message).toContain('bad-zoo.json');
    expect((e as Error).message).toContain(fragment);
    return;
  }
  throw new Error(`expected FACEOPT_ERR_ZOO_INVALID (${fragment})`);
}

describe('models/zoo.json', () => {
  const zoo = loadZoo(ZOO_FILE);

  it('is the manifest found by default and validates', () => {
    expect(defaultZooFile()).toBe(ZOO_FILE);
    expect(zoo.version).toBe(1);
    expect(zoo.packs.map((p) => p.name)).toEqual(['buffalo_l', 'buffalo_m', 'buffalo_s', 'buffalo_sc', 'antelopev2']);
  });

  it('gives every pack the official v0.7 URL, a license, and published zip size + sha256', () => {
    for (const p of zoo.packs) {
      expect(p.url).toBe(`https://github.com/deepinsight/insightface/releases/download/v0.7/${p.name}.zip`);
      expect(p.license).toMatch(/non-commercial/);
      expect(p.zip.size).toBeGreaterThan(1_000_000);
      expect(p.zip.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(p.zip.sources.sha256?.length).toBeGreaterThanOrEqual(2); // every zip hash seen in two or more places
    }
    expect(findPack(zoo, 'buffalo_sc').zip.size).toBe(14_969_382);
    expect(findPack(zoo, 'antelopev2').zip.layout).toBe('nested');
  });

  it('lists the files of each pack with their roles, as InsightFace documents them', () => {
    const roles = (name: string) => Object.fromEntries(findPack(zoo, name).files.map((f) => [f.name, f.role]));
    expect(roles('buffalo_l')).toEqual({
      'det_10g.onnx': 'detector', 'w600k_r50.onnx': 'recognizer', '1k3d68.onnx': 'landmark_3d_68',
      '2d106det.onnx': 'landmark_2d_106', 'genderage.onnx': 'genderage',
    });
    expect(roles('buffalo_sc')).toEqual({ 'det_500m.onnx': 'detector', 'w600k_mbf.onnx': 'recognizer' });
    expect(Object.keys(roles('antelopev2')).sort()).toEqual(['1k3d68.onnx', '2d106det.onnx', 'genderage.onnx', 'glintr100.onnx', 'scrfd_10g_bnkps.onnx']);
    expect(roles('buffalo_m')['det_2.5g.onnx']).toBe('detector');
    for (const p of zoo.packs) {
      expect(p.files.filter((f) => f.role === 'detector')).toHaveLength(1);
      expect(p.files.filter((f) => f.role === 'recognizer')).toHaveLength(1);
      for (const f of p.files) expect(MODEL_ROLES).toContain(f.role);
    }
  });

  it('records 112x112 input and 512-d embeddings for every recognizer, and role-specific input sizes', () => {
    for (const p of zoo.packs) {
      for (const f of p.files) {
        if (f.role === 'recognizer') { expect(f.inputSize).toEqual([112, 112]); expect(f.embeddingSize).toBe(512); }
        else expect(f.embeddingSize).toBeNull();
        if (f.role.startsWith('landmark')) expect(f.inputSize).toEqual([192, 192]);
        if (f.role === 'genderage') expect([f.inputSize, f.outputSize]).toEqual([[96, 96], 3]);
      }
    }
  });

  it('keeps the checksums of files shared between packs consistent', () => {
    const l = findPack(zoo, 'buffalo_l');
    const a = findPack(zoo, 'antelopev2');
    expect(findFile(a, 'scrfd_10g_bnkps').sha256).toBe(findFile(l, 'det_10g').sha256);
    for (const n of ['1k3d68', '2d106det', 'genderage']) expect(findFile(a, n).sha256).toBe(findFile(l, n).sha256);
    expect(findFile(findPack(zoo, 'buffalo_m'), 'w600k_r50').sha256).toBe('4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43');
    expect(findFile(l, 'w600k_r50').size).toBe(174_383_860);
  });

  it('leaves unpublished facts null rather than guessing', () => {
    const s = findPack(zoo, 'buffalo_s');
    expect(s.files.every((f) => f.sha256 === null && f.size === null)).toBe(true);
    expect(findFile(findPack(zoo, 'buffalo_m'), 'genderage').sha256).toBeNull();
  });
});

describe('zoo manifest validation', () => {
  it('rejects a file that is not JSON', () => expectInvalid('{ nope', 'not valid JSON'));
  it('rejects an unknown version', () => expectInvalid({ ...raw(), version: 2 }, 'version'));
  it('rejects a malformed sha256 and names the field', () => {
    const doc = raw();
    doc.packs[1].files[0].sha256 = 'ABC';
    expectInvalid(doc, 'packs[1].files[0].sha256');
  });
  it('rejects a number with no source', () => {
    const doc = raw();
    delete doc.packs[0].files[1].sources.size;
    expectInvalid(doc, 'packs[0].files[1].sources.size');
  });
  it('rejects a source id that is not in the sources table', () => {
    const doc = raw();
    doc.packs[0].zip.sources.sha256 = ['nowhere'];
    expectInvalid(doc, '"nowhere"');
  });
  it('rejects an unknown role, an embedding size on a detector, duplicates and a missing url', () => {
    let doc = raw();
    doc.packs[0].files[0].role = 'classifier';
    expectInvalid(doc, 'packs[0].files[0].role');
    doc = raw();
    doc.packs[0].files[0].embeddingSize = 512;
    expectInvalid(doc, 'packs[0].files[0].embeddingSize');
    doc = raw();
    doc.packs[3].files[1].name = doc.packs[3].files[0].name;
    expectInvalid(doc, 'packs[3].files[1].name');
    doc = raw();
    doc.packs.push(doc.packs[0]);
    expectInvalid(doc, 'packs[5].name');
    doc = raw();
    delete doc.packs[2].url;
    expectInvalid(doc, 'packs[2].url');
  });
  it('reports an unreadable manifest with the same code', () => {
    try {
      loadZoo('/nonexistent/zoo.json');
      throw new Error('no error');
    } catch (e) {
      expect(isFaceoptError(e, 'FACEOPT_ERR_ZOO_INVALID')).toBe(true);
      expect((e as Error).message).toContain('ENOENT');
    }
  });
});

describeShared('zoo facts checked against the shared models', () => {
  it('the shared scrfd_500m_bnkps_dynamic.onnx is byte-identical to buffalo_sc/det_500m.onnx', async () => {
    const det = findFile(findPack(loadZoo(ZOO_FILE), 'buffalo_sc'), 'det_500m.onnx');
    expect(await sha256File(shared('models', 'scrfd_500m_bnkps_dynamic.onnx'))).toBe(det.sha256);
  });
});
