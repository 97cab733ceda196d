/**
 * Calibration image sources: a folder of photos or a list file, in a deterministic order, turned into
 * the tensors the model sees in production. Recognizers get faces detected and aligned exactly as the
 * face pipeline does (SCRFD, face nearest the centre, 5-point alignment, the recognizer's normalisation);
 * detectors get letterboxed, normalised frames. Without a list, a deterministic subset of the folder is
 * used and the rest (other identities where the folder has one sub-folder per person) is held apart for
 * evaluation. A photo that cannot be read (truncated, not an image, over the pixel limit) is skipped and
 * reported through `onUnreadable` when the caller gives one, so one bad file in a folder of hundreds
 * does not end a calibration; without it, it throws as before.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { leavesDir } from '../paths.js';
import { readTextListFile, sha256 } from '../fsutil.js';
import type { InputBatch } from './run.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { decodeImage, skipUnreadable, type OnUnreadable } from '../faces/decode.js';
import { letterbox, writeBlob, resizeBilinear } from '../faces/preprocess.js';
import { nearestToCentre } from '../faces/select.js';
import type { RgbImage } from '../faces/types.js';
import type { DetectorProfile, RecognizerProfile } from '../faces/profile.js';

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

/** Every image under `dir` (recursive), relative paths, sorted: a stable order on every machine. */
export function listFolderImages(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new FaceoptError('FACEOPT_ERR_NO_CALIBRATION_DATA', { source: dir });
  }
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (IMAGE_EXT.test(e.name)) out.push(r);
    }
  };
  walk('');
  return out;
}

/**
 * A photo path relative to the faces folder in one spelling: `/` separators, `.` and `..` segments and
 * doubled slashes resolved, no leading `./` (`./A/x.jpg`, `B/../A/x.jpg` and `A//x.jpg` are `A/x.jpg`).
 * A path that leaves the folder keeps its leading `..` (readImageList refuses it).
 */
export function normalizeRelPath(rel: string): string {
  const p = path.posix.normalize(rel.replace(/\\/g, '/'));
  return p.startsWith('./') ? p.slice(2) : p === '.' ? '' : p;
}

/**
 * The identity of a photo path relative to the faces folder: its first folder when the set is laid out
 * one folder per person (the path is normalised first, so `./A/x.jpg` is A's). The one definition the
 * calibration split and the evaluation split (evaluate/split.ts) share.
 */
export function identityOf(rel: string): string {
  const p = normalizeRelPath(rel);
  const i = p.indexOf('/');
  return i > 0 ? p.slice(0, i) : p;
}

/** What readImageList found besides the paths: duplicate lines dropped (counted for a warning). */
export interface ImageListNotes {
  duplicates: number;
}

/**
 * Paths from a list file (one per line, relative to `facesDir`; blank lines and # comments skipped),
 * normalised (normalizeRelPath) so that identities and duplicates are judged on one spelling. An
 * absolute path inside `facesDir` is taken relative to it; one outside it, and a relative path that
 * leaves it (`../x.jpg`), is refused with FACEOPT_ERR_BAD_ARGUMENT. Repeated paths are kept once
 * (`notes.duplicates` counts the lines dropped).
 */
export function readImageList(listFile: string, facesDir: string, notes?: ImageListNotes): string[] {
  const lines = readTextListFile(listFile, '--calibration-list', 'a list of photo paths relative to --faces, one per line').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const root = path.resolve(facesDir);
  const refuse = (entry: string, why: string): never => {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: 'photo paths relative to --faces, inside it (e.g. Person_Name/Person_Name_0001.jpg)',
      name: '--calibration-list',
      received: `${JSON.stringify(entry)} in ${listFile}, ${why}`,
    });
  };
  const seen = new Set<string>();
  const out: string[] = [];
  let duplicates = 0;
  for (const line of lines) {
    let rel: string;
    if (path.isAbsolute(line) || path.posix.isAbsolute(line.replace(/\\/g, '/'))) {
      const r = path.relative(root, path.resolve(line));
      if (!r || leavesDir(r)) refuse(line, `an absolute path outside --faces ${facesDir} (paths in the list are relative to --faces)`);
      rel = normalizeRelPath(r.split(path.sep).join('/'));
    } else {
      rel = normalizeRelPath(line);
      if (!rel || rel === '..' || rel.startsWith('../')) refuse(line, `which is outside --faces ${facesDir} (paths in the list are relative to --faces)`);
    }
    if (seen.has(rel)) { duplicates++; continue; }
    seen.add(rel);
    out.push(rel);
  }
  if (notes) notes.duplicates = duplicates;
  const missing = out.filter((l) => !existsSync(path.join(facesDir, l)));
  if (missing.length) {
    // some listed photos are there: "no images found" and "pass a list" said the wrong thing
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: `photos that exist under --faces ${facesDir} (fix those lines of the list, remove them, or point --faces at the folder the list was made for)`,
      name: '--calibration-list',
      received: `${listFile}, ${missing.length} of whose ${out.length} photos are missing: ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}`,
    });
  }
  if (!out.length) throw new FaceoptError('FACEOPT_ERR_NO_CALIBRATION_DATA', { source: listFile });
  return out;
}

