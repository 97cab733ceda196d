/**
 * Which photos an evaluation may use: evaluation faces are never calibration faces. Shared by
 * `faceopt evaluate`, `optimize --int8` and `optimize --tensorrt`, so every report describes its split
 * the same way. The calibration side is the split the optimizer used (`splitCalibration`: a list file,
 * or identities chosen by name hash); the evaluation side is everything of the other identities, and a
 * pairs file is filtered to pairs whose two photos both belong to held-apart identities.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { fewCalibrationPhotos, identityOf, splitCalibration, type CalibrationSplit } from '../calibrate/sources.js';
import type { EvaluationData } from '../report/types.js';
import { keepPairs, type PairList } from './data.js';

/** Every k-th item so a capped evaluation still covers the whole list (all items when under `max`). */
export function spread<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  const step = items.length / max;
  return Array.from({ length: max }, (_, i) => items[Math.floor(i * step)]!);
}

/**
 * The identity of a photo path relative to the faces folder: its first folder (one folder per person),
 * after normalising `./`, `..` and `\\`. One function with the calibration split's (calibrate/sources.ts),
 * so a list written `./A/x.jpg` and a pairs file written `A/x.jpg` agree that the photo is A's.
 */
export { identityOf };

/** Number of distinct identities among photo paths. */
export function countIdentities(images: readonly string[]): number {
  return new Set(images.map(identityOf)).size;
}

export interface EvaluationSetInput {
  /** Faces folder; without it nothing can be split (evaluation photos are given explicitly). */
  facesDir?: string;
  /** The calibration list the variant was calibrated on (paths relative to facesDir). */
  calibrationList?: string;
  /** Calibration size used without a list (splitCalibration's `size`). */
  calibrationSize?: number;
  /** The split the optimizer used, when known (skips recomputing it). */
  split?: CalibrationSplit | null;
  pairs?: PairList | null;
  /** Most held-apart photos to evaluate on when there are no pairs (every k-th is taken). */
  maxImages: number;
  /** What the explicit photos are, for the description when there is no faces folder. */
  explicitSources?: string;
  /** Photos given explicitly (absolute paths): never counted again among the held-apart photos. */
  explicitFiles?: readonly string[];
}

export interface EvaluationSet {
  /** Held-apart photos (relative to facesDir) for per-face cosine / detections when there are no pairs. */
  evalImages: string[];
  /**
   * The pairs file with every pair touching a calibration identity removed (its `source` keeps the whole
   * file, so verification folds stay the file's); null without pairs.
   */
  pairs: PairList | null;
  /** Pairs removed because a photo belongs to a calibration identity. */
  droppedPairs: number;
  /** The calibration photos (relative to facesDir) that were kept out. */
  calibration: string[];
  split: EvaluationData['split'];
  warnings: string[];
}

/**
 * Split evaluation photos from calibration photos and describe the split for the report. With a list,
 * its identities are excluded; with only a faces folder, the held-apart split `optimize` uses by default
 * (same `size`); without a folder, the explicit photos are the evaluation set. Throws
 * FACEOPT_ERR_BAD_ARGUMENT when every pair touches a calibration identity.
 */
