/**
 * Evaluation data files: pair lists (faceopt's TSV and LFW's formats) and dlib XML face boxes, with coded
 * errors for files that are not what their flag expects.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBoxAnnotations, readPairs } from '../../pipeline/evaluate/data.js';

const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-data-'));
const file = (name: string, text: string) => { const f = path.join(dir, name); writeFileSync(f, text); return f; };
const code = (fn: () => unknown) => { try { fn(); return null; } catch (e) { return (e as { code?: string }).code ?? String(e); } };

describe('readPairs', () => {
  it('reads the TSV (header skipped) and both LFW line forms', () => {
    expect(readPairs(file('p.tsv', 'left\tright\tsame\na/1.jpg\tb/2.jpg\t0\na/1.jpg\ta/3.jpg\t1\n'))).toEqual([
      { left: 'a/1.jpg', right: 'b/2.jpg', same: false },
      { left: 'a/1.jpg', right: 'a/3.jpg', same: true },
    ]);
    expect(readPairs(file('lfw.txt', '10 300\nAbel_Pacheco 1 4\nAbdel_Madi_Shabneh 1 Dean_Barker 1\n'))).toEqual([
      { left: 'Abel_Pacheco/Abel_Pacheco_0001.jpg', right: 'Abel_Pacheco/Abel_Pacheco_0004.jpg', same: true },
      { left: 'Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg', right: 'Dean_Barker/Dean_Barker_0001.jpg', same: false },
    ]);
  });
  it('refuses a line it cannot read, a bad same flag, an empty list and a missing file, with codes', () => {
    expect(code(() => readPairs(file('bad.tsv', 'garbage line\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => readPairs(file('words.tsv', 'garbage line here\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT'); // not "garbage_0NaN.jpg"
    expect(code(() => readPairs(file('words4.tsv', 'a b c d\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => readPairs(file('flag.tsv', 'a.jpg\tb.jpg\tyes\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => readPairs(file('empty.tsv', '\n\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => readPairs(path.join(dir, 'absent.tsv')))).toBe('FACEOPT_ERR_FILE_NOT_FOUND');
  });
});

describe('readBoxAnnotations', () => {
  it('reads boxes as [x1, y1, x2, y2], skips ignored ones, resolves photos next to the XML', () => {
    const xml = file('boxes.xml', `<?xml version='1.0'?><dataset><images>
      <image file='g/one.jpg'><box top='10' left='20' width='30' height='40'/><box top='1' left='2' width='3' height='4' ignore='1'/></image>
      <image file='two.jpg'></image>
    </images></dataset>`);
    expect(readBoxAnnotations(xml)).toEqual([
      { file: path.join(dir, 'g', 'one.jpg'), boxes: [[20, 10, 50, 50]] },
      { file: path.join(dir, 'two.jpg'), boxes: [] },
    ]);
  });
  it('refuses a file with no <image> entries (a pairs list passed as --boxes) and a missing file', () => {
    expect(code(() => readBoxAnnotations(file('not.xml', 'a.jpg\tb.jpg\t1\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => readBoxAnnotations(path.join(dir, 'absent.xml')))).toBe('FACEOPT_ERR_FILE_NOT_FOUND');
  });
});