export interface CalibrationSplit {
  calibration: string[];
  /** Images held apart for evaluation (never used for calibration). */
  heldApart: string[];
  /** How the split was made, for the report. */
  description: string;
  /** Warnings about the list (duplicate lines dropped); absent or empty when there are none. */
  warnings?: string[];
}

/** ` (--calibration-size N asked; the list has M)` when fewer images than asked for were available. */
function fewer(size: number | undefined, got: number, where: string): string {
  return size !== undefined && got < size ? ` (--calibration-size ${size} asked; ${where} ${got})` : '';
}

/**
 * Choose calibration images. With a list: exactly the list (in order), and held-apart images are the
 * folder's images of identities not in the list. Without: identities are ordered by a hash of their
 * name (deterministic, not alphabetical, so the subset is not biased to early letters) and taken until
 * `size` images are reached; all images of the remaining identities are held apart.
 */
export function splitCalibration(facesDir: string, opts: { listFile?: string; size?: number } = {}): CalibrationSplit {
  const size = opts.size;
  if (opts.listFile) {
    const notes: ImageListNotes = { duplicates: 0 };
    const listed = readImageList(opts.listFile, facesDir, notes);
    const chosen = size ? listed.slice(0, size) : listed;
    const ids = new Set(listed.map(identityOf));
    let all: string[] = [];
    try { all = listFolderImages(facesDir); } catch { all = []; }
    const heldApart = all.filter((p) => !ids.has(identityOf(p)));
    return {
      calibration: chosen,
      heldApart,
      description: `${chosen.length} images from ${path.basename(opts.listFile)}${fewer(size, chosen.length, 'the list has')}; ${heldApart.length} images of ${new Set(heldApart.map(identityOf)).size} other identities held apart`,
      warnings: notes.duplicates ? [`${notes.duplicates} duplicate line${notes.duplicates === 1 ? '' : 's'} in ${path.basename(opts.listFile)} ${notes.duplicates === 1 ? 'was' : 'were'} dropped (each photo is calibrated on once)`] : [],
    };
  }
  const all = listFolderImages(facesDir);
  if (!all.length) throw new FaceoptError('FACEOPT_ERR_NO_CALIBRATION_DATA', { source: facesDir });
  const byId = new Map<string, string[]>();
  for (const p of all) byId.set(identityOf(p), [...(byId.get(identityOf(p)) ?? []), p]);
  const ids = [...byId.keys()].sort((a, b) => (sha256(a) < sha256(b) ? -1 : 1));
  const want = size ?? Math.min(300, Math.max(1, Math.floor(all.length / 2)));
  const calibration: string[] = [];
  const heldApart: string[] = [];
  for (const id of ids) {
    if (calibration.length < want) calibration.push(...byId.get(id)!.slice(0, want - calibration.length));
    else heldApart.push(...byId.get(id)!);
  }
  return {
    calibration,
    heldApart,
    description: `${calibration.length} images chosen by identity hash from ${facesDir}${fewer(size, calibration.length, 'the folder has')}; ${heldApart.length} images of other identities held apart`,
  };
}

export interface RecognizerSourceOptions {
  facesDir: string;
  images: readonly string[];
  detector: string;
  profile: RecognizerProfile;
  /** Faces per batch (default 16). */
  batch?: number;
  /**
   * Every batch exactly `batch` faces (a recognizer exported with a fixed batch): the last one is filled
   * up with its own faces again, real faces counted twice rather than made-up crops.
   */
  exact?: boolean;
  /** Called per image with (done, total, facesFound). */
  onProgress?: (done: number, total: number, faces: number) => void;
  /** Skip unreadable photos, telling this (default: throw). */
  onUnreadable?: OnUnreadable;
  /** Told each readable photo in which the detector found no face (left out of calibration). */
  onNoFace?: (image: string) => void;
}