export function evaluationSet(o: EvaluationSetInput): EvaluationSet {
  if (!o.facesDir) {
    return {
      evalImages: [], pairs: o.pairs ? { ...o.pairs, pairs: [...o.pairs.pairs] } : null, droppedPairs: 0, calibration: [], warnings: [],
      split: {
        method: 'separate-sources',
        description: `evaluation on ${o.explicitSources ?? 'the photos given on the command line'}; no faces folder was named, so no calibration photos were in play`,
        calibrationImages: 0, evaluationImages: 0, calibrationIdentities: null, evaluationIdentities: null, sharedIdentities: null,
      },
    };
  }
  const s = o.split ?? splitCalibration(o.facesDir, { listFile: o.calibrationList, size: o.calibrationSize });
  const calIds = new Set(s.calibration.map(identityOf));
  // a split made here warns here; one passed in was warned about where it was made (checkedCalibrationSplit)
  const warnings: string[] = o.split ? [] : [...(s.warnings ?? [])];
  let pairs: EvaluationSet['pairs'] = null;
  let dropped = 0;
  if (o.pairs) {
    const kept = keepPairs(o.pairs, (p) => !calIds.has(identityOf(p.left)) && !calIds.has(identityOf(p.right)), 'touching calibration identities');
    dropped = o.pairs.pairs.length - kept.pairs.length;
    if (!kept.pairs.length) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
        expected: 'pairs of people not used for calibration (pass the --calibration-list the variant was calibrated on, or a pairs file of other identities)',
        name: '--pairs', received: `all ${o.pairs.pairs.length} pairs involve calibration identities`,
      });
    }
    if (dropped) warnings.push(`${dropped} of ${o.pairs.pairs.length} pairs in ${path.basename(o.pairs.file)} involve calibration identities and were left out`);
    pairs = kept;
  }
  const given = new Set((o.explicitFiles ?? []).map((f) => path.resolve(f)));
  const facesDir = o.facesDir;
  const heldApart = given.size ? s.heldApart.filter((rel) => !given.has(path.resolve(facesDir, rel))) : s.heldApart;
  const evalImages = spread(heldApart, o.maxImages);
  const evaluated = pairs ? [...new Set(pairs.pairs.flatMap((p) => [p.left, p.right]))] : evalImages;
  const shared = new Set(evaluated.map(identityOf).filter((id) => calIds.has(id))).size;
  const how = o.calibrationList ? `identities of ${path.basename(o.calibrationList)} excluded` : 'held-apart split by identity hash, as optimize makes it';
  const what = pairs
    ? `evaluation on ${pairs.pairs.length} pairs of ${path.basename(pairs.file)}${dropped ? ` (${dropped} touching calibration identities left out)` : ''}`
    : `evaluation on ${evalImages.length} of ${heldApart.length} held-apart photos${evalImages.length < heldApart.length ? ' (evenly spread)' : ''}${heldApart.length < s.heldApart.length ? ` (${s.heldApart.length - heldApart.length} more are among the photos given explicitly)` : ''}`;
  return {
    evalImages, pairs, droppedPairs: dropped, calibration: s.calibration, warnings,
    split: {
      method: o.calibrationList ? 'list' : 'by-identity',
      description: `${s.description}; ${how}; ${what}`,
      calibrationImages: s.calibration.length,
      evaluationImages: evaluated.length,
      calibrationIdentities: calIds.size,
      evaluationIdentities: countIdentities(evaluated),
      sharedIdentities: shared,
    },
  };
}

/**
 * Photos given by absolute path (annotated group photos, face-free photos) that are calibration photos
 * too: returns the paths to keep and those left out, so explicit evaluation photos obey the same rule.
 */
export function withoutCalibrationFiles(files: readonly string[], facesDir: string | undefined, calibration: readonly string[]): { kept: string[]; removed: string[] } {
  if (!facesDir || !calibration.length) return { kept: [...files], removed: [] };
  const cal = new Set(calibration.map((c) => path.resolve(facesDir, c)));
  const kept: string[] = [];
  const removed: string[] = [];
  for (const f of files) (cal.has(path.resolve(f)) ? removed : kept).push(f);
  return { kept, removed };
}

/**
 * The evaluation set with the photos given on the command line (a detector's annotated and face-free
 * photos), one rule for `faceopt evaluate` and `optimize --int8`: a held-apart photo also given explicitly
 * is compared once, as the given one; given photos that are calibration photos are left out (a warning);
 * the split's description and image count include them. Recognizers take no explicit photos.
 */
