/**
 * One engine lane for bench:server's raw-engine rows: a worker thread with its own recognizer session
 * (`threads` intra-op threads) that embeds the given crops in batches of `batch` for `seconds` once told
 * to go, and posts its images per second. Several lanes measure the engine the way `faceopt serve
 * --lanes N` runs it, without HTTP. Protocol: posts 'ready' after loading and warming, waits for any
 * message, posts the rate (a number).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ArcFaceRecognizer } from '../pipeline/faces/arcface.js';
import type { RgbImage } from '../pipeline/faces/types.js';

export interface LaneInit { model: string; crops: RgbImage[]; batch: number; threads: number; seconds: number }

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

if (parentPort) {
  const port = parentPort;
  const init = workerData as LaneInit;
  const r = await ArcFaceRecognizer.load(init.model, { session: { intraOpThreads: init.threads }, maxBatch: init.batch });
  await r.warmUp(2, init.batch);
  port.postMessage('ready');
  await new Promise((resolve) => port.once('message', resolve));
  port.postMessage(await embedFor(r, init.crops, init.batch, init.seconds));
  await r.release();
}
