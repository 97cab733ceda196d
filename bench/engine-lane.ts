/**
 * One engine lane for bench:server's raw-engine rows: a worker thread with its own sessions (`threads`
 * intra-op threads) that, once told to go, either embeds the given crops in batches of `batch` (crops)
 * or runs the whole face pipeline on the given photos one at a time (photos: decode, detect, align,
 * embed), for `seconds`, and posts its images per second. Several lanes measure the engine the way
 * `faceopt serve --lanes N` runs it, without HTTP. Protocol: posts 'ready' after loading and warming,
 * waits for any message, releases its sessions, posts the rate (a number) and exits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FaceAnalyzer } from '../pipeline/faces/analyzer.js';
import { ArcFaceRecognizer } from '../pipeline/faces/arcface.js';
import type { RgbImage } from '../pipeline/faces/types.js';

/** A lane's work: crops for the recognizer alone, or photos (with a detector) for the whole pipeline. */
export type LaneWork = { kind: 'crops'; crops: RgbImage[]; batch: number } | { kind: 'photos'; detector: string; photos: Uint8Array[] };

export interface LaneInit { model: string; work: LaneWork; threads: number; seconds: number }

/** Embed `crops` in batches of `batch` (cycling through them) for about `seconds`; images per second. */
export async function embedFor(r: ArcFaceRecognizer, crops: readonly RgbImage[], batch: number, seconds: number): Promise<number> {
  let done = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const start = done % crops.length;
    const chunk = crops.slice(start, start + batch);
    await r.embed(chunk.length === batch ? chunk : crops.slice(0, batch));
    done += batch;
  }
  return done / ((performance.now() - t0) / 1000);
}

/** Decode, detect, align and embed the main face of one photo at a time (cycling) for about `seconds`; photos per second. */
export async function extractFor(fa: FaceAnalyzer, photos: readonly Uint8Array[], seconds: number): Promise<number> {
  let done = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await fa.extract(photos[done % photos.length]!, { maxFaces: 1 });
    done++;
  }
  return done / ((performance.now() - t0) / 1000);
}

/** Load and warm a lane's sessions; returns the timed loop and a release. */
export async function prepareLane(init: LaneInit): Promise<{ run: () => Promise<number>; release: () => Promise<void> }> {
  const w = init.work;
  if (w.kind === 'crops') {
    const r = await ArcFaceRecognizer.load(init.model, { session: { intraOpThreads: init.threads }, maxBatch: w.batch });
    await r.warmUp(2, w.batch);
    return { run: () => embedFor(r, w.crops, w.batch, init.seconds), release: () => r.release() };
  }
  const fa = await FaceAnalyzer.load({ detector: w.detector, recognizer: init.model, session: { intraOpThreads: init.threads } });
  await fa.warmUp();
  return { run: () => extractFor(fa, w.photos, init.seconds), release: () => fa.release() };
}

if (parentPort) {
  const port = parentPort;
  const lane = await prepareLane(workerData as LaneInit);
  port.postMessage('ready');
  await new Promise((resolve) => port.once('message', resolve));
  const rate = await lane.run();
  // released before the rate is posted: the parent waits for this thread to exit instead of terminating
  // it while native sessions are being freed (that aborted the whole process: "terminate called after
  // throwing an instance of 'Napi::Error'")
  await lane.release();
  port.postMessage(rate);
}
