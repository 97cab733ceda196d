/**
 * The inference thread: the same faces and embeddings as the in-thread backend, the event loop free
 * while a batch runs (onnxruntime-node runs synchronously on the calling thread), coded errors across
 * the thread boundary, and a clear error when the models cannot load.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AnalyzerBackend } from '../../server/backend.js';
import { resolveServerConfig } from '../../server/config.js';
import { selectModels } from '../../server/models.js';
import { WorkerBackend } from '../../server/worker-backend.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { copyFileSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { describeShared, shared } from '../helpers/shared.js';

const DET = shared('models', 'scrfd_500m_bnkps.onnx');
const REC = shared('models', 'mobileface_paddle_128d.onnx');
const PHOTO = shared('faces', 'groups', 't1.jpg');

describeShared('WorkerBackend (models in a worker thread)', () => {
  let worker: WorkerBackend;
  let local: AnalyzerBackend;
  beforeAll(async () => {
    const config = resolveServerConfig({ detector: DET, recognizer: REC, intraOpThreads: 1 });
    const models = await selectModels(config);
    worker = await WorkerBackend.load(models, config);
    local = await AnalyzerBackend.load(models, config);
    await worker.warmUp();
  });
  afterAll(async () => {
    await worker?.release();
    await local?.release();
  });

  it('finds the same faces and embeddings as the in-thread backend', async () => {
    expect(worker.info).toEqual(local.info);
    const img = await worker.decode(readFileSync(PHOTO), 't1.jpg');
    const [a, b] = [await worker.detect(img, {}), await local.detect(img, {})];
    expect(a).toEqual(b);
    expect(a.length).toBe(6);
    const crops = worker.align(img, a);
    const [ea, eb] = [await worker.embed(crops), await local.embed(crops)];
    expect(ea.norms).toEqual(eb.norms);
    ea.embeddings.forEach((e, i) => expect(Array.from(e)).toEqual(Array.from(eb.embeddings[i]!)));
  });

  it('leaves the event loop free while a batch runs', async () => {
    const img = await worker.decode(readFileSync(PHOTO), 't1.jpg');
    const crops = worker.align(img, await worker.detect(img, {}));
    const batch = Array.from({ length: 32 }, (_, i) => crops[i % crops.length]!);
    const turns = async (run: () => Promise<unknown>) => {
      let n = 0;
      let done = false;
      const spin = () => { if (!done) { n++; setImmediate(spin); } };
      setImmediate(spin);
      await run();
      done = true;
      return n;
    };
    // in-thread, the synchronous run holds the loop: a handful of turns around it at most
    const blocked = await turns(() => local.embed(batch));
    const free = await turns(() => worker.embed(batch));
    expect(free).toBeGreaterThan(20);
    expect(free).toBeGreaterThan(5 * Math.max(blocked, 1));
  });

  it('passes coded errors back and keeps working', async () => {
    const img = await worker.decode(readFileSync(PHOTO), 't1.jpg');
    let err: unknown;
    try { await worker.detect(img, { threshold: 2 }); } catch (e) { err = e; }
    // the worker's FaceoptError arrives with its code and parameters
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(/threshold/);
    expect((await worker.detect(img, {})).length).toBe(6);
  });
});

describeShared('WorkerBackend with two lanes', () => {
  it('loads one thread per lane; runs on both lanes at once give the one-lane results', async () => {
    const one = resolveServerConfig({ detector: DET, recognizer: REC, intraOpThreads: 1 });
    const two = resolveServerConfig({ detector: DET, recognizer: REC, intraOpThreads: 1, lanes: 2 });
    const models = await selectModels(one);
    const [a, b] = [await WorkerBackend.load(models, one), await WorkerBackend.load(models, two)];
    try {
      expect([a.lanes, b.lanes]).toEqual([1, 2]);
      await b.warmUp();
      const img = await b.decode(readFileSync(PHOTO), 't1.jpg');
      const faces = await a.detect(img, {});
      const crops = a.align(img, faces);
      const ref = await a.embed(crops);
      // three calls at once, each sent to the least busy lane
      const [x, y, z] = await Promise.all([b.embed(crops), b.embed(crops.slice().reverse()), b.detect(img, {})]);
      expect(z).toEqual(faces);
      expect(x.norms).toEqual(ref.norms);
      expect(y.norms).toEqual(ref.norms.slice().reverse());
      x.embeddings.forEach((e, i) => expect(Array.from(e)).toEqual(Array.from(ref.embeddings[i]!)));
    } finally {
      await a.release();
      // released twice at once (the service and a failed start both release): one release, no abort
      const twice = [b.release(), b.release()];
      expect(twice[0]).toBe(twice[1]);
      await Promise.all(twice);
      await b.release();
    }
  });
});

describeShared('WorkerBackend with a latency lane', () => {
  it('a lone call runs on the latency lane, calls that overlap it or a busy server on the narrow lanes; the results do not depend on the lane', async () => {
    const config = resolveServerConfig({ detector: DET, recognizer: REC, lanes: 2, intraOpThreads: 1, latencyLane: true });
    expect(config.latencyLaneThreads).toBe(2);
    const b = await WorkerBackend.load(await selectModels(config), config);
    try {
      await b.warmUp();
      const warm = b.callsPerLane;
      const img = await b.decode(readFileSync(PHOTO), 't1.jpg');
      const faces = await b.detect(img, {});
      const crops = b.align(img, faces);
      const alone = await b.embed(crops);
      const after = b.callsPerLane;
      expect(after.latency! - warm.latency!).toBe(2);
      expect(after.lanes).toEqual(warm.lanes);
      // three at once: the first finds every lane idle, the others go to the narrow lanes
      const [x, y, z] = await Promise.all([b.embed(crops), b.embed(crops), b.detect(img, {})]);
      const busy = b.callsPerLane;
      expect(busy.latency! - after.latency!).toBe(1);
      expect(busy.lanes.map((n, i) => n - after.lanes[i]!)).toEqual([1, 1]);
      expect(z).toEqual(faces);
      for (const r of [x, y]) r.embeddings.forEach((e, i) => expect(Array.from(e)).toEqual(Array.from(alone.embeddings[i]!)));
      // a busy server (several requests in it) keeps to the narrow lanes even when they are idle
      b.setLoadProbe(() => 5);
      const before = b.callsPerLane;
      await b.embed(crops);
      expect(b.callsPerLane.latency).toBe(before.latency);
      expect(b.callsPerLane.lanes.reduce((p, q) => p + q, 0)).toBe(before.lanes.reduce((p, q) => p + q, 0) + 1);
    } finally {
      await b.release();
    }
  });
});

describeShared('WorkerBackend loading', () => {
  it('a model that cannot load rejects with its coded error, and the thread is gone', async () => {
    const config = resolveServerConfig({ detector: DET, recognizer: REC });
    const models = await selectModels(config);
    const broken = { ...models, recognizer: { ...models.recognizer, path: '/nonexistent/model.onnx' } };
    await expect(WorkerBackend.load(broken, config)).rejects.toSatisfy((e: unknown) => isFaceoptError(e));
  });
});

/** End lane `i`'s thread from outside, as a crash in it would (terminate() fires its 'exit'). */
function kill(backend: WorkerBackend, i = 0): Promise<number> {
  return (backend as unknown as { allLanes: { worker: Worker }[] }).allLanes[i]!.worker.terminate();
}

