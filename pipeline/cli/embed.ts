/**
 * `faceopt embed IMAGE... [--detector MODEL] [--recognizer MODEL]`: every face in each photo with its
 * L2-normalised embedding and the raw embedding norm, as JSON. With `--aligned` each image is already an
 * aligned face crop (as the server's `embed_only`): no detector, the crop resized to the recognizer's
 * input, one face per image whose box is the whole image.
 */
import type { Command } from 'commander';
import { FaceoptError } from '../errors.js';
import { ArcFaceRecognizer } from '../faces/arcface.js';
import { FaceAnalyzer } from '../faces/analyzer.js';
import { decodeImage } from '../faces/decode.js';
import { modelFromArgOrEnv } from '../faces/models.js';
import { analyzerOptions, decodeOptions, round, sessionOptions, toJson, type FaceCliOptions } from '../faces/options.js';
import { addFaceOptions, eachPhoto, faceJson } from './detect.js';

/** Photos no larger than this on both sides in which nothing is found get a hint about `--aligned`. */
const SMALL_PHOTO = 256;

const embeddingJson = (unit: Float32Array, norm: number) => ({ norm: round(norm, 4), embedding: Array.from(unit, (v) => round(v, 6)) });

/** `--aligned`: each image is a face crop; only the recognizer runs. */
async function embedAligned(images: string[], opts: FaceCliOptions): Promise<void> {
  // no detector runs: its settings would be ignored without a word
  const detectorFlags: [keyof FaceCliOptions, string][] = [['detector', '--detector'], ['model', '--model'], ['detSize', '--det-size'], ['threshold', '--threshold'], ['nms', '--nms'], ['maxFaces', '--max-faces'], ['minFaceSize', '--min-face-size']];
  const given = detectorFlags.filter(([k]) => opts[k] !== undefined).map(([, flag]) => flag);
  if (given.length) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'no detector settings (no detector runs)', name: '--aligned', received: given.join(', ') });
  const recognizer = await ArcFaceRecognizer.load(modelFromArgOrEnv(opts.recognizer, 'recognizer', '--recognizer'), { session: sessionOptions(opts) });
  try {
    const decode = decodeOptions(opts);
    const results = await eachPhoto(images, async (image) => {
      const img = await decodeImage(image, { ...decode, source: image });
      const { embeddings, norms } = await recognizer.embed([img]);
      return { image, width: img.width, height: img.height, faces: [{ box: [0, 0, img.width, img.height], score: null, kps: null, ...embeddingJson(embeddings[0]!, norms[0]!) }] };
    });
    const [w, h] = recognizer.inputSize;
    process.stdout.write(`${toJson({ detector: null, recognizer: recognizer.path, aligned: `each image is one aligned face, resized to ${w}x${h}`, images: results })}\n`);
  } finally {
    await recognizer.release();
  }
}

/** Register `faceopt embed` on the program (called from the command registry). */
export function register(program: Command): void {
  addFaceOptions(
    program
      .command('embed')
      .description('Detect, align and embed every face in photos; prints JSON with unit-length embeddings')
      .argument('<images...>', 'JPEG, PNG or WebP photos'),
    true,
  )
    .option('--aligned', 'each image is already an aligned face crop (like the server\'s embed_only): no detection, resized to the recognizer input')
    .action(async (images: string[], opts: FaceCliOptions & { aligned?: boolean }) => {
      if (opts.aligned) return embedAligned(images, opts);
      const analyzer = await FaceAnalyzer.load(analyzerOptions(opts, true));
      try {
        const results = await eachPhoto(images, async (image) => {
          const img = await analyzer.decode(image, image);
          const faces = await analyzer.extract(img);
          if (!faces.length && img.width <= SMALL_PHOTO && img.height <= SMALL_PHOTO) {
            process.stderr.write(`faceopt: no face found in ${image} (${img.width}x${img.height}); if it is an aligned face crop, embed it with --aligned\n`);
          }
          return {
            image,
            width: img.width,
            height: img.height,
            faces: faces.map((f) => ({ ...faceJson(f), ...embeddingJson(f.embedding, f.norm) })),
          };
        });
        const d = analyzer.describe();
        process.stdout.write(`${toJson({ detector: d.detector.path, recognizer: d.recognizer?.path, images: results })}\n`);
      } finally {
        await analyzer.release();
      }
    });
}
