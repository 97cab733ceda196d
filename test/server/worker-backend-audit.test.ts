/**
 * WorkerBackend's lanes when threads die (a mutation audit found these unchecked): a lone request takes
 * the latency lane, a dead narrow lane leaves the backend healthy and its calls on the latency lane, a
 * restarted latency lane is the latency lane again, a thread that fails with an uncaught error is one
 * death and one restart (its 'error' and 'exit' both come), a restarted thread that dies again restarts
 * again, and calls waiting for a restart are answered when it fails or the backend is released; a lane
 * whose thread ended before the backend was built is restarted too.
 */
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import type { RgbImage } from '../../pipeline/faces/types.js';
import { resolveServerConfig, type ServerConfigInput } from '../../server/config.js';
import { selectModels } from '../../server/models.js';
import { analyzerOptionsFor } from '../../server/analyzer-options.js';
import type { WorkerInit } from '../../server/inference-worker.js';
import { Lane, WorkerBackend } from '../../server/worker-backend.js';
import { describeShared, shared } from '../helpers/shared.js';
import { waitFor } from './helpers.js';

const DET = shared('models', 'scrfd_500m_bnkps.onnx');
const REC = shared('models', 'mobileface_paddle_128d.onnx');
const PHOTO = shared('faces', 'groups', 't1.jpg');
/** A safety cap on waits for a restart (none is a timing assertion). */
const CAP_MS = 30_000;

/** Lane `i`'s thread (the latency lane last), to end it from outside as a crash in it would. */
const thread = (backend: WorkerBackend, i: number): Worker => (backend as unknown as { allLanes: { worker: Worker }[] }).allLanes[i]!.worker;

async function loaded(input: ServerConfigInput): Promise<{ backend: WorkerBackend; events: string[]; img: RgbImage }> {
  const config = resolveServerConfig({ detector: DET, recognizer: REC, intraOpThreads: 1, ...input });
  const backend = await WorkerBackend.load(await selectModels(config), config);
  const events: string[] = [];
  backend.setLaneEvents({ died: (l, reason) => events.push(`died ${l}: ${reason}`), restarted: (l) => events.push(`restarted ${l}`), restartFailed: (l) => events.push(`failed ${l}`) });
  await backend.warmUp();
  return { backend, events, img: await backend.decode(readFileSync(PHOTO), 't1.jpg') };
}
const count = (events: string[], prefix: string) => events.filter((e) => e.startsWith(prefix)).length;

