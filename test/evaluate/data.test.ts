/**
 * Evaluation data files: pair lists (faceopt's TSV and LFW's formats) and dlib XML face boxes, with coded
 * errors for files that are not what their flag expects.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBoxAnnotations, readPairs } from '../../pipeline/evaluate/data.js';
import { readImageList } from '../../pipeline/calibrate/sources.js';
import { isFaceoptError } from '../../pipeline/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-data-'));
const file = (name: string, text: string) => { const f = path.join(dir, name); writeFileSync(f, text); return f; };
const code = (fn: () => unknown) => { try { fn(); return null; } catch (e) { return (e as { code?: string }).code ?? String(e); } };

describe('readPairs', () => {
  it('a faceopt line whose photos are named by numbers stays a faceopt line (not LFW name n1 n2)', () => {
    expect(readPairs(file('num.tsv', '17\t42\t1\n17\t43\t0\n'))).toEqual([{ left: '17', right: '42', same: true }, { left: '17', right: '43', same: false }]);
  });
  it('a folder given as the pairs file is a coded bad argument (it was an internal EISDIR error, exit 70)', () => {
    expect(code(() => readPairs(dir))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });
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
  it("reads LFW's own tab-separated files: `name<TAB>n1<TAB>n2` is a same pair, not a TSV line", () => {
    // pairsDevTest.txt / pairs.txt are tab-separated; read as `left<TAB>right<TAB>same` the first same pair
    // failed ("same = 0 or 1 ... received 14"), and `name<TAB>1<TAB>3` became the photos "name" and "1"
    // (LFW's image numbers rise within a pair: a third field of 0 or 1 is faceopt's same flag)
    expect(readPairs(file('lfw-tabs.txt', '500\nAbdullah_Gul\t13\t14\nAaron_Peirsol\t1\t3\nAbdel_Madi_Shabneh\t1\tDean_Barker\t1\n'))).toEqual([
      { left: 'Abdullah_Gul/Abdullah_Gul_0013.jpg', right: 'Abdullah_Gul/Abdullah_Gul_0014.jpg', same: true },
      { left: 'Aaron_Peirsol/Aaron_Peirsol_0001.jpg', right: 'Aaron_Peirsol/Aaron_Peirsol_0003.jpg', same: true },
      { left: 'Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg', right: 'Dean_Barker/Dean_Barker_0001.jpg', same: false },
    ]);
    expect(readPairs(file('lfw-view2.txt', '10\t300\nAbel_Pacheco\t1\t4\n'))).toEqual([
      { left: 'Abel_Pacheco/Abel_Pacheco_0001.jpg', right: 'Abel_Pacheco/Abel_Pacheco_0004.jpg', same: true },
    ]);
  });
  it('a same flag followed by spaces is read as the flag (it was refused as "received 1 ", which reads as a 1)', () => {
    // the line was recognised as a faceopt line by its trimmed flag, then refused by the untrimmed one
    expect(readPairs(file('trailing.tsv', 'left\tright\tsame \na/1.jpg\tb/1.jpg\t0 \na/1.jpg\ta/2.jpg\t1  \n'))).toEqual([
      { left: 'a/1.jpg', right: 'b/1.jpg', same: false },
      { left: 'a/1.jpg', right: 'a/2.jpg', same: true },
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
  it('refuses a binary file (an image passed by mistake) as --pairs and --calibration-list without echoing its bytes', () => {
    const jpeg = path.join(dir, 'photo.jpg');
    writeFileSync(jpeg, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), Buffer.from('JFIF\0 some text after a NUL\n'.repeat(40))]));
    for (const [read, flag] of [[() => readPairs(jpeg), '--pairs'], [() => readImageList(jpeg, dir), '--calibration-list']] as const) {
      let err: unknown;
      try { read(); } catch (e) { err = e; }
      expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT'), String(err)).toBe(true);
      const message = (err as Error).message;
      expect(message).toContain(`for ${flag} but received ${jpeg} (a binary file: an image or a model?)`);
      expect(message).not.toMatch(/[\u0000-\u0008\ufffd]|JFIF/);
    }
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
  it('reads a self-closing <image/> as a photo without boxes, not as the opening of the next one', () => {
    // read as an open tag, empty.jpg took one.jpg's box up to one.jpg's </image>, and one.jpg was lost
    const xml = file('selfclosing.xml', `<dataset><images>
      <image file='empty.jpg'/>
      <image file='one.jpg' width='100' height='80'><box top='10' left='20' width='30' height='40'/></image>
      <image file='also-empty.jpg' width='10' height='10' />
    </images></dataset>`);
    expect(readBoxAnnotations(xml)).toEqual([
      { file: path.join(dir, 'empty.jpg'), boxes: [] },
      { file: path.join(dir, 'one.jpg'), boxes: [[20, 10, 50, 50]] },
      { file: path.join(dir, 'also-empty.jpg'), boxes: [] },
    ]);
  });
  it('refuses a file with no <image> entries (a pairs list passed as --boxes) and a missing file', () => {
    expect(code(() => readBoxAnnotations(file('not.xml', 'a.jpg\tb.jpg\t1\n')))).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(code(() => readBoxAnnotations(path.join(dir, 'absent.xml')))).toBe('FACEOPT_ERR_FILE_NOT_FOUND');
  });
});
