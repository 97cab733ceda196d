/**
 * `faceopt detect --draw`: where each drawing goes, decided before any model loads (no models needed).
 */
import { existsSync, writeFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { drawTargets } from '../../pipeline/cli/detect.js';
import { isFaceoptError } from '../../pipeline/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-draw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function usageError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isFaceoptError(e) && e.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('drawTargets', () => {
  it('one photo: the --draw file itself, .jpg/.jpeg/.png in any case', () => {
    for (const name of ['a.jpg', 'b.JPEG', 'c.png']) expect(drawTargets(path.join(dir, name), ['x/t1.jpg'])).toEqual([path.join(dir, name)]);
  });
  it('one photo into an existing folder: NAME.faces.jpg there', () => {
    const into = path.join(dir, 'existing');
    mkdirSync(into);
    expect(drawTargets(into, ['photos/t1.jpg'])).toEqual([path.join(into, 't1.faces.jpg')]);
  });
  it('one photo and a name of another type is refused (it was written as JPEG whatever its name)', () => {
    expect(usageError(() => drawTargets(path.join(dir, 'out.txt'), ['t1.jpg']))).toContain('Expected a .jpg, .jpeg or .png file name, or an existing folder for --draw');
    expect(usageError(() => drawTargets(path.join(dir, 'noext'), ['t1.jpg']))).toContain('for --draw');
  });
  it('several photos and an image file name is refused, and nothing is made', () => {
    const out = path.join(dir, 'many.jpg');
    expect(usageError(() => drawTargets(out, ['a.jpg', 'b.jpg']))).toContain('Expected a folder with 2 photos (one drawing each) for --draw');
    expect(existsSync(out)).toBe(false);
  });
  it('several photos: photos that share a name do not overwrite each other; the folder waits for the first drawing', () => {
    const out = path.join(dir, 'drawn', 'nested');
    expect(drawTargets(out, ['a/t1.jpg', 'b/t1.png', 'dogs.jpg', 'c/t1.jpg'])).toEqual(
      ['t1.faces.jpg', 't1-2.faces.jpg', 'dogs.faces.jpg', 't1-3.faces.jpg'].map((f) => path.join(out, f)),
    );
    expect(existsSync(out)).toBe(false); // a run that fails before drawing leaves no empty folder
  });
  it('one photo and a name ending in "/": a folder, made later', () => {
    expect(drawTargets(path.join(dir, 'later') + '/', ['x/t1.jpg'])).toEqual([path.join(dir, 'later', 't1.faces.jpg')]);
  });
  it('never a photo the command reads: the same path, or a drawing whose name is an input\'s', () => {
    const photo = path.join(dir, 'in.jpg');
    writeFileSync(photo, 'x');
    const refused = (f: () => unknown) => { try { f(); } catch (e) { return e as { code: string; message: string }; } throw new Error('not refused'); };
    expect(refused(() => drawTargets(photo, [photo]))).toMatchObject({ code: 'FACEOPT_ERR_OVERWRITE_SOURCE', message: `Refusing to overwrite the source photo ${photo}. Choose another output path.` });
    const drawnName = path.join(dir, 'in.faces.jpg');
    writeFileSync(drawnName, 'y');
    expect(refused(() => drawTargets(dir, [photo, drawnName])).code).toBe('FACEOPT_ERR_OVERWRITE_SOURCE');
    expect(refused(() => drawTargets(path.join(dir, '.', 'in.jpg'), [path.relative(process.cwd(), photo)])).code).toBe('FACEOPT_ERR_OVERWRITE_SOURCE');
  });
});
