/**
 * The face commands end to end through bin/faceopt.js (shared data): detect prints JSON and draws,
 * compare says same/different, embed prints unit embeddings, and bad input gives one coded line and
 * the table's exit code, never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, expect, it } from 'vitest';
import { FaceAnalyzer } from '../../pipeline/faces/analyzer.js';
import { faceopt } from '../helpers/cli.js';
import { entryFromFile, writeManifest } from '../../server/manifest.js';
import { exampleRecognizerReport } from '../report/example.js';
import { writeReport } from '../../pipeline/report/index.js';
import { describeShared, shared } from '../helpers/shared.js';

describeShared('faceopt detect / embed / compare', () => {
  const env = { FACEOPT_DETECTOR: shared('models', 'scrfd_500m_bnkps.onnx'), FACEOPT_RECOGNIZER: shared('models', 'mobileface_paddle_128d.onnx') };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faceopt-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const lfw = (p: string) => shared('faces', 'lfw', p);

  it('detect: 6 faces in t1.jpg as JSON, and --draw writes the picture', async () => {
    const out = path.join(dir, 't1.faces.jpg');
    const r = faceopt(['detect', shared('faces', 'groups', 't1.jpg'), '--draw', out], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.images[0].faces).toHaveLength(6);
    expect(json.images[0].faces[0].kps).toHaveLength(5);
    expect(await sharp(out).metadata()).toMatchObject({ width: 1280, height: 886, format: 'jpeg' });
  });

  it('detect --model with --det-size on the dynamic export, several photos, --draw into a folder', () => {
    const r = faceopt(['detect', lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg'), shared('faces', 'groups', 'dogs.jpg'), '--model', shared('models', 'scrfd_500m_bnkps_dynamic.onnx'), '--det-size', '320', '--draw', path.join(dir, 'drawn')]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.detSize).toEqual([320, 320]);
    expect(json.images).toHaveLength(2);
    expect(json.images[0].faces).toHaveLength(1);
    expect(existsSync(path.join(dir, 'drawn', 'Abdullah_Gul_0013.faces.jpg'))).toBe(true);
  });

  it('compare decides at the threshold /v1/verify would: the promoted recognizer\'s report threshold when --recognizer is that file, else 0.3; the JSON says which', async () => {
    const models = mkdtempSync(path.join(os.tmpdir(), 'faceopt-cmp-models-'));
    try {
      const manifest = path.join(models, 'manifest.json');
      const rec = shared('models', 'mobileface_paddle_128d.onnx');
      // promoted with a recorded threshold above this pair's cosine (report not here: the manifest's copy decides)
      await writeManifest(manifest, { recognizer: { ...(await entryFromFile(manifest, rec, 'fp32')), matchThreshold: 0.95 } });
      const args = ['compare', lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg'), lfw('Abdullah_Gul/Abdullah_Gul_0014.jpg')];
      const promoted = JSON.parse(faceopt(args, { env: { ...env, FACEOPT_MODELS: models } }).stdout);
      expect(promoted).toMatchObject({ threshold: 0.95, thresholdSource: 'report', same: false });
      const flagged = JSON.parse(faceopt([...args, '--threshold', '0.4'], { env: { ...env, FACEOPT_MODELS: models } }).stdout);
      expect(flagged).toMatchObject({ threshold: 0.4, thresholdSource: 'flag', same: true });
      // another recognizer file than the promoted one (the same graph plus an unknown field 100 = 0): the default
      const other = path.join(models, 'other.onnx');
      writeFileSync(other, Buffer.concat([readFileSync(rec), Buffer.from([0xa0, 0x06, 0x00])]));
      const unpromoted = JSON.parse(faceopt([...args, '--recognizer', other], { env: { ...env, FACEOPT_MODELS: models } }).stdout);
      expect(unpromoted).toMatchObject({ threshold: 0.3, thresholdSource: 'default', same: true });
      // the promoted report beside it decides over the manifest's copy (as serve reads it), and --manifest names another manifest
      const report = exampleRecognizerReport();
      report.recognizer!.verification!.variant.bestThreshold.threshold = 0.9;
      await writeReport(path.join(models, 'rep'), report);
      const elsewhere = path.join(models, 'elsewhere.json');
      await writeManifest(elsewhere, { recognizer: { ...(await entryFromFile(elsewhere, rec, 'fp32')), report: path.join(models, 'rep', 'report.json'), matchThreshold: 0.95 } });
      const fromReport = faceopt([...args, '--manifest', elsewhere], { env: { ...env, FACEOPT_MODELS: path.join(models, 'none') } });
      expect(JSON.parse(fromReport.stdout)).toMatchObject({ threshold: 0.9, thresholdSource: 'report', same: false });
      // a manifest that cannot be read does not stop compare (it exited 65 naming the manifest): the default, and a warning
      writeFileSync(manifest, '{not json');
      const broken = faceopt(args, { env: { ...env, FACEOPT_MODELS: models } });
      expect(broken.code, broken.stderr).toBe(0);
      expect(JSON.parse(broken.stdout)).toMatchObject({ threshold: 0.3, thresholdSource: 'default' });
      expect(broken.stderr).toMatch(/^warning: .*manifest\.json cannot be read \(.*\): the default match threshold applies$/m);
    } finally {
      rmSync(models, { recursive: true, force: true });
    }
  });

  it('compare --manifest decides with the models serve --manifest loads: the promoted files (a flag still wins), the detector size its entry evaluated, a changed file refused', async () => {
    const models = mkdtempSync(path.join(os.tmpdir(), 'faceopt-cmp-served-'));
    try {
      const manifest = path.join(models, 'manifest.json');
      const det = shared('models', 'scrfd_500m_bnkps_dynamic.onnx');
      const rec = path.join(models, 'rec.onnx');
      writeFileSync(rec, readFileSync(env.FACEOPT_RECOGNIZER));
      await writeManifest(manifest, {
        detector: { ...(await entryFromFile(manifest, det, 'fp32')), inputSize: [320, 320] },
        recognizer: { ...(await entryFromFile(manifest, rec, 'fp32')), matchThreshold: 0.95 },
      });
      const args = ['compare', lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg'), lfw('Abdullah_Gul/Abdullah_Gul_0014.jpg'), '--manifest', manifest];
      const none = { FACEOPT_DETECTOR: '', FACEOPT_RECOGNIZER: '', FACEOPT_MODELS: path.join(models, 'none') };
      const r = faceopt(args, { env: none });
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out).toMatchObject({ threshold: 0.95, thresholdSource: 'report', same: false });
      expect(out.models).toEqual({
        detector: { path: det, variant: 'fp32', source: manifest },
        recognizer: { path: rec, variant: 'fp32', source: manifest },
        detSize: 320,
      });
      // the same faces as the analyzer finds at 320
      const fa = await FaceAnalyzer.load({ detector: det, recognizer: rec, detSize: 320 });
      const [face] = await fa.extract(lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg'), { maxFaces: 1 });
      await fa.release();
      expect(out.a.box).toEqual(face!.box.map((v) => Number(v.toFixed(2))));
      // a flag names another recognizer (the same graph plus an unknown field 100 = 0): the default
      // threshold, not the promoted file's; --det-size wins over the evaluated size
      const other = path.join(models, 'other.onnx');
      writeFileSync(other, Buffer.concat([readFileSync(rec), Buffer.from([0xa0, 0x06, 0x00])]));
      const flagged = JSON.parse(faceopt([...args, '--recognizer', other, '--det-size', '640'], { env: none }).stdout);
      expect(flagged).toMatchObject({ thresholdSource: 'default', models: { recognizer: { path: other, source: '--recognizer' }, detSize: 640 } });
      // a manifest named on the command line that cannot be read is an error even where flags name both models
      const both = ['--detector', det, '--recognizer', other];
      const missing = faceopt([...args.slice(0, -1), path.join(models, 'nowhere.json'), ...both], { env: none });
      expect(missing.code).toBe(66);
      expect(missing.stderr).toContain('FACEOPT_ERR_FILE_NOT_FOUND');
      const notJson = faceopt([...args.slice(0, -1), lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg'), ...both], { env: none });
      expect(notJson.code).toBe(65);
      expect(notJson.stderr).toContain('FACEOPT_ERR_MANIFEST');
      // the promoted file changed since: refused as serve refuses it
      writeFileSync(rec, readFileSync(other));
      const changed = faceopt(args, { env: none });
      expect(changed.code).not.toBe(0);
      expect(changed.stdout).toBe('');
      expect(changed.stderr).toMatch(/FACEOPT_ERR_CHECKSUM.*rec\.onnx/);
    } finally {
      rmSync(models, { recursive: true, force: true });
    }
  });

  it('compare: same person -> same, different people -> different', () => {
    const same = JSON.parse(faceopt(['compare', lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg'), lfw('Abdullah_Gul/Abdullah_Gul_0014.jpg')], { env }).stdout);
    expect(same.same).toBe(true);
    expect(same.cosine).toBeGreaterThan(0.5);
    const diff = JSON.parse(faceopt(['compare', lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg'), shared('faces', 'groups', 't1.jpg'), '--threshold', '0.35'], { env }).stdout);
    expect(diff.threshold).toBe(0.35);
    expect(diff.same).toBe(false);
  });

  it('embed: unit-length 128-d embeddings', () => {
    const r = faceopt(['embed', lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg')], { env });
    expect(r.code).toBe(0);
    const f = JSON.parse(r.stdout).images[0].faces[0];
    expect(f.embedding).toHaveLength(128);
    expect(Math.abs(Math.hypot(...f.embedding) - 1)).toBeLessThan(1e-4);
    expect(f.norm).toBeGreaterThan(1);
  });

  it('embed --aligned: the aligned crop of a face, saved losslessly, embeds as that face did in its photo; a small photo with no face gets the hint', async () => {
    const photo = lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg');
    const fa = await FaceAnalyzer.load({ detector: env.FACEOPT_DETECTOR, recognizer: env.FACEOPT_RECOGNIZER });
    const img = await fa.decode(photo);
    const [crop] = fa.alignFaces(img, (await fa.detect(img)).slice(0, 1));
    await fa.release();
    const png = path.join(dir, 'aligned.png');
    await sharp(Buffer.from(crop!.data), { raw: { width: crop!.width, height: crop!.height, channels: 3 } }).png().toFile(png);
    const whole = JSON.parse(faceopt(['embed', photo], { env }).stdout).images[0].faces[0];
    const r = faceopt(['embed', '--aligned', png], { env: { FACEOPT_RECOGNIZER: env.FACEOPT_RECOGNIZER, FACEOPT_DETECTOR: '' } });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.detector).toBeNull();
    const f = out.images[0].faces[0];
    expect(f).toMatchObject({ box: [0, 0, 112, 112], score: null, kps: null, norm: whole.norm });
    expect(f.embedding).toEqual(whole.embedding);
    // a 150x150 dlib chip: SCRFD at 640 finds no face in it, and says what to try
    const chip = shared('faces', 'chips', 'John_Salley', '000179_02159509.jpg');
    const none = faceopt(['embed', chip], { env });
    expect(none.code).toBe(0);
    expect(JSON.parse(none.stdout).images[0].faces).toEqual([]);
    expect(none.stderr).toContain('(150x150); if it is an aligned face crop, embed it with --aligned');
  });

  it('detect and embed go on past a photo they cannot read, list its error in place and exit with its code', () => {
    const good = lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg');
    const notImage = path.join(dir, 'notes.jpg');
    writeFileSync(notImage, 'not a photo\n');
    for (const cmd of [['detect'], ['embed'], ['embed', '--aligned']]) {
      const r = faceopt([...cmd, good, notImage, path.join(dir, 'missing.jpg')], { env });
      expect(r.code, r.stderr).toBe(65); // the first failure's code: FACEOPT_ERR_BAD_IMAGE
      const images = JSON.parse(r.stdout).images as { image: string; faces?: unknown[]; error?: { code: string } }[];
      expect(images.map((i) => i.error?.code ?? `${i.faces!.length} face(s)`)).toEqual(['1 face(s)', 'FACEOPT_ERR_BAD_IMAGE', 'FACEOPT_ERR_FILE_NOT_FOUND']);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('faceopt: FACEOPT_ERR_'))).toHaveLength(2);
      // a photo's missing file is not pointed at the model packs
      expect(r.stderr).toContain(`File not found: ${path.join(dir, 'missing.jpg')}. Check the path.\n`);
    }
  });

  it.each([
    [['detect', '/nonexistent.jpg'], 66, 'FACEOPT_ERR_FILE_NOT_FOUND'],
    [['detect', '/etc/hostname'], 65, 'FACEOPT_ERR_BAD_IMAGE'],
    [['detect', 'x.jpg', '--threshold', '2'], 64, 'FACEOPT_ERR_BAD_ARGUMENT'],
    [['detect', 'x.jpg', '--det-size', '320'], 64, "FACEOPT_ERR_BAD_ARGUMENT: Expected 640x640 (this detector's fixed input size; use a dynamic-input export for other sizes) for --det-size but received 320x320."],
    [['detect', 'x.jpg', '--provider', 'cuda'], 69, 'FACEOPT_ERR_PROVIDER_UNAVAILABLE'],
    [['compare', 'x.jpg', 'y.jpg', '--detector', '/work/shared/models/mobileface_paddle_128d.onnx'], 64, 'FACEOPT_ERR_MODEL_ROLE'],
    [['compare', '/work/shared/faces/groups/t1.jpg', '/work/shared/faces/groups/t1.jpg', '--det-threshold', '0.99'], 1, 'FACEOPT_ERR_NO_FACE'],
  ])('%j exits %i with %s', (args, code, errCode) => {
    const fixed = args.map((a) => a.replace('/work/shared', path.dirname(shared('models'))));
    const r = faceopt(fixed, { env });
    if (errCode === 'FACEOPT_ERR_PROVIDER_UNAVAILABLE' && r.code === 0) return; // a machine with the CUDA provider installed
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(errCode);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('a named pipe as a photo is refused at once (detect, embed --aligned, compare waited forever on it)', () => {
    const fifo = path.join(dir, 'photo.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const args of [['detect', fifo], ['embed', '--aligned', fifo], ['compare', fifo, lfw('Abdullah_Gul/Abdullah_Gul_0013.jpg')]]) {
      const r = faceopt(args, { env: args[1] === '--aligned' ? { FACEOPT_RECOGNIZER: env.FACEOPT_RECOGNIZER, FACEOPT_DETECTOR: '' } : env, timeoutMs: 20_000 });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(65);
      expect(r.stderr).toContain(`FACEOPT_ERR_BAD_IMAGE`);
      expect(r.stderr).toContain('it is a named pipe, not a regular file; pass an image file');
    }
  });

  it('no detector anywhere: says which flag or variable to set', () => {
    const r = faceopt(['detect', 'x.jpg'], { env: { FACEOPT_DETECTOR: '' } });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('FACEOPT_DETECTOR');
  });

  it('flags a command would not use are refused by name; errors name the flag the user typed', () => {
    const t1 = shared('faces', 'groups', 't1.jpg');
    const aligned = faceopt(['embed', '--aligned', t1, '--threshold', '0.3', '--detector', 'nope.onnx'], { env });
    expect(aligned.code).toBe(64);
    expect(aligned.stderr.trim()).toBe('faceopt: FACEOPT_ERR_BAD_ARGUMENT: Expected no detector settings (no detector runs) for --aligned but received --detector, --threshold.');
    const cmp = faceopt(['compare', t1, t1, '--det-threshold', '2'], { env });
    expect(cmp.code).toBe(64);
    expect(cmp.stderr).toContain('for --det-threshold but received 2');
    const maxFaces = faceopt(['compare', t1, t1, '--max-faces', '2'], { env });
    expect(maxFaces.code).toBe(64); // the main face of each photo: commander's unknown option
    expect(maxFaces.stderr).toContain("FACEOPT_ERR_USAGE: Unknown option '--max-faces'");
  });

  it('a detector or recognizer cut short is named truncated (download again), as inspect names it', () => {
    const cut = path.join(dir, 'cut.onnx');
    writeFileSync(cut, readFileSync(shared('models', 'scrfd_500m_bnkps.onnx')).subarray(0, 300_000));
    for (const args of [['detect', shared('faces', 'groups', 't1.jpg'), '--detector', cut], ['embed', shared('faces', 'groups', 't1.jpg'), '--recognizer', cut]]) {
      const r = faceopt(args, { env });
      expect(r.code).toBe(65);
      expect(r.stderr).toContain('FACEOPT_ERR_MODEL_TRUNCATED');
    }
  });

  it('--draw never replaces a photo it reads', () => {
    const photo = path.join(dir, 'mine.jpg');
    writeFileSync(photo, Buffer.alloc(0));
    const r = faceopt(['detect', photo, '--draw', photo], { env });
    expect(r.code).toBe(73);
    expect(r.stderr).toContain('FACEOPT_ERR_OVERWRITE_SOURCE');
  });
});