describeShared('WorkerBackend lanes when threads die (mutation audit)', () => {
  it('two lanes and a latency lane: a lone request runs on the latency lane; with both narrow lanes dead the backend is healthy and a busy server\'s call runs there; a restarted latency lane is the latency lane again', async () => {
    const { backend: b, events, img } = await loaded({ lanes: 2, latencyLane: true });
    try {
      b.setLoadProbe(() => 1); // the service counts the request being served
      let before = b.callsPerLane;
      await b.detect(img, {});
      expect(b.callsPerLane.latency! - before.latency!).toBe(1);
      b.setLoadProbe(() => 5);
      await Promise.all([thread(b, 0).terminate(), thread(b, 1).terminate()]);
      expect(b.healthy).toBe(true);
      before = b.callsPerLane;
      expect(await b.detect(img, {})).toHaveLength(6); // not held until a narrow lane is back
      expect(b.callsPerLane.latency! - before.latency!).toBe(1);
      await waitFor(() => count(events, 'restarted') === 2, CAP_MS, 'both narrow lanes restarted');
      await thread(b, 2).terminate();
      await waitFor(() => events.includes('restarted 2'), CAP_MS, 'the latency lane restarted');
      expect(b.lanes).toBe(2);
      b.setLoadProbe(() => 1);
      before = b.callsPerLane;
      await b.detect(img, {});
      expect(b.callsPerLane.latency! - before.latency!).toBe(1);
      expect(b.callsPerLane.lanes).toEqual(before.lanes);
    } finally {
      await b.release();
    }
  });

  it('a thread that fails with an uncaught error dies once and restarts once; the restarted thread, dying in turn, restarts again', async () => {
    const { backend: b, events, img } = await loaded({});
    try {
      thread(b, 0).postMessage(null); // its message handler throws: 'error', then 'exit'
      await waitFor(() => events.includes('restarted 0'), CAP_MS, 'the first restart');
      expect(events).toHaveLength(2);
      expect(events[0]).toMatch(/^died 0: the inference thread failed: /);
      await thread(b, 0).terminate();
      await waitFor(() => count(events, 'restarted 0') === 2, CAP_MS, 'the second restart');
      expect(events.slice(2)).toEqual(['died 0: the inference thread exited (code 1)', 'restarted 0']);
      expect(await b.detect(img, {})).toHaveLength(6);
    } finally {
      await b.release();
    }
  });

  it('a call waiting for a restart is answered 503 SHUTTING_DOWN when the backend is released', async () => {
    const { backend: b, img } = await loaded({});
    await thread(b, 0).terminate();
    const waiting = b.detect(img, {}).then(() => null, (e: unknown) => e);
    await b.release();
    const answer = await waiting;
    expect(isFaceoptError(answer, 'FACEOPT_ERR_SHUTTING_DOWN'), String(answer)).toBe(true);
  });

  it('a restart that fails answers the calls waiting for it at once, however long their deadline', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-lane-fail-'));
    const rec = path.join(dir, 'rec.onnx');
    copyFileSync(REC, rec);
    const saved = WorkerBackend.restartDelayMs;
    WorkerBackend.restartDelayMs = 600_000;
    const { backend: b, events, img } = await loaded({ recognizer: rec, timeoutMs: 600_000 });
    try {
      renameSync(rec, `${rec}.away`);
      await thread(b, 0).terminate();
      const waiting = b.detect(img, {}).then(() => null, (e: unknown) => e);
      const answer = await Promise.race([waiting, new Promise((r) => setTimeout(r, CAP_MS, 'still waiting'))]);
      expect(events).toContain('failed 0');
      expect(isFaceoptError(answer, 'FACEOPT_ERR_NOT_READY'), String(answer)).toBe(true);
    } finally {
      WorkerBackend.restartDelayMs = saved;
      await b.release();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a lane whose thread ended before the backend watched it (ready first, the other lanes still loading) is restarted, its death told once events are set', async () => {
    const config = resolveServerConfig({ detector: DET, recognizer: REC, intraOpThreads: 1, lanes: 2 });
    const models = await selectModels(config);
    const init: WorkerInit = { analyzer: analyzerOptionsFor(models, config), warmBatch: 1 };
    const [first, second] = await Promise.all([Lane.start(init), Lane.start(init)]);
    await first.lane.worker.terminate();
    await waitFor(() => !first.lane.alive, CAP_MS, 'the first lane dead');
    // what WorkerBackend.load does once every lane has started
    const Backend = WorkerBackend as unknown as new (...args: unknown[]) => WorkerBackend;
    const { ready } = second;
    const b = new Backend([first.lane, second.lane], null, [init, init], {
      detector: { path: models.detector.path, inputSize: ready.detSize }, recognizer: { path: models.recognizer.path, inputSize: ready.recognizerInput },
    }, ready.recognizerInput, config.maxPixels);
    const events: string[] = [];
    b.setLaneEvents({ died: (l, reason) => events.push(`died ${l}: ${reason}`), restarted: (l) => events.push(`restarted ${l}`), restartFailed: (l) => events.push(`failed ${l}`) });
    try {
      expect(events).toEqual(['died 0: the inference thread exited (code 1)']);
      await waitFor(() => events.includes('restarted 0'), CAP_MS, 'the dead lane restarted');
      const img = await b.decode(readFileSync(PHOTO), 't1.jpg');
      b.setLoadProbe(() => 5);
      const before = b.callsPerLane.lanes;
      await Promise.all([b.detect(img, {}), b.detect(img, {})]); // one call per lane: both alive
      expect(b.callsPerLane.lanes.map((n, i) => n - before[i]!)).toEqual([1, 1]);
    } finally {
      await b.release();
    }
  });
});
