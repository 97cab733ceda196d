/**
 * Which detector aligns faces for a recognizer when none is named: InsightFace packs keep the detector
 * next to the recognizer (det_10g.onnx beside w600k_r50.onnx), so look in the recognizer's folder for a
 * graph recognised as a SCRFD detector with keypoints, preferring the larger, more accurate ones.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { loadModel } from '../onnx/model.js';
import { summarizeModel } from '../faces/graph-summary.js';
import { guessRole } from '../faces/profile.js';

const PREFERENCE = [/det_10g/i, /scrfd_10g/i, /det_2\.5g/i, /scrfd_2\.5g/i, /det_500m/i, /scrfd_500m/i, /scrfd|det/i];

/** A detector file next to `recognizer`, or undefined. */
export function findDetectorFor(recognizer: string): string | undefined {
  const dir = path.dirname(path.resolve(recognizer));
  let files: string[];
  try { files = readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort(); } catch { return undefined; }
  const ranked = files
    .map((f) => ({ f, rank: PREFERENCE.findIndex((re) => re.test(f)) }))
    .filter((x) => x.rank >= 0 && !/\.int8\.|\.fp16\.|\.trt/.test(x.f))
    .sort((a, b) => a.rank - b.rank || a.f.localeCompare(b.f));
  for (const { f } of ranked) {
    try {
      const gs = summarizeModel(loadModel(path.join(dir, f)).proto);
      if (guessRole(gs) === "detector" && (gs.outputs.length === 9 || gs.outputs.length === 15)) return path.join(dir, f);
    } catch { /* not a readable model: try the next */ }
  }
  return undefined;
}