describeShared('WorkerBackend when an inference thread dies', () => {
  it('starts it again: its call in flight fails with FACEOPT_ERR_INFERENCE, the next call waits for the restart and gets the same embedding', async () => {
    const config = resolveServerConfig({ detector: DET, recognizer: REC, intraOpThreads: 1 });
    const backend = await WorkerBackend.load(await selectModels(config), config);
    const events: string[] = [];
    backend.setLaneEvents({ died: (l, r) => events.push(`died ${l}: ${r}`), restarted: (l) => events.push(`restarted ${l}`), restartFailed: (l) => events.push(`failed ${l}`) });
    try {
      await backend.warmUp();
      const img = await backend.decode(readFileSync(PHOTO), 't1.jpg');
      const crops = backend.align(img, (await backend.detect(img, {})).slice(0, 2));
      const before = await backend.embed(crops);
      const inFlight = backend.embed(crops);
      await kill(backend);
      await expect(inFlight).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_INFERENCE'));
      expect(events).toEqual(['died 0: the inference thread exited (code 1)']);
      expect(backend.healthy).toBe(false);
      const after = await backend.embed(crops); // before the fix: FACEOPT_ERR_INFERENCE, for good
      expect(events).toEqual(['died 0: the inference thread exited (code 1)', 'restarted 0']);
      expect(backend.healthy).toBe(true);
      expect(Array.from(after.embeddings[1]!)).toEqual(Array.from(before.embeddings[1]!));
      expect((await backend.detect(img, {})).length).toBe(6);
    } finally {
      await backend.release();
    }
  });

  it('a restart that fails is tried again later; calls waiting meanwhile get 503 NOT_READY instead of hanging (not the loader\'s error, which named the model path as a 404)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-lane-restart-'));
    const rec = path.join(dir, 'rec.onnx');
    copyFileSync(REC, rec);
    const config = resolveServerConfig({ detector: DET, recognizer: rec, intraOpThreads: 1 });
    const backend = await WorkerBackend.load(await selectModels(config), config);
    const saved = WorkerBackend.restartDelayMs;
    WorkerBackend.restartDelayMs = 300;
    const failed: unknown[] = [];
    let restarted = 0;
    backend.setLaneEvents({ restartFailed: (_l, e) => failed.push(e), restarted: () => { restarted++; } });
    try {
      await backend.warmUp();
      renameSync(rec, `${rec}.away`); // the model is gone when the thread starts again
      await kill(backend);
      const img = await backend.decode(readFileSync(PHOTO), 't1.jpg');
      await expect(backend.detect(img, {})).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_NOT_READY') && !(e as Error).message.includes(rec));
      expect(failed.length).toBeGreaterThanOrEqual(1);
      expect(isFaceoptError(failed[0], 'FACEOPT_ERR_FILE_NOT_FOUND')).toBe(true); // the log hears the reason
      expect(backend.healthy).toBe(false);
      renameSync(`${rec}.away`, rec);
      for (let t = 0; t < 100 && !backend.healthy; t++) await new Promise((r) => setTimeout(r, 100));
      expect(restarted).toBe(1);
      expect((await backend.detect(img, {})).length).toBe(6);
    } finally {
      WorkerBackend.restartDelayMs = saved;
      await backend.release();
    }
  });

  it('a call waits for a restart at most the request timeout (its admission slot was held until the next restart try, up to 30 s)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-lane-wait-'));
    const rec = path.join(dir, 'rec.onnx');
    copyFileSync(REC, rec);
    const config = resolveServerConfig({ detector: DET, recognizer: rec, intraOpThreads: 1, timeoutMs: 200 });
    const backend = await WorkerBackend.load(await selectModels(config), config);
    const saved = WorkerBackend.restartDelayMs;
    WorkerBackend.restartDelayMs = 60_000; // the next try after the failed one is a minute away
    let failed = 0;
    backend.setLaneEvents({ restartFailed: () => { failed++; } });
    try {
      await backend.warmUp();
      const img = await backend.decode(readFileSync(PHOTO), 't1.jpg');
      renameSync(rec, `${rec}.away`);
      await kill(backend);
      for (let t = 0; t < 100 && failed === 0; t++) await new Promise((r) => setTimeout(r, 50));
      expect(failed).toBe(1);
      const t0 = Date.now();
      const waited = await backend.detect(img, {}).then(() => null, (e: unknown) => e);
      expect(isFaceoptError(waited, 'FACEOPT_ERR_NOT_READY')).toBe(true);
      expect((waited as Error).message).toMatch(/no inference thread is running/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      WorkerBackend.restartDelayMs = saved;
      await backend.release();
    }
  });

  it('closing answers the calls waiting for a restart at once, and release() returns only once a restart still loading has ended its thread (the process exited under it: exit 134)', async () => {
    const config = resolveServerConfig({ detector: DET, recognizer: REC, intraOpThreads: 1 });
    const backend = await WorkerBackend.load(await selectModels(config), config);
    await backend.warmUp();
    const img = await backend.decode(readFileSync(PHOTO), 't1.jpg');
    await kill(backend);
    const pending = backend.detect(img, {}).then(() => null, (e: unknown) => e);
    backend.stopWaiting();
    const answered = await pending;
    expect(isFaceoptError(answered, 'FACEOPT_ERR_NOT_READY')).toBe(true);
    expect((answered as Error).message).toMatch(/the server is closing/);
    await expect(backend.detect(img, {})).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_NOT_READY'));
    const restarting = (backend as unknown as { restarting: Set<Promise<void>> }).restarting;
    expect(restarting.size).toBe(1); // loading the new thread now
    await backend.release();
    expect(restarting.size).toBe(0);
    expect(backend.healthy).toBe(false);
  });

  it('a released backend does not restart its threads', async () => {
    const config = resolveServerConfig({ detector: DET, recognizer: REC, intraOpThreads: 1 });
    const backend = await WorkerBackend.load(await selectModels(config), config);
    let died = 0;
    backend.setLaneEvents({ died: () => { died++; } });
    await backend.release();
    await new Promise((r) => setTimeout(r, 200));
    expect(died).toBe(0);
    await expect(backend.embed([])).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_INFERENCE'));
  });
});
