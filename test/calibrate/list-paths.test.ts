/**
 * --calibration-list entries are normalised before their identity is taken: `./A/x.jpg` and
 * `B/../A/x.jpg` are A's photos (they used to be identity "." and "B", so A's photos leaked into the
 * evaluation while the report said 0 shared identities); entries that leave --faces are refused;
 * absolute paths inside --faces are taken relative to it, outside refused; duplicates dropped with a warning.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { identityOf as sourcesIdentityOf, readImageList, splitCalibration } from '../../pipeline/calibrate/sources.js';
import { checkedCalibrationSplit, evaluationSet, identityOf } from '../../pipeline/evaluate/split.js';
import { isFaceoptError } from '../../pipeline/errors.js';

const root = mkdtempSync(path.join(tmpdir(), 'faceopt-listpaths-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const faces = path.join(root, 'faces');
for (const id of ['A', 'B', 'C', 'D']) {
  mkdirSync(path.join(faces, id), { recursive: true });
  for (let k = 1; k <= 3; k++) writeFileSync(path.join(faces, id, `${id}_${k}.jpg`), '');
}
writeFileSync(path.join(root, 'outside.jpg'), '');

function list(name: string, lines: string[]): string {
  const f = path.join(root, name);
  writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

function refusal(f: () => unknown): { code: string; message: string; exit: number } {
  try {
    f();
  } catch (e) {
    if (isFaceoptError(e)) return { code: e.code, message: e.message, exit: e.exitCode };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('calibration list entries', () => {
  it('identity is taken after normalising: one shared function', () => {
    expect(identityOf).toBe(sourcesIdentityOf);
    expect(identityOf('./A/A_1.jpg')).toBe('A');
    expect(identityOf('B/../A/A_1.jpg')).toBe('A');
    expect(identityOf('A//A_1.jpg')).toBe('A');
    expect(identityOf('.\\A\\A_1.jpg')).toBe('A');
    expect(identityOf('flat.jpg')).toBe('flat.jpg');
  });

  it('./ and a/../ entries are normalised, and their identities never reach the evaluation', () => {
    const f = list('dot.txt', ['./A/A_1.jpg', './A/A_2.jpg', 'C/../B/B_1.jpg']);
    expect(readImageList(f, faces)).toEqual(['A/A_1.jpg', 'A/A_2.jpg', 'B/B_1.jpg']);
    const s = splitCalibration(faces, { listFile: f });
    expect(s.calibration).toEqual(['A/A_1.jpg', 'A/A_2.jpg', 'B/B_1.jpg']);
    expect(s.heldApart.map(identityOf).sort()).toEqual(['C', 'C', 'C', 'D', 'D', 'D']);
    const set = evaluationSet({ facesDir: faces, calibrationList: f, maxImages: 100 });
    expect(set.evalImages.some((p) => ['A', 'B'].includes(identityOf(p)))).toBe(false);
    expect(set.split.sharedIdentities).toBe(0);
    expect(set.split.calibrationIdentities).toBe(2);
  });

  it('pairs written with ./ are matched to calibration identities too', () => {
    const f = list('dot2.txt', ['./A/A_1.jpg']);
    const pairs = [{ left: './A/A_2.jpg', right: 'C/C_1.jpg', same: false }, { left: 'C/C_1.jpg', right: 'C/C_2.jpg', same: true }];
    const set = evaluationSet({ facesDir: faces, calibrationList: f, pairs: { file: '/x/p.tsv', pairs }, maxImages: 100 });
    expect(set.droppedPairs).toBe(1);
    expect(set.split.sharedIdentities).toBe(0);
  });

  it('entries that leave --faces are refused, naming the entry', () => {
    for (const bad of ['../outside.jpg', 'A/../../outside.jpg', '../../models/x.onnx']) {
      const f = list('escape.txt', ['A/A_1.jpg', bad]);
      const r = refusal(() => readImageList(f, faces));
      expect(r.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
      expect(r.exit).toBe(64);
      expect(r.message).toContain(bad);
      expect(r.message).toMatch(/outside --faces/);
    }
  });

  it('absolute paths inside --faces are taken relative to it; outside they are refused', () => {
    const inside = list('abs.txt', [path.join(faces, 'A', 'A_1.jpg'), 'B/B_1.jpg']);
    expect(readImageList(inside, faces)).toEqual(['A/A_1.jpg', 'B/B_1.jpg']);
    const outside = list('abs2.txt', [path.join(root, 'outside.jpg')]);
    const r = refusal(() => readImageList(outside, faces));
    expect(r.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(r.message).toContain(path.join(root, 'outside.jpg'));
    expect(r.message).toMatch(/relative to --faces/);
    expect(r.message).not.toMatch(/missing/);
  });

  it('duplicate lines are dropped with one warning naming how many', () => {
    const f = list('dup.txt', ['A/A_1.jpg', 'A/A_2.jpg', './A/A_1.jpg', 'A/A_1.jpg', 'B/B_1.jpg']);
    const s = splitCalibration(faces, { listFile: f });
    expect(s.calibration).toEqual(['A/A_1.jpg', 'A/A_2.jpg', 'B/B_1.jpg']);
    expect(s.warnings).toEqual([expect.stringMatching(/^2 duplicate lines in dup\.txt were dropped/)]);
    const warned: string[] = [];
    checkedCalibrationSplit({ facesDir: faces, calibrationList: f, evaluate: true, pairs: false, explicit: 0, warn: (w) => warned.push(w) });
    expect(warned.filter((w) => /duplicate/.test(w))).toHaveLength(1);
    const set = evaluationSet({ facesDir: faces, calibrationList: f, maxImages: 100 });
    expect(set.warnings.filter((w) => /duplicate/.test(w))).toHaveLength(1);
    // no warning for a clean list
    expect(splitCalibration(faces, { listFile: list('clean.txt', ['A/A_1.jpg']) }).warnings ?? []).toEqual([]);
  });

  it('listed photos missing under --faces are named, with what to do (it said no images were found and to pass a list)', () => {
    const r = refusal(() => readImageList(list('missing.txt', ['A/A_1.jpg', 'A/A_9.jpg', 'B/B_1.jpg', 'Z/Z_1.jpg']), faces));
    expect(r.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(r.exit).toBe(64);
    expect(r.message).toContain('2 of whose 4 photos are missing: A/A_9.jpg, Z/Z_1.jpg');
    expect(r.message).toContain('fix those lines of the list, remove them, or point --faces at the folder the list was made for');
  });
});
