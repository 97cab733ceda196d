/**
 * Evaluation data files: same/different pair lists (faceopt's TSV `left<TAB>right<TAB>same`, or LFW's
 * `pairs.txt` / `pairsDevTest.txt` format) and dlib-format face-box annotations (`<image file=...>` with
 * `<box top left width height/>`), as InsightFace and dlib ship them.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { readTextListFile, requireFile } from '../fsutil.js';

export interface Pair {
  left: string;
  right: string;
  same: boolean;
}

function lfwName(name: string, n: string): string {
  return `${name}/${name}_${String(Number(n)).padStart(4, '0')}.jpg`;
}

/** Read a pairs file; paths are relative to the faces folder. */
export function readPairs(file: string): Pair[] {
  // a folder failed as an internal error (EISDIR, exit 70)
  const lines = readTextListFile(file, '--pairs', 'a pairs file (`left<TAB>right<TAB>same` or LFW pairs.txt)').split(/\r?\n/).filter((l) => l.trim());
  const pairs: Pair[] = [];
  // LFW pairs.txt: image numbers are positive integers (a stray line read as one gave "name_0NaN.jpg")
  const n = (x: string) => /^\d+$/.test(x);
  for (const [i, line] of lines.entries()) {
    const tab = line.split('\t');
    // LFW's own files are tab-separated too: `name<TAB>n1<TAB>n2` is a same pair, not `left<TAB>right<TAB>same`
    // (read as one, every such line failed on its second number, or became a pair of photos "name" and "n1")
    // (a faceopt line's third field is 0 or 1, which an LFW line's second image number never is, as its
    // numbers rise: so `17<TAB>42<TAB>1`, two photos named by number, stays a faceopt line)
    const sameField = tab[2]?.trim();
    if (tab.length === 3 && (sameField === '0' || sameField === '1' || !(n(tab[1]!.trim()) && n(sameField!)))) {
      // the flag as trimmed above, which chose this form (the raw field refused `1 ` as "received 1 ")
      if (i === 0 && sameField === 'same') continue; // header
      if (sameField !== '0' && sameField !== '1') throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'same = 0 or 1', name: `${path.basename(file)} line ${i + 1}`, received: tab[2] });
      pairs.push({ left: tab[0]!, right: tab[1]!, same: sameField === '1' });
      continue;
    }
    const w = line.trim().split(/\s+/);
    if (i === 0 && w.length <= 2 && w.every((x) => /^\d+$/.test(x))) continue; // LFW count header
    if (w.length === 3 && n(w[1]!) && n(w[2]!)) pairs.push({ left: lfwName(w[0]!, w[1]!), right: lfwName(w[0]!, w[2]!), same: true });
    else if (w.length === 4 && n(w[1]!) && n(w[3]!)) pairs.push({ left: lfwName(w[0]!, w[1]!), right: lfwName(w[2]!, w[3]!), same: false });
    else throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: '`left<TAB>right<TAB>same` or LFW `name n1 n2` / `name1 n1 name2 n2`', name: `${path.basename(file)} line ${i + 1}`, received: line.slice(0, 80) });
  }
  if (!pairs.length) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'at least one pair', name: `--pairs ${file}`, received: 'none' });
  return pairs;
}

/**
 * The pairs an evaluation scores, from one pairs file, in file order. When some of the file's pairs were
 * left out (keepPairs), `source` keeps the file's whole list, the place of each of `pairs` in it and why
 * the others went: verification folds are assigned over the file's pairs, so leaving pairs out moves no
 * other pair into another fold (on LFW View 2 the folds stay the file's 10 sets).
 */
export interface PairList {
  file: string;
  pairs: readonly Pair[];
  source?: { pairs: readonly Pair[]; index: readonly number[]; leftOut: string };
}

/**
 * `list` without the pairs `keep` rejects (`why` they go, e.g. "touching calibration identities"),
 * remembering the file's whole list (PairList.source). Keeping every pair returns the list as it was.
 */
export function keepPairs(list: PairList, keep: (p: Pair) => boolean, why: string): PairList {
  const pairs: Pair[] = [];
  const index: number[] = [];
  list.pairs.forEach((p, i) => {
    if (!keep(p)) return;
    pairs.push(p);
    index.push(list.source ? list.source.index[i]! : i);
  });
  if (pairs.length === list.pairs.length) return list;
  const leftOut = list.source ? `${list.source.leftOut}; ${why}` : why;
  return { file: list.file, pairs, source: { pairs: list.source?.pairs ?? list.pairs, index, leftOut } };
}

export interface AnnotatedImage {
  /** Absolute path of the photo. */
  file: string;
  /** Boxes [x1, y1, x2, y2]. */
  boxes: [number, number, number, number][];
}

/** Read dlib XML annotations; image paths resolve relative to the XML file's folder. */
export function readBoxAnnotations(file: string): AnnotatedImage[] {
  if (!existsSync(file)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: file });
  const xml = readFileSync(file, 'latin1');
  const out: AnnotatedImage[] = [];
  // `<image file='x.jpg'/>` (no boxes) is an element of its own: read as an open tag, it took the boxes
  // of the next image up to that image's `</image>`, and that image was lost
  for (const m of xml.matchAll(/<image\s+file=['"]([^'"]+)['"][^>]*?(?:\/>|>([\s\S]*?)<\/image>)/g)) {
    const boxes: AnnotatedImage['boxes'] = [];
    for (const b of (m[2] ?? '').matchAll(/<box\s+([^>]*?)\/?>/g)) {
      const attr = (k: string) => Number(new RegExp(`\\b${k}=['"](-?\\d+(?:\\.\\d+)?)['"]`).exec(b[1]!)?.[1] ?? NaN);
      const [top, left, width, height] = [attr('top'), attr('left'), attr('width'), attr('height')];
      if ([top, left, width, height].some((v) => !Number.isFinite(v))) continue;
      if (/ignore=['"]1['"]/.test(b[1]!)) continue;
      boxes.push([left, top, left + width, top + height]);
    }
    out.push({ file: path.resolve(path.dirname(file), m[1]!), boxes });
  }
  // anything else (a pairs list, a JSON file) would otherwise evaluate against no annotations at all
  if (!out.length) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: "dlib XML face boxes (<image file='...'><box top= left= width= height=/></image>)", name: path.basename(file), received: 'no <image> entries' });
  return out;
}

/**
 * An evaluation's input files, read and checked before any long work (a malformed pairs list or a missing
 * face-free photo then fails in seconds, not after calibration): pairs, box annotations, face-free photos.
 */
export function readEvaluationInputs(o: { pairsFile?: string; boxFiles?: readonly string[]; faceFree?: readonly string[] }): { pairs: Pair[] | null; annotated: AnnotatedImage[] } {
  const pairs = o.pairsFile ? readPairs(o.pairsFile) : null;
  const annotated = (o.boxFiles ?? []).flatMap((f) => readBoxAnnotations(f));
  for (const f of o.faceFree ?? []) requireFile(f);
  return { pairs, annotated };
}
