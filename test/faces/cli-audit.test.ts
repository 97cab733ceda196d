/**
 * Mutation audit of the command-line layer on real models (shared data), in this process: where
 * `compare` draws its line between same and different, and which photos `embed` gives the --aligned hint.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as compare from '../../pipeline/cli/compare.js';
import * as embed from '../../pipeline/cli/embed.js';
import { runInProcess } from '../helpers/cli-inproc.js';
import { describeShared, shared } from '../helpers/shared.js';

describeShared('face commands: edges', () => {
  const env = { FACEOPT_DETECTOR: shared('models', 'scrfd_500m_bnkps.onnx'), FACEOPT_RECOGNIZER: shared('models', 'mobileface_paddle_128d.onnx'), FACEOPT_MODELS: undefined };
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-cli-audit-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('compare: "same" is a cosine strictly above the threshold (a photo with itself is cosine 1, not above 1)', async () => {
    const photo = shared('faces', 'lfw', 'Abdullah_Gul', 'Abdullah_Gul_0013.jpg');
    const r = await runInProcess(compare.register, ['compare', photo, photo, '--threshold', '1'], env);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ cosine: 1, threshold: 1, thresholdSource: 'flag', same: false });
  });

  it('embed: a photo of at most 256x256 with no face gets the --aligned hint, a larger one does not', async () => {
    const gray = async (w: number, h: number) => {
      const file = path.join(dir, `gray-${w}x${h}.png`);
      await sharp({ create: { width: w, height: h, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toFile(file);
      return file;
    };
    const files = [await gray(256, 256), await gray(257, 256), await gray(256, 257)];
    const r = await runInProcess(embed.register, ['embed', ...files], env);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).images.map((i: { faces: unknown[] }) => i.faces)).toEqual([[], [], []]);
    const hints = r.err.split('\n').filter((l) => l.includes('embed it with --aligned'));
    expect(hints).toEqual([`faceopt: no face found in ${files[0]} (256x256); if it is an aligned face crop, embed it with --aligned`]);
  });
});