/**
 * `N of T calibration photos had no detectable face and were left out: a.jpg, b.jpg, c.jpg and 2 more`,
 * the first three named (what evaluation says of its photos without a face).
 */
export function noFaceWarning(images: readonly string[], total: number): string {
  const n = images.length;
  const names = `${images.slice(0, 3).join(', ')}${n > 3 ? ` and ${n - 3} more` : ''}`;
  return `${n} of ${total} calibration photos had no detectable face and ${n === 1 ? 'was' : 'were'} left out: ${names}`;
}

/**
 * Collects the photos `recognizerBatches` found no face in (pass `onNoFace`), each once, and sums them
 * up as a warning.
 */
export class FacelessPhotos {
  readonly photos = new Set<string>();

  readonly onNoFace = (image: string): void => { this.photos.add(image); };

  /** noFaceWarning for what was told (out of `total` photos), or null when nothing was. */
  warning(total: number): string | null {
    return this.photos.size ? noFaceWarning([...this.photos], total) : null;
  }
}

/** Aligned face crops of the calibration images, normalised for the recognizer, in batches. */
export async function* recognizerBatches(o: RecognizerSourceOptions): AsyncGenerator<InputBatch> {
  const analyzer = await FaceAnalyzer.load({ detector: o.detector });
  const [w, h] = o.profile.inputSize;
  const batch = o.batch ?? 16;
  let buf: Float32Array[] = [];
  let found = 0;
  let unreadable = 0;
  const skip: OnUnreadable | undefined = o.onUnreadable && ((image, reason) => { unreadable++; o.onUnreadable!(image, reason); });
  const flush = function* () {
    if (!buf.length) return;
    const items = buf.length;
    if (o.exact) for (let k = 0; buf.length < batch; k++) buf.push(buf[k]!);
    const data = new Float32Array(buf.length * 3 * w * h);
    buf.forEach((b, i) => data.set(b, i * b.length));
    yield { data, dims: [buf.length, 3, h, w], ...(items < buf.length ? { items } : {}) };
    buf = [];
  };
  try {
    for (let i = 0; i < o.images.length; i++) {
      const img = await skipUnreadable(() => analyzer.decode(path.join(o.facesDir, o.images[i]!)), o.images[i]!, skip);
      const face = img ? nearestToCentre(await analyzer.detector.detect(img), img.width, img.height) : null;
      if (img && face) {
        const [crop] = analyzer.alignFaces(img, [face]);
        const c = crop!.width === w && crop!.height === h ? crop! : resizeBilinear(crop!, w, h);
        const one = new Float32Array(3 * w * h);
        writeBlob(c, w, h, o.profile.mean, o.profile.std, o.profile.channelOrder === 'BGR', one, 0);
        buf.push(one);
        found++;
      } else if (img) {
        o.onNoFace?.(o.images[i]!);
      }
      o.onProgress?.(i + 1, o.images.length, found);
      if (buf.length >= batch) yield* flush();
    }
    yield* flush();
  } finally {
    await analyzer.release();
  }
  if (!found) throw new FaceoptError('FACEOPT_ERR_NO_CALIBRATION_DATA', { source: `${o.facesDir} (no face detected in ${o.images.length} images${unreadable ? `, ${unreadable} of them unreadable` : ''})` });
}

export interface DetectorSourceOptions {
  facesDir: string;
  images: readonly string[];
  profile: DetectorProfile;
  detSize: readonly [number, number];
  /**
   * Mosaic grids cycled through frame by frame: frame i shows grids[i % n]^2 photos (i, i+1, ...,
   * wrapping around the list), each letterboxed into its cell. Default DETECTOR_MOSAIC; [1] gives one
   * photo per frame.
   */
  grids?: readonly number[];
  onProgress?: (done: number, total: number) => void;
  /** Skip unreadable photos, telling this (default: throw): a one-photo frame is left out, a mosaic cell stays black. */
  onUnreadable?: OnUnreadable;
}

