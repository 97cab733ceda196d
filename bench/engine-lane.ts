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

/**
 * Embed `crops` in batches of `batch` (cycling through them; fewer crops than `batch` are repeated to
 * fill one) for about `seconds`; images per second, counting the images each run really embedded.
 */
export async function embedFor(r: Pick<ArcFaceRecognizer, 'embed'>, crops: readonly RgbImage[], batch: number, seconds: number): Promise<number> {
  if (crops.length === 0) throw new Error('embedFor: no crops');
  let done = 0;
  let next = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    // a full batch every run: it used to count `batch` images for a run of crops.slice(0, batch), fewer
    // than `batch` when there are fewer crops (--crops 4 with batches of 8 read twice the engine's rate)
    const chunk = Array.from({ length: batch }, (_, i) => crops[(next + i) % crops.length]!);
    next = (next + batch) % crops.length;
    await r.embed(chunk);
    done += chunk.length;
  }
  return done / ((performance.now() - t0) / 1000);
}

/**
 * Decode, detect, align and embed the main face of one photo at a time (cycling) for about `seconds`;
 * photos per second, counting the photos in which a face was found and embedded: the server answers the
 * others 422 (FACEOPT_ERR_NO_FACE), which bench:server's req/s does not count either (okRate: 2xx only).
 */
export async function extractFor(fa: Pick<FaceAnalyzer, 'extract'>, photos: readonly Uint8Array[], seconds: number): Promise<number> {
  let sent = 0;
  let embedded = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const faces = await fa.extract(photos[sent % photos.length]!, { maxFaces: 1 });
    sent++;
    if (faces.length > 0) embedded++;
  }
  return embedded / ((performance.now() - t0) / 1000);
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
