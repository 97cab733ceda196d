/**
 * `faceopt compare A B [--threshold T]`: are the main faces of two photos the same person? Takes the
 * largest, most central face of each photo, prints the cosine similarity of their embeddings and the
 * same/different verdict at the match threshold, as JSON. The threshold follows /v1/verify's rule
 * (--threshold, the promoted recognizer's report when the recognizer is that file, 0.3) and the JSON
 * says which (thresholdSource). With --manifest, the roles no flag names are the manifest's promoted
 * files, checked and sized as `faceopt serve --manifest` takes them, so the two decide alike.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { checkNumber, FaceoptError } from '../errors.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { cosineSimilarity } from '../faces/arcface.js';
import { analyzerOptions, round, toJson, type FaceCliOptions } from '../faces/options.js';
import { addFaceOptions, faceJson } from './detect.js';
import { promotedMatchThreshold, selectModels } from '../../server/models.js';
import { DETECTOR_ENV, RECOGNIZER_ENV } from '../faces/models.js';
import { readManifest } from '../../server/manifest.js';

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
    .option('--manifest <file>', 'decide as `faceopt serve --manifest FILE`: its promoted detector and recognizer (where --detector/--recognizer do not name others), the detector size its report evaluated, the promoted recognizer\'s threshold (without --manifest: models/manifest.json, or under FACEOPT_MODELS, sets only the threshold)')
    .action(async (a: string, b: string, opts: Omit<FaceCliOptions, 'threshold'> & { threshold?: string; detThreshold?: string; manifest?: string }) => {
      const flag = opts.threshold !== undefined ? checkNumber('--threshold', opts.threshold, { min: -1, max: 1 }) : null;
      const manifest = opts.manifest ? path.resolve(opts.manifest) : undefined;
      const served = manifest ? await fromManifest(manifest, opts) : null;
      const options = analyzerOptions({ ...opts, ...served?.flags, threshold: opts.detThreshold, thresholdFlag: '--det-threshold' }, true);
      // the rule /v1/verify follows, so the two decide alike: the flag, the promoted recognizer's report, 0.3
      // a recognizer selectModels took from the manifest carries its threshold (hashing it again cost a pass over the file)
      const promoted = flag !== null ? null
        : served?.promotedThreshold !== undefined ? served.promotedThreshold
          : options.recognizer ? await promotedMatchThreshold(options.recognizer, manifest, (w) => process.stderr.write(`warning: ${w}\n`)) : null;
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
          ...(served ? { models: served.models } : {}),
        })}\n`);
      } finally {
        await analyzer.release();
      }
    });
}

/**
 * The detector, recognizer and detector size `faceopt serve --manifest FILE` would take with these flags
 * (selectModels itself: promoted files re-hashed, a missing or changed one refused with its code), as
 * flags for analyzerOptions. A promoted variant that failed its gates is compared with a warning: serve
 * refuses it without --allow-failed.
 */
async function fromManifest(manifest: string, opts: { detector?: string; model?: string; recognizer?: string; detSize?: string | number }): Promise<{ flags: { detector: string; recognizer: string; detSize?: number }; promotedThreshold?: number | null; models: Record<'detector' | 'recognizer', { path: string; source: string; variant: string }> & { detSize: number | null } }> {
  const detSize = opts.detSize !== undefined ? checkNumber('--det-size', opts.detSize, { min: 32, max: 4096, integer: true }) : null;
  // a manifest named on the command line must be usable even where flags name both models (it was read
  // only for the threshold then, and a missing or broken one gave a warning and the default)
  readManifest(manifest);
  const picked = await selectModels({ detector: opts.detector ?? opts.model ?? null, recognizer: opts.recognizer ?? null, manifest, allowFailed: true, detSize, matchThreshold: null });
  for (const m of [picked.detector, picked.recognizer]) {
    if (m.verdict && !m.verdict.pass) process.stderr.write(`warning: the promoted ${m.role} ${m.variant} failed its gates (${m.verdict.reasons[0] ?? 'no reason recorded'}): serve refuses it without --allow-failed\n`);
    if (m.reportNote) process.stderr.write(`warning: ${m.role}: ${m.reportNote}\n`);
  }
  const given = { detector: opts.detector ?? opts.model, recognizer: opts.recognizer };
  const described = (m: typeof picked.detector) => ({
    path: m.path, variant: m.variant,
    source: m.source === 'manifest' ? manifest : given[m.role] !== undefined ? `--${m.role}` : m.role === 'detector' ? DETECTOR_ENV : RECOGNIZER_ENV,
  });
  return {
    flags: { detector: picked.detector.path, recognizer: picked.recognizer.path, ...(detSize === null && picked.detSize !== null ? { detSize: picked.detSize } : {}) },
    ...(picked.recognizer.source === 'manifest' ? { promotedThreshold: picked.recognizer.reportMatchThreshold } : {}),
    // detSize: the size given or the one the detector's report evaluated; null: the detector's own default
    models: { detector: described(picked.detector), recognizer: described(picked.recognizer), detSize: detSize ?? picked.detSize },
  };
}