/**
 * Default mosaic for detector calibration: frames of 1, 4 and 16 photos. A portrait photo letterboxed
 * alone shows the detector one large face (LFW: ~280 px of a 640 frame), so its stride-8 and stride-16
 * heads never see a confident face during calibration, and their score logits' calibrated ranges end
 * low: scrfd_500m's stride-16 logits at 0.97, so every face scored above sigmoid(0.97) = 0.725 came out
 * of the INT8 file at 0.727 (all 34 faces of the group photos; one scored 0.789 in FP32 fell to 0.500,
 * the threshold). With faces of ~280, ~140 and ~70 px the INT8 scores follow FP32 (0.858 -> 0.862).
 */
export const DETECTOR_MOSAIC: readonly number[] = [1, 2, 4];

/** Paste `img` into `canvas` (RGB rows of `cw` pixels) at (x, y). */
function paste(canvas: Uint8Array, cw: number, img: { width: number; height: number; data: Uint8Array }, x: number, y: number): void {
  for (let r = 0; r < img.height; r++) canvas.set(img.data.subarray(r * img.width * 3, (r + 1) * img.width * 3), ((y + r) * cw + x) * 3);
}

/** Letterboxed, normalised frames for a detector, one frame per photo and per batch (640x640 activations are large). */
export async function* detectorBatches(o: DetectorSourceOptions): AsyncGenerator<InputBatch> {
  const [w, h] = o.detSize;
  const grids = o.grids?.length ? o.grids : DETECTOR_MOSAIC;
  const n = o.images.length;
  // consecutive mosaic frames share most of their photos (frame i shows i .. i+g*g-1): decoded photos
  // are kept while a later frame can still show them (at most the largest grid's worth, the first ones
  // again for the last frames, which wrap around), so each photo is decoded about once instead of up to
  // g*g times (100 scrfd_500m frames: 1.98 s -> 1.17 s, one photo per frame 1.01 s)
  const wrap = Math.max(...grids.map((g) => Math.max(1, Math.floor(g)) ** 2)) - 1;
  const decoded = new Map<number, RgbImage>();
  const unreadable = new Set<number>();
  const photo = async (j: number): Promise<RgbImage | null> => {
    if (unreadable.has(j)) return null;
    let img = decoded.get(j);
    if (!img) {
      const got = await skipUnreadable(() => decodeImage(path.join(o.facesDir, o.images[j]!)), o.images[j]!, o.onUnreadable);
      if (!got) { unreadable.add(j); return null; }
      img = got;
      decoded.set(j, img);
    }
    return img;
  };
  for (let i = 0; i < n; i++) {
    for (const j of decoded.keys()) if (j < i && j >= i + wrap - n) decoded.delete(j);
    const g = Math.max(1, Math.floor(grids[i % grids.length]!));
    const data = new Float32Array(3 * w * h);
    if (g === 1) {
      const img = await photo(i);
      if (!img) { o.onProgress?.(i + 1, n); continue; }
      const lb = letterbox(img, w, h);
      writeBlob(lb.resized, w, h, o.profile.mean, o.profile.std, o.profile.channelOrder === 'BGR', data, 0);
    } else {
      const cw = Math.floor(w / g);
      const ch = Math.floor(h / g);
      const canvas = new Uint8Array(w * h * 3);
      for (let k = 0; k < g * g; k++) {
        const img = await photo((i + k) % n);
        if (img) paste(canvas, w, letterbox(img, cw, ch).resized, (k % g) * cw, Math.floor(k / g) * ch);
      }
      writeBlob({ width: w, height: h, data: canvas }, w, h, o.profile.mean, o.profile.std, o.profile.channelOrder === 'BGR', data, 0);
    }
    o.onProgress?.(i + 1, n);
    yield { data, dims: [1, 3, h, w] };
  }
  if (n > 0 && unreadable.size === n) throw new FaceoptError('FACEOPT_ERR_NO_CALIBRATION_DATA', { source: `${o.facesDir} (none of the ${n} images could be read)` });
}

/** Below this many calibration photos optimize warns (and the report says so). */
export const FEW_CALIBRATION_PHOTOS = 20;

/** The warning for a calibration set of `n` photos, or null when there are enough. */
export function fewCalibrationPhotos(n: number): string | null {
  return n < FEW_CALIBRATION_PHOTOS
    ? `calibration on ${n} photo(s): ranges from so few rarely cover what the model sees in use; 100-300 are usual (--calibration-size, --calibration-list)`
    : null;
}
