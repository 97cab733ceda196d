/**
 * `faceopt detect IMAGE... [--detector MODEL] [--det-size N] [--threshold T] [--draw OUT]`: faces in
 * photos as JSON (box, score, five keypoints), optionally drawn onto a copy of each photo. Also exports
 * the model/detection flags that `embed` and `compare` share.
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError, isFaceoptError, type ErrorCode } from '../errors.js';
import { reportError } from './run.js';
import { checkWritableDir } from '../fsutil.js';
import { Option, type Command } from 'commander';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { drawFaces } from '../faces/draw.js';
import { analyzerOptions, round, toJson, type FaceCliOptions } from '../faces/options.js';
import type { DetectedFace } from '../faces/types.js';

/**
 * Add the detector, runtime and detection flags shared by detect, embed and compare. The detection
 * score threshold is --threshold, except in compare where --threshold is the match threshold and the
 * detection one is --det-threshold (`detThresholdFlag`).
 */
export function addFaceOptions(cmd: Command, withRecognizer: boolean, detThresholdFlag: '--threshold' | '--det-threshold' = '--threshold', opts: { maxFaces?: boolean } = {}): Command {
  cmd
    .option('--detector <model>', 'SCRFD detector: path or PACK/FILE (default: $FACEOPT_DETECTOR)')
    .addOption(new Option('--model <model>', 'same as --detector').hideHelp())
    .option('--det-size <n>', 'detector input size NxN, a multiple of 32 (default 640; a fixed-size detector takes only its own)')
    .option(`${detThresholdFlag} <t>`, 'detection score threshold (default 0.5)')
    .option('--nms <t>', 'NMS IoU threshold (default 0.4)');
  if (opts.maxFaces !== false) cmd.option('--max-faces <n>', 'keep at most N faces, largest and most central first (default 0: all)');
  cmd
    .option('--min-face-size <px>', 'drop faces smaller than this (default 0)')
    .option('--provider <name>', 'execution provider: cpu, cuda or tensorrt (default cpu)')
    .option('--threads <n>', 'threads per operator (default: all cores)')
    .option('--max-pixels <n>', 'refuse photos larger than this many pixels (default 40000000)');
  if (withRecognizer) cmd.option('--recognizer <model>', 'ArcFace recognizer: path or PACK/FILE (default: $FACEOPT_RECOGNIZER)');
  return cmd;
}

/** A detected face as JSON-friendly numbers. */
export function faceJson(f: DetectedFace): { box: number[]; score: number; kps: number[][] | null } {
  return {
    box: f.box.map((v) => round(v, 2)),
    score: round(f.score, 4),
    kps: f.kps ? f.kps.map((p) => p.map((v) => round(v, 2))) : null,
  };
}

/** File types `--draw` writes for one photo (drawFaces: PNG for .png, JPEG otherwise). */
const DRAW_TYPES = ['.jpg', '.jpeg', '.png'];

/**
 * Where the drawing of each photo goes, decided before any model loads: the --draw file itself for one
 * photo (a .jpg/.jpeg/.png name), else `<name>.faces.jpg` in the --draw folder, which is made (and for an
 * existing folder, one photo goes there too). Photos that share a name get `-2`, `-3`... in the order
 * given, so none overwrites another. A name of another type for one photo, or an image file name for
 * several, is a usage error.
 */
