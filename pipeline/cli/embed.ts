/**
 * `faceopt embed IMAGE... [--detector MODEL] [--recognizer MODEL]`: every face in each photo with its
 * L2-normalised embedding and the raw embedding norm, as JSON.
 */
import type { Command } from 'commander';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { analyzerOptions, round, toJson, type FaceCliOptions } from '../faces/options.js';
import { addFaceOptions, faceJson } from './detect.js';

/** Register `faceopt embed` on the program (called from the command registry). */
export function register(program: Command): void {
  addFaceOptions(
    program
      .command('embed')
      .description('Detect, align and embed every face in photos; prints JSON with unit-length embeddings')
      .argument('<images...>', 'JPEG, PNG or WebP photos'),
    true,
  ).action(async (images: string[], opts: FaceCliOptions) => {
    const analyzer = await FaceAnalyzer.load(analyzerOptions(opts, true));
    try {
      const results = [];
      for (const image of images) {
        const img = await analyzer.decode(image, image);
        const faces = await analyzer.extract(img);
        results.push({
          image,
          width: img.width,
          height: img.height,
          faces: faces.map((f) => ({ ...faceJson(f), norm: round(f.norm, 4), embedding: Array.from(f.embedding, (v) => round(v, 6)) })),
        });
      }
      const d = analyzer.describe();
      process.stdout.write(`${toJson({ detector: d.detector.path, recognizer: d.recognizer?.path, images: results })}\n`);
    } finally {
      await analyzer.release();
    }
  });
}
