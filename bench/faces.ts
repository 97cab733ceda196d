/**
 * `npm run bench:faces`: where the time goes in the face pipeline on the shared models and photos.
 * For each detector (fixed-640 and dynamic SCRFD-500M) with the MobileFaceNet recognizer, photos are
 * processed one at a time, stage by stage (decode, detect, align, embed), and the per-stage mean and the
 * resulting images/s are printed as a table; a second table shows the recognizer's throughput by batch size.
 *
 * Flags: --images N (LFW photos, default 200), --threads N (intra-op threads, default: all cores),
 * --det-size N (dynamic detector only, default 640). Set FACEOPT_SHARED to the shared data folder.
 * Timings depend on what else runs on the machine: compare numbers from one quiet run only.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkNumber, FaceoptError } from '../pipeline/errors.js';
import { alignFace } from '../pipeline/faces/align.js';
import { ArcFaceRecognizer } from '../pipeline/faces/arcface.js';
import { decodeImage } from '../pipeline/faces/decode.js';
import { ScrfdDetector } from '../pipeline/faces/scrfd.js';
import { nearestToCentre } from '../pipeline/faces/select.js';
import type { RgbImage } from '../pipeline/faces/types.js';
import { sharedDir } from '../pipeline/paths.js';
import { RUNTIME_VERSION, type SessionOptions } from '../pipeline/runtime.js';
import { benchArgs } from './args.js';

interface Row { [column: string]: string }

/** Render rows as a fixed-width text table. */
function table(rows: Row[]): string {
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((s, i) => (i === 0 ? s.padEnd(width[i]) : s.padStart(width[i]))).join('  ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n');
}

const ms = (t: number) => t.toFixed(1);

async function benchPipeline(detPath: string, recPath: string, files: string[], session: SessionOptions, detSize?: number): Promise<Row> {
  const det = await ScrfdDetector.load(detPath, { session, detSize });
  const rec = await ArcFaceRecognizer.load(recPath, { session });
  await det.warmUp(2);
  await rec.warmUp(2);
  const t = { decode: 0, detect: 0, align: 0, embed: 0 };
  let faces = 0;
  const [cw, ch] = rec.inputSize;
  const t0 = performance.now();
  for (const f of files) {
    let s = performance.now();
    const img = await decodeImage(f);
    t.decode += performance.now() - s;
    s = performance.now();
    const found = await det.detect(img);
    t.detect += performance.now() - s;
    const face = nearestToCentre(found, img.width, img.height);
    if (!face?.kps) continue;
    faces++;
    s = performance.now();
    const crop = alignFace(img, face.kps, cw, ch).image;
    t.align += performance.now() - s;
    s = performance.now();
    await rec.embed([crop]);
    t.embed += performance.now() - s;
  }
  const wall = performance.now() - t0;
  await det.release();
  await rec.release();
  const n = files.length;
  return {
    detector: `${path.basename(detPath)} @${det.detSize.join('x')}`,
    photos: String(n),
    faces: String(faces),
    'decode ms': ms(t.decode / n),
    'detect ms': ms(t.detect / n),
    'align ms': ms(t.align / Math.max(faces, 1)),
    'embed ms': ms(t.embed / Math.max(faces, 1)),
    'total ms': ms(wall / n),
    'images/s': (n / (wall / 1000)).toFixed(1),
  };
}

async function benchRecognizer(recPath: string, crops: RgbImage[], session: SessionOptions): Promise<Row[]> {
  const rows: Row[] = [];
  for (const batch of [1, 8, 32]) {
    const rec = await ArcFaceRecognizer.load(recPath, { session, maxBatch: batch });
    await rec.warmUp(2, batch);
    const t0 = performance.now();
    await rec.embed(crops);
    const wall = performance.now() - t0;
    await rec.release();
    rows.push({ recognizer: path.basename(recPath), batch: String(batch), crops: String(crops.length), 'ms/crop': ms(wall / crops.length), 'crops/s': (crops.length / (wall / 1000)).toFixed(1) });
  }
  return rows;
}

async function main(): Promise<void> {
  const values = benchArgs('faces', 'Where the time goes in the face pipeline (decode, detect, align, embed) on the shared models and LFW photos.', {
    images: { value: 'N', help: 'LFW photos', default: '200' },
    threads: { value: 'N', help: 'intra-op threads (default: one per core)' },
    'det-size': { value: 'N', help: 'dynamic detector input size (default 640)' },
  });
  const count = checkNumber('--images', values.images, { min: 1, max: 1549, integer: true });
  const session: SessionOptions = values.threads ? { intraOpThreads: checkNumber('--threads', values.threads, { min: 1, integer: true }) } : {};
  const detSize = values['det-size'] ? checkNumber('--det-size', values['det-size'], { min: 32, integer: true }) : undefined;
  const shared = sharedDir();
  const models = path.join(shared, 'models');
  const lfw = path.join(shared, 'faces', 'lfw');
  if (!existsSync(models) || !existsSync(lfw)) {
    throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: existsSync(models) ? lfw : models, hint: ' (bench:faces needs the shared models and photos: set FACEOPT_SHARED)' });
  }
  const pairs = readFileSync(path.join(lfw, 'pairs_devtest.tsv'), 'utf8').trim().split('\n').slice(1);
  const files = [...new Set(pairs.flatMap((l) => l.split('\t').slice(0, 2)))].slice(0, count).map((f) => path.join(lfw, f));
  const rec = path.join(models, 'mobileface_paddle_128d.onnx');

  const load = os.loadavg()[0].toFixed(2);
  process.stdout.write(`faceopt bench:faces — onnxruntime ${RUNTIME_VERSION}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${load}, threads ${session.intraOpThreads ?? 'default'}\n`);
  process.stdout.write(`${count} LFW photos (250x250), one photo at a time; align/embed per face found\n\n`);
  const rows = [
    await benchPipeline(path.join(models, 'scrfd_500m_bnkps.onnx'), rec, files, session),
    await benchPipeline(path.join(models, 'scrfd_500m_bnkps_dynamic.onnx'), rec, files, session, detSize),
  ];
  process.stdout.write(`${table(rows)}\n\n`);

  const crops: RgbImage[] = [];
  const det = await ScrfdDetector.load(path.join(models, 'scrfd_500m_bnkps.onnx'), { session });
  for (const f of files.slice(0, 64)) {
    const img = await decodeImage(f);
    const face = nearestToCentre(await det.detect(img), img.width, img.height);
    if (face?.kps) crops.push(alignFace(img, face.kps).image);
  }
  await det.release();
  process.stdout.write(`${table(await benchRecognizer(rec, crops, session))}\n`);
}

await main();