export function drawTargets(draw: string, images: readonly string[]): string[] {
  let isDir = false;
  try {
    isDir = statSync(draw).isDirectory();
  } catch {
    // not there yet: made below (folder) or written at the end (file)
  }
  // a name ending in '/' is a folder, there or not
  if (draw.endsWith('/') || draw.endsWith(path.sep)) isDir = true;
  const ext = path.extname(draw).toLowerCase();
  if (!isDir && images.length === 1) {
    if (!DRAW_TYPES.includes(ext)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a .jpg, .jpeg or .png file name, or an existing folder', name: '--draw', received: draw });
    refuseInputs([draw], images);
    checkWritableDir(path.dirname(path.resolve(draw)));
    return [draw];
  }
  if (!isDir && [...DRAW_TYPES, '.webp'].includes(ext)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `a folder with ${images.length} photos (one drawing each)`, name: '--draw', received: `${draw} (an image file name)` });
  }
  const seen = new Map<string, number>();
  const targets = images.map((image) => {
    const name = path.parse(image).name;
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return path.join(draw, `${name}${n > 1 ? `-${n}` : ''}.faces.jpg`);
  });
  refuseInputs(targets, images);
  checkWritableDir(draw); // made with the first drawing: a run that fails before leaves no empty folder
  return targets;
}

/** A drawing never replaces a photo the command reads (it is written by rename, so not even a read-only one is safe). */
function refuseInputs(targets: readonly string[], images: readonly string[]): void {
  const real = (p: string) => { try { return realpathSync(p); } catch { return path.resolve(p); } };
  const inputs = new Set(images.map(real));
  const hit = targets.find((t) => inputs.has(real(t)));
  if (hit) throw new FaceoptError('FACEOPT_ERR_OVERWRITE_SOURCE', { what: 'photo ', path: hit });
}

/** Errors that belong to one photo of several: the others are still processed. */
const PHOTO_ERRORS: ReadonlySet<ErrorCode> = new Set(['FACEOPT_ERR_FILE_NOT_FOUND', 'FACEOPT_ERR_BAD_IMAGE', 'FACEOPT_ERR_IMAGE_TOO_LARGE']);

/**
 * Run `work` for each photo. A photo that cannot be read gets its error line on stderr and an
 * `{ image, error }` entry in place of its result; the others go on (one corrupt file in a folder of a
 * thousand used to end the command with nothing printed). The command then exits with the first such
 * error's code (process.exitCode), after printing everything it has.
 */
export async function eachPhoto<T>(images: readonly string[], work: (image: string, index: number) => Promise<T>): Promise<(T | { image: string; error: { code: string; message: string } })[]> {
  const results: (T | { image: string; error: { code: string; message: string } })[] = [];
  for (const [i, image] of images.entries()) {
    try {
      results.push(await work(image, i));
    } catch (e) {
      if (!isFaceoptError(e) || !PHOTO_ERRORS.has(e.code)) throw e;
      const exit = reportError(e);
      if (typeof process.exitCode !== 'number' || process.exitCode === 0) process.exitCode = exit;
      results.push({ image, error: { code: e.code, message: e.message } });
    }
  }
  return results;
}

/** Register `faceopt detect` on the program (called from the command registry). */
export function register(program: Command): void {
  addFaceOptions(
    program
      .command('detect')
      .description('Detect faces (box, score, 5 keypoints) in photos; prints JSON')
      .argument('<images...>', 'JPEG, PNG or WebP photos'),
    false,
  )
    .option('--draw <out>', 'write the photo with faces drawn (one photo: a .jpg/.png file or a folder; several: a folder, NAME.faces.jpg each)')
    .action(async (images: string[], opts: FaceCliOptions & { draw?: string }) => {
      const options = analyzerOptions(opts, false);
      const drawn = opts.draw ? drawTargets(opts.draw, images) : null;
      const analyzer = await FaceAnalyzer.load(options);
      try {
        const results = await eachPhoto(images, async (image, i) => {
          const img = await analyzer.decode(image, image);
          const faces = await analyzer.detect(img);
          if (drawn) await drawFaces(img, faces, drawn[i]!);
          return { image, width: img.width, height: img.height, faces: faces.map(faceJson) };
        });
        const d = analyzer.describe().detector;
        process.stdout.write(`${toJson({ detector: d.path, detSize: d.detSize, images: results })}\n`);
      } finally {
        await analyzer.release();
      }
    });
}
