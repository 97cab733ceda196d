/**
 * `faceopt compare A B [--threshold T]`: are the main faces of two photos the same person? Takes the
 * largest, most central face of each photo, prints the cosine similarity of their embeddings and the
 * same/different verdict at the match threshold, as JSON. The threshold follows /v1/verify's rule
 * (--threshold, the promoted recognizer's report when the recognizer is that file, 0.3) and the JSON
 * says which (thresholdSource).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { checkNumber, FaceoptError } from '../errors.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { cosineSimilarity } from '../faces/arcface.js';
import { analyzerOptions, round, toJson, type FaceCliOptions } from '../faces/options.js';
import { addFaceOptions, faceJson } from './detect.js';
import { promotedMatchThreshold } from '../../server/models.js';

import { DEFAULT_MATCH_THRESHOLD } from '../faces/similarity.js';
export { DEFAULT_MATCH_THRESHOLD };

/** Register `faceopt compare` on the program (called from the command registry). */
export function register(program: Command): void {
  addFaceOptions(
    program
      .command('compare')
      .description('Compare the main face of two photos: cosine similarity and same/different; prints JSON')
      .argument('<a>', 'first photo')
      .argument('<b>', 'second photo'),
    true,
    '--det-threshold',
    { maxFaces: false }, // the main face of each photo
  )
    .option('--threshold <t>', `cosine above which the faces are the same person (default: as \`faceopt serve\` serving the manifest decides /v1/verify: the promoted recognizer's report threshold when --recognizer is that file, else ${DEFAULT_MATCH_THRESHOLD})`)
    .option('--manifest <file>', 'the serving manifest whose promoted recognizer sets the default threshold (default: models/manifest.json, or under FACEOPT_MODELS)')
    .action(async (a: string, b: string, opts: Omit<FaceCliOptions, 'threshold'> & { threshold?: string; detThreshold?: string; manifest?: string }) => {
      const flag = opts.threshold !== undefined ? checkNumber('--threshold', opts.threshold, { min: -1, max: 1 }) : null;
      const options = analyzerOptions({ ...opts, threshold: opts.detThreshold, thresholdFlag: '--det-threshold' }, true);
      // the rule /v1/verify follows, so the two decide alike: the flag, the promoted recognizer's report, 0.3
      const promoted = flag === null && options.recognizer
        ? await promotedMatchThreshold(options.recognizer, opts.manifest ? path.resolve(opts.manifest) : undefined, (w) => process.stderr.write(`warning: ${w}\n`))
        : null;
      const matchThreshold = flag ?? promoted ?? DEFAULT_MATCH_THRESHOLD;
      const thresholdSource = flag !== null ? 'flag' : promoted !== null ? 'report' : 'default';
      const analyzer = await FaceAnalyzer.load(options);
      try {
        const faces = [];
        for (const image of [a, b]) {
          const found = await analyzer.extract(image, { maxFaces: 1 });
          if (found.length === 0) {
            throw new FaceoptError('FACEOPT_ERR_NO_FACE', { source: image, threshold: options.detect?.threshold ?? 0.5, ...(options.detect?.minFaceSize ? { minSize: `, faces under ${options.detect.minFaceSize} px dropped by --min-face-size` } : {}) });
          }
          faces.push(found[0]);
        }
        const cosine = cosineSimilarity(faces[0].embedding, faces[1].embedding);
        process.stdout.write(`${toJson({
          a: { image: a, ...faceJson(faces[0]) },
          b: { image: b, ...faceJson(faces[1]) },
          cosine: round(cosine, 6),
          threshold: matchThreshold,
          thresholdSource,
          same: cosine > matchThreshold, // strictly above, as the report's evaluation and /v1/verify count a match
        })}\n`);
      } finally {
        await analyzer.release();
      }
    });
}
