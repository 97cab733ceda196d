/**
 * `faceopt detect IMAGE... [--detector MODEL] [--det-size N] [--threshold T] [--draw OUT]`: faces in
 * photos as JSON (box, score, five keypoints), optionally drawn onto a copy of each photo. Also exports
 * the model/detection flags that `embed` and `compare` share.
 */
import { ensureDir } from '../fsutil.js';
import path from 'node:path';
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
export function addFaceOptions(cmd: Command, withRecognizer: boolean, detThresholdFlag: '--threshold' | '--det-threshold' = '--threshold'): Command {
  cmd
    .option('--detector <model>', 'SCRFD detector: path or PACK/FILE (default: $FACEOPT_DETECTOR)')
    .addOption(new Option('--model <model>', 'same as --detector').hideHelp())
    .option('--det-size <n>', 'detector input size NxN (default 640; fixed-size models use their own)')
    .option(`${detThresholdFlag} <t>`, 'detection score threshold (default 0.5)')
    .option('--nms <t>', 'NMS IoU threshold (default 0.4)')
    .option('--max-faces <n>', 'keep at most N faces, largest and most central first (default: all)')
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

/** Where the drawing of `image` goes: the --draw file itself for one photo, else a file in the --draw folder. */
function drawTarget(draw: string, image: string, many: boolean): string {
  if (!many) return draw;
  ensureDir(draw);
  return path.join(draw, `${path.parse(image).name}.faces.jpg`);
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
    .option('--draw <out>', 'write the photo with faces drawn (one photo: a .jpg/.png file; several: a folder)')
    .action(async (images: string[], opts: FaceCliOptions & { draw?: string }) => {
      const options = analyzerOptions(opts, false);
      const analyzer = await FaceAnalyzer.load(options);
      try {
        const results = [];
        for (const image of images) {
          const img = await analyzer.decode(image, image);
          const faces = await analyzer.detect(img);
          if (opts.draw) await drawFaces(img, faces, drawTarget(opts.draw, image, images.length > 1));
          results.push({ image, width: img.width, height: img.height, faces: faces.map(faceJson) });
        }
        const d = analyzer.describe().detector;
        process.stdout.write(`${toJson({ detector: d.path, detSize: d.detSize, images: results })}\n`);
      } finally {
        await analyzer.release();
      }
    });
}
