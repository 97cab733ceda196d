/**
 * Evaluation inputs and the evaluation set, at their edges (synthetic files, nothing decoded): pairs-file
 * lines that look like headers or LFW lines, negative box coordinates, the up-front check of all inputs,
 * and what the split says and counts for given splits, spread lists, recognizers and detectors.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { splitCalibration } from '../../pipeline/calibrate/sources.js';
import { readBoxAnnotations, readEvaluationInputs, readPairs } from '../../pipeline/evaluate/data.js';
import { checkedCalibrationSplit, evaluationSet, evaluationSetWith, noEvaluationPhotos } from '../../pipeline/evaluate/split.js';

const root = mkdtempSync(path.join(tmpdir(), 'faceopt-evalset-audit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const file = (name: string, text: string) => { const f = path.join(root, name); writeFileSync(f, text); return f; };
const code = (fn: () => unknown) => { try { fn(); return null; } catch (e) { return (e as { code?: string }).code ?? String(e); } };

/** A faces folder: people A..(A+ids-1), `per` empty photos each. */
function faces(name: string, ids: number, per: number): string {
  const dir = path.join(root, name);
  for (let i = 0; i < ids; i++) {
    const id = `P${i}`;
    mkdirSync(path.join(dir, id), { recursive: true });
    for (let k = 1; k <= per; k++) writeFileSync(path.join(dir, id, `${id}_${k}.jpg`), '');
  }
  return dir;
}