export function evaluationSetWith<A extends { file: string }>(o: EvaluationSetInput & { role: 'recognizer' | 'detector' | 'generic'; boxFiles: readonly string[]; annotated: readonly A[]; faceFree: readonly string[] }): { set: EvaluationSet; annotated: A[]; faceFree: string[]; warnings: string[] } {
  const detector = o.role === 'detector';
  const describe = (annotated: number, faceFree: number) => [
    o.boxFiles.length ? `${annotated} annotated photos of ${o.boxFiles.map((f) => path.basename(f)).join(', ')}` : '',
    o.faceFree.length ? `${faceFree} face-free photo(s)` : '',
  ].filter(Boolean).join(' and ');
  const given = describe(o.annotated.length, o.faceFree.length);
  const set = evaluationSet({
    ...o,
    explicitSources: given || undefined, // without a faces folder nothing is left out
    explicitFiles: detector ? [...o.annotated.map((a) => a.file), ...o.faceFree] : [],
  });
  const warnings = [...set.warnings];
  const ann = withoutCalibrationFiles(o.annotated.map((a) => a.file), o.facesDir, set.calibration);
  const annotated = o.annotated.filter((a) => ann.kept.includes(a.file));
  const ff = withoutCalibrationFiles(o.faceFree.map((f) => path.resolve(f)), o.facesDir, set.calibration);
  const removed = ann.removed.length + ff.removed.length;
  if (removed) warnings.push(`${removed} explicitly given photo(s) are calibration photos and were left out`);
  if (detector) {
    // the photos compared, after those that are calibration photos left out (it counted them as given)
    const kept = describe(annotated.length, ff.kept.length);
    if (given && o.facesDir) set.split.description += `; plus ${kept}${removed ? ` (${removed} given photo(s) left out as calibration photos)` : ''}`;
    set.split.evaluationImages = set.evalImages.length + annotated.length + ff.kept.length;
  }
  return { set, annotated, faceFree: ff.kept, warnings };
}

/**
 * The error for an evaluation with nothing to compare: no pairs and no held-apart photo (and, for a
 * detector, no annotated or face-free photo either), e.g. a folder whose every photo went into
 * calibration. Null when there is something. Checked before calibration, so the run stops in seconds.
 */
export function noEvaluationPhotos(o: { facesDir: string; heldApart: number; calibration: number; pairs: boolean; explicit: number }): FaceoptError | null {
  if (o.pairs || o.heldApart > 0 || o.explicit > 0) return null;
  return new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
    expected: 'photos held apart for the evaluation (a --faces folder with more people than calibration takes, a --pairs file, or --no-evaluate)',
    name: '--faces',
    received: `${o.facesDir}, whose ${o.calibration} photo(s) all go into calibration`,
  });
}

/**
 * The calibration split `optimize --int8` and `--tensorrt` make from `--faces`, checked before any long
 * work: `warn` gets the warning for fewer than 20 calibration photos first (none when a `--stats` file is
 * reused), then an evaluation with nothing to compare fails (noEvaluationPhotos). `evaluate`: whether an
 * evaluation follows; `pairs`/`explicit`: what it has besides held-apart photos (a pairs file; annotated
 * and face-free photos of a detector).
 */
export function checkedCalibrationSplit(o: { facesDir?: string; calibrationList?: string; calibrationSize?: number; statsFile?: string; evaluate: boolean; pairs: boolean; explicit: number; warn: (warning: string) => void }): CalibrationSplit | null {
  if (!o.facesDir) return null;
  const split = splitCalibration(o.facesDir, { listFile: o.calibrationList, size: o.calibrationSize });
  for (const w of split.warnings ?? []) o.warn(w);
  const few = o.statsFile && existsSync(o.statsFile) ? null : fewCalibrationPhotos(split.calibration.length);
  if (few) o.warn(few);
  if (o.evaluate) {
    const none = noEvaluationPhotos({ facesDir: o.facesDir, heldApart: split.heldApart.length, calibration: split.calibration.length, pairs: o.pairs, explicit: o.explicit });
    if (none) throw none;
  }
  return split;
}