describe('readPairs edges', () => {
  it('a header is skipped on the first line only; later it is a bad same flag', () => {
    expect(code(() => readPairs(file('late-header.tsv', 'a/1.jpg\tb/1.jpg\t0\nleft\tright\tsame\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });
  it('an LFW count line is a header on the first line only', () => {
    expect(code(() => readPairs(file('late-count.txt', 'Abel_Pacheco 1 4\n10 300\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });
  it('an LFW same line needs two image numbers (not `name 1 x`)', () => {
    expect(code(() => readPairs(file('lfw-word.txt', 'Abel_Pacheco 1 x\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });
  it('blank and whitespace-only lines are skipped', () => {
    expect(readPairs(file('blank.tsv', 'a/1.jpg\tb/1.jpg\t0\n   \n\t\n\na/1.jpg\ta/2.jpg\t1\n'))).toHaveLength(2);
  });
});

describe('readBoxAnnotations edges', () => {
  it('keeps a box that starts left of or above the photo (negative coordinates)', () => {
    const xml = file('neg.xml', "<dataset><images><image file='g.jpg'><box top='-4' left='-6' width='30' height='40'/></image></images></dataset>");
    expect(readBoxAnnotations(xml)).toEqual([{ file: path.join(root, 'g.jpg'), boxes: [[-6, -4, 24, 36]] }]);
  });
});

describe('readEvaluationInputs', () => {
  it('reads pairs and every box file, and checks every face-free photo before any long work', () => {
    const xml1 = file('b1.xml', "<image file='one.jpg'><box top='1' left='2' width='3' height='4'/></image>");
    const xml2 = file('b2.xml', "<image file='two.jpg'/>");
    const pairs = file('ok.tsv', 'a/1.jpg\tb/1.jpg\t0\n');
    const ff = file('dogs.jpg', '');
    const r = readEvaluationInputs({ pairsFile: pairs, boxFiles: [xml1, xml2], faceFree: [ff] });
    expect(r.pairs).toEqual([{ left: 'a/1.jpg', right: 'b/1.jpg', same: false }]);
    expect(r.annotated.map((a) => path.basename(a.file))).toEqual(['one.jpg', 'two.jpg']);
    expect(readEvaluationInputs({})).toEqual({ pairs: null, annotated: [] });
    expect(code(() => readEvaluationInputs({ faceFree: [ff, path.join(root, 'absent.jpg')] }))).toBe('FACEOPT_ERR_FILE_NOT_FOUND');
  });
});

describe('evaluationSet and evaluationSetWith edges', () => {
  const dir = faces('f8', 8, 2); // 16 photos

  it('a split passed in was warned about where it was made: no warning again', () => {
    const split = { ...splitCalibration(dir, { size: 4 }), warnings: ['2 duplicate lines in cal.txt were dropped'] };
    expect(evaluationSet({ facesDir: dir, split, maxImages: 100 }).warnings).toEqual([]);
  });

  it('every held-apart photo evaluated: not "evenly spread", and no photo counted as given explicitly', () => {
    const s = evaluationSet({ facesDir: dir, calibrationSize: 4, maxImages: 100 });
    expect(s.evalImages).toHaveLength(12);
    expect(s.split.description).toMatch(/evaluation on 12 of 12 held-apart photos$/);
  });

  it('a recognizer takes no explicit photos: an annotated held-apart photo stays among the evaluated ones', () => {
    const split = splitCalibration(dir, { size: 4 });
    const held = path.join(dir, split.heldApart[0]!);
    const r = evaluationSetWith({ facesDir: dir, calibrationSize: 4, maxImages: 100, role: 'recognizer', boxFiles: ['/x/b.xml'], annotated: [{ file: held }], faceFree: [] });
    expect(r.set.evalImages).toContain(split.heldApart[0]);
    expect(r.set.split.evaluationImages).toBe(12);
  });

  it('a detector counts its kept face-free photos among the evaluated; without a faces folder nothing is appended', () => {
    const ff = file('ff.jpg', '');
    const r = evaluationSetWith({ facesDir: dir, calibrationSize: 4, maxImages: 100, role: 'detector', boxFiles: [], annotated: [], faceFree: [ff] });
    expect(r.faceFree).toEqual([ff]);
    expect(r.set.split.evaluationImages).toBe(12 + 1);
    expect(r.set.split.description).toMatch(/; plus 1 face-free photo\(s\)$/);
    const alone = evaluationSetWith({ maxImages: 100, role: 'detector', boxFiles: ['/x/boxes.xml'], annotated: [{ file: '/x/a.jpg' }], faceFree: [ff] });
    expect(alone.set.split.description).toBe('evaluation on 1 annotated photos of boxes.xml and 1 face-free photo(s); no faces folder was named, so no calibration photos were in play');
    expect(alone.set.split.evaluationImages).toBe(2);
  });
});

describe('checkedCalibrationSplit and noEvaluationPhotos', () => {
  const dir = faces('f2', 2, 2); // 4 photos: all go into a calibration of 10

  it('nothing to compare fails only when an evaluation follows and nothing was given besides the folder', () => {
    const warned: string[] = [];
    const opts = { facesDir: dir, calibrationSize: 10, pairs: false, explicit: 0, warn: (w: string) => warned.push(w) };
    expect(code(() => checkedCalibrationSplit({ ...opts, evaluate: true }))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(checkedCalibrationSplit({ ...opts, evaluate: false })?.calibration).toHaveLength(4);
    expect(checkedCalibrationSplit({ ...opts, evaluate: true, explicit: 1 })?.heldApart).toEqual([]);
    expect(noEvaluationPhotos({ facesDir: dir, heldApart: 0, calibration: 4, pairs: false, explicit: 2 })).toBeNull();
    expect(noEvaluationPhotos({ facesDir: dir, heldApart: 0, calibration: 4, pairs: false, explicit: 0 })?.message).toMatch(/whose 4 photo\(s\) all go into calibration/);
  });

  it('the few-photos warning is left out only for a --stats file that exists (reused, not collected)', () => {
    const warnings = (statsFile: string) => { const w: string[] = []; checkedCalibrationSplit({ facesDir: dir, calibrationSize: 10, statsFile, evaluate: false, pairs: false, explicit: 0, warn: (x) => w.push(x) }); return w; };
    expect(warnings(file('stats.json', '{}'))).toEqual([]);
    expect(warnings(path.join(root, 'not-yet.json'))).toEqual([expect.stringMatching(/^calibration on 4 photo\(s\)/)]);
  });
});
