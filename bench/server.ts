/**
 * `npm run bench:server`: what HTTP serving costs over the raw engine. For each recognizer variant (FP32,
 * and INT8 when `--int8 FILE` exists) and batching on/off, a real `faceopt serve` child process on a
 * loopback port is loaded by autocannon for a bounded time with `POST /embed` (multipart `file`, cache
 * off): aligned 112x112 face crops (embed_only) and full LFW photos (detect + align + embed). Each row
 * prints req/s, p50 and p99, beside the raw engine's throughput for the same model and batch measured in
 * this run without HTTP (the faster of one session with all the server's threads and one-thread lanes
 * side by side; crops: the recognizer at the server's mean batch; photos: the pipeline, one photo at a
 * time per lane), and their ratio. Server load and engine take turns in blocks (pairedBlocks), so a
 * quiet or loaded phase of the host weighs on both sides of the ratio; the row shows the block with the
 * median ratio and the range. Two extra rows load the crop server at 80% of its saturation rate to show
 * tail latency: open-loop arrivals for at least 10 s per block, evenly spaced (the goal row's load, as
 * wrk2 -R sends) and Poisson (as MLPerf's server scenario, beside the p99/p50 an ideal FIFO server would
 * give under the same arrivals), each block at 80% of a saturation rate measured just before it
 * (bench/paced.ts; latency from each request's scheduled arrival), once the server has drained what the
 * saturation run left queued. Ends with issue 7's goal rows. Numbers depend on what else runs on the
 * machine: compare runs made alike.
 *
 * Flags: --duration S (per block, default 5), --blocks N (server/engine turns per row, default 3),
 * --connections N (default 32: 16 left mobileface's server ~5% short of its saturation), --max-batch N
 * (default: the server's, 8 on the CPU),
 * --int8 FILE, --fp32 FILE, --detector FILE, --crops N (default 64), --photos N (default 200),
 * --no-lfw, --threads N (per server lane), --workers N (server processes), --lanes N (inference lanes per
 * worker; default: the server's, 2 + a latency lane with 2+ cores per worker; threads default to cores / (workers x
 * lanes)), --latency-lane (with --lanes N: add the latency lane), --batching on|off|both (default both; `--batching on --no-lfw` is the cheap run for the 80%-rate tail rows).
 * Set FACEOPT_SHARED to the shared data folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { checkNumber, FaceoptError } from '../pipeline/errors.js';
import { availableCores, resolveServerConfig } from '../server/config.js';
import { FaceAnalyzer } from '../pipeline/faces/analyzer.js';
import type { RgbImage } from '../pipeline/faces/types.js';
import { RUNTIME_VERSION } from '../pipeline/runtime.js';
import { prepareLane, type LaneInit, type LaneWork } from './engine-lane.js';
import { benchArgs } from './args.js';
import { arrivalsOf, fifoFloor, medianBlock, pacedLoad, STEADY_LOAD, steadyHost, type ArrivalKind, type PacedRequest, type PacedResult } from './paced.js';
import { BOUNDARY, benchData, cpuSplit, lfwPhotos, metricSamples, metricsText, metricValue, multipartBody, okRate, startServer, table, threadTicks, type Row } from './serve-kit.js';

/** The slice of autocannon's API used here (the package ships no types). */
interface CannonResult {
  requests: { average: number };
  '2xx': number;
  /** Seconds the run took. */
  duration: number;
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Cannon = (opts: Record<string, unknown>) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Cannon;

/** Sum, count and cumulative bucket counts (le -> count) of recognizer batch sizes from /metrics. */
async function batchStats(base: string): Promise<{ sum: number; count: number; buckets: Map<string, number> }> {
  const text = await metricsText(base);
  const recognizer = { model: 'recognizer' };
  const buckets = new Map<string, number>();
  for (const b of metricSamples(text, 'faceopt_batch_size_bucket')) if (b.labels.model === 'recognizer') buckets.set(b.labels.le!, b.value);
  return { sum: metricValue(text, 'faceopt_batch_size_sum', recognizer, 0), count: metricValue(text, 'faceopt_batch_size_count', recognizer, 0), buckets };
}

/** Mean recognizer batch of the runs between two batchStats snapshots (0 when none ran). */
function meanBatch(before: Awaited<ReturnType<typeof batchStats>>, after: Awaited<ReturnType<typeof batchStats>>): number {
  const batches = after.count - before.count;
  return batches > 0 ? (after.sum - before.sum) / batches : 0;
}

/** How the runs of a load spread over batch sizes: "1: 12%, 2: 5%, 3-4: 40%, ..." (bucket edges of the histogram). */
function batchSpread(before: Awaited<ReturnType<typeof batchStats>>, after: Awaited<ReturnType<typeof batchStats>>): string {
  const total = after.count - before.count;
  if (total <= 0) return '';
  const parts: string[] = [];
  let prevLe = 0; let prevCum = 0;
  for (const [le, cum] of after.buckets) {
    const c = cum - (before.buckets.get(le) ?? 0);
    const n = c - prevCum;
    const hi = le === '+Inf' ? Infinity : Number(le);
    if (n > 0) parts.push(`${hi === prevLe + 1 ? String(hi) : `${prevLe + 1}-${hi === Infinity ? '' : hi}`}: ${Math.round((100 * n) / total)}%`);
    prevCum = c; prevLe = hi;
  }
  return parts.join(', ');
}

/** POST requests of `url`, one per multipart body (made by multipartBody). */
function postRequests(url: string, bodies: Buffer[]) {
  return bodies.map((body) => ({ method: 'POST', path: url, body, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } }));
}

/** Cache hits the server has counted so far (faceopt_cache_requests_total{result="hit"}, both layers). */
async function cacheHits(base: string): Promise<number> {
  return metricSamples(await metricsText(base), 'faceopt_cache_requests_total').filter((m) => m.labels.result === 'hit').reduce((a, m) => a + m.value, 0);
}

/**
 * Load the server with the given bodies as fast as it answers (closed loop); returns autocannon's
 * result, its rate of successful answers (okRate: 2xx per second; autocannon's requests.average counts
 * refusals too), the mean recognizer batch and, given the server's `pid`, where the CPU went (cpuSplit).
 */
async function load(base: string, url: string, bodies: Buffer[], seconds: number, connections: number, o: { pid?: number } = {}) {
  const { pid } = o;
  const requests = postRequests(url, bodies);
  await autocannon({ url: base, connections, duration: 1, requests }); // warm-up, not counted
  const before = await batchStats(base);
  const ticks0 = pid ? threadTicks(pid) : null;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await autocannon({ url: base, connections, duration: seconds, requests });
  const cpu = pid ? cpuSplit(pid, ticks0, threadTicks(pid), cpu0, (performance.now() - t0) / 1000) : null;
  const after = await batchStats(base);
  return { r, rate: okRate(r), meanBatch: meanBatch(before, after), spread: batchSpread(before, after), cpu };
}

/**
 * Wait until the server holds no request (its `faceopt_requests_admitted` gauge reads 0; up to 30 s):
 * autocannon stops sending at the end of its run but the server still answers what it had queued, and
 * an open-loop run started at once timed its first requests behind that backlog (p99 400 ms where the
 * rest of the run read 40-60).
 */
async function drained(base: string): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < 30_000) {
    if (metricValue(await metricsText(base), 'faceopt_requests_admitted', {}, 0) === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One open-loop run at 80% of saturation: its result, the mean recognizer batch and p99/p50. */
interface TailRun { r: PacedResult; meanBatch: number; ratio: number }

async function tailRun(base: string, requests: PacedRequest[], rate: number, seconds: number, arrivals: ArrivalKind, seed: number): Promise<TailRun> {
  const before = await batchStats(base);
  const r = await pacedLoad(base, requests, rate, seconds, { seed, arrivals });
  const after = await batchStats(base);
  return { r, meanBatch: meanBatch(before, after), ratio: r.p99 / Math.max(r.p50, 1) };
}

/**
 * One block of the tail rows: the saturation rate measured first and again after the block, both
 * arrival kinds at 80% of the first, and the p99/p50 of an ideal FIFO server (fifoFloor) under the
 * block's Poisson arrivals. `steady`: the host kept its pace through the block (steadyHost).
 */
interface TailBlock { saturation: number; after: number; steady: boolean; constant: TailRun; poisson: TailRun; floor: number }

async function saturationRate(base: string, requests: PacedRequest[], connections: number): Promise<number> {
  const rate = okRate(await autocannon({ url: base, connections, duration: 3, requests }));
  await drained(base);
  return rate;
}

/**
 * The tail rows, in `blocks` blocks: each measures the crop server's saturation rate again (3 s, closed
 * loop, `connections`) and then sends open-loop arrivals at 80% of it (bench/paced.ts) for `seconds`,
 * evenly spaced and then Poisson, so a slower phase of the host does not turn "80%" into 100%; the next
 * block's measurement (or one more after the last) checks that the host kept its pace. Beside the
 * Poisson run, the p99/p50 an ideal server of `lanes` FIFO workers would give under the same arrivals,
 * each request taking lanes / saturation. Returns every block and, per arrival kind, the block with the
 * median p99/p50 among the steady ones (among all when none was).
 */
async function tailBlocks(base: string, bodies: Buffer[], blocks: number, seconds: number, connections: number, lanes: number) {
  const requests = postRequests('/embed?embed_only=true', bodies);
  const all: TailBlock[] = [];
  let saturation = await saturationRate(base, requests, connections);
  for (let i = 0; i < blocks; i++) {
    const constant = await tailRun(base, requests, 0.8 * saturation, seconds, 'constant', i + 1);
    await drained(base);
    const poisson = await tailRun(base, requests, 0.8 * saturation, seconds, 'poisson', i + 1);
    await drained(base);
    const ideal = fifoFloor(arrivalsOf('poisson', 0.8 * saturation, seconds, i + 1), lanes, (1000 * lanes) / Math.max(saturation, 1e-9));
    const after = await saturationRate(base, requests, connections);
    all.push({ saturation, after, steady: steadyHost(saturation, after), constant, poisson, floor: ideal.p99 / ideal.p50 });
    saturation = after;
  }
  const steady = all.filter((b) => b.steady);
  const counted = steady.length > 0 ? steady : all;
  // lower p99/p50 is better: of two middle blocks, the higher (medianBlock)
  const medianBy = (k: 'constant' | 'poisson') => medianBlock(counted, (b) => b[k].ratio, 'lower');
  return { all, counted: counted.length, steady: steady.length > 0, constant: medianBy('constant'), poisson: medianBy('poisson') };
}

/** Raw engine throughput (images/s) of `lanes` lanes of `threads` threads each, side by side (one lane: in this thread); summed. */
async function engineLanes(model: string, work: LaneWork, threads: number, lanes: number, seconds: number): Promise<number> {
  if (lanes === 1) {
    const lane = await prepareLane({ model, work, threads, seconds });
    try {
      return await lane.run();
    } finally {
      await lane.release();
    }
  }
  const file = new URL('./engine-lane.js', import.meta.url);
  const workers = Array.from({ length: lanes }, () => new Worker(file, { workerData: { model, work, threads, seconds } satisfies LaneInit }));
  const exited = workers.map((w) => new Promise<void>((resolve) => w.once('exit', () => resolve())));
  try {
    const next = (w: Worker) => new Promise<unknown>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await Promise.all(workers.map(next));
    const rates = await Promise.all(workers.map((w) => { const p = next(w); w.postMessage('go'); return p; }));
    // each lane has released its sessions and exits by itself
    await Promise.all(exited);
    return (rates as number[]).reduce((a, b) => a + b, 0);
  } finally {
    // only on failure is a lane still running here
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Engine lanes x intra-op threads per lane. */
type Layout = [lanes: number, threads: number];
/** An engine rate (images/s), its layout as a label ("2x1") and as numbers. */
interface EngineRate { rate: number; layout: string; lanes: Layout }

/**
 * The engine's best on the server's cores: `cores` threads as one session (1xN), and `cores` one-thread
 * lanes side by side (Nx1, what `--lanes` does); the faster layout, labelled. Crops: the recognizer at the
 * server's batch; photos: the whole pipeline, one photo at a time per lane.
 */
async function engineBest(model: string, work: LaneWork, cores: number, seconds: number, only: Layout | null = null): Promise<EngineRate> {
  const layouts: Layout[] = only ? [only] : cores > 1 ? [[1, cores], [cores, 1]] : [[1, 1]];
  let best: EngineRate = { rate: 0, layout: '', lanes: layouts[0]! };
  for (const [lanes, threads] of layouts) {
    const rate = await engineLanes(model, work, threads, lanes, seconds);
    if (rate > best.rate) best = { rate, layout: `${lanes}x${threads}`, lanes: [lanes, threads] };
  }
  return best;
}

/** One block: the server loaded at saturation, then the engine at the server's batch, no HTTP. */
interface Block { load: Awaited<ReturnType<typeof load>>; engine: EngineRate; ratio: number }

/**
 * Server and engine take turns in `blocks` blocks (load, then engine, then load again ...), so a quiet or
 * loaded phase of the host weighs on both sides of a ratio alike; the first block picks the engine's
 * faster layout, later blocks time that one. Returns the blocks and the one with the median ratio.
 */
async function pairedBlocks(blocks: number, serverLoad: () => ReturnType<typeof load>, engine: (meanBatch: number, layout: Layout | null) => Promise<EngineRate>): Promise<{ all: Block[]; median: Block }> {
  const all: Block[] = [];
  let layout: Layout | null = null;
  for (let i = 0; i < blocks; i++) {
    const l = await serverLoad();
    const e = await engine(l.meanBatch, layout);
    layout = e.lanes;
    all.push({ load: l, engine: e, ratio: l.rate / e.rate });
  }
  // higher server/engine is better: of two middle blocks, the lower (medianBlock)
  return { all, median: medianBlock(all, (b) => b.ratio, 'higher') };
}

/** A row's ratio column: the median block's ratio and the range over the blocks, e.g. "0.90 (0.88-0.92)". */
function ratioText(b: { all: Block[]; median: Block }): string {
  const r = b.all.map((x) => x.ratio);
  return b.all.length > 1 ? `${b.median.ratio.toFixed(2)} (${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)})` : b.median.ratio.toFixed(2);
}

/** Aligned 112x112 crops (as JPEG, like a client would upload) made by the face pipeline from LFW photos. */
async function makeCrops(det: string, rec: string, files: string[], count: number): Promise<{ jpegs: Buffer[]; rgb: RgbImage[] }> {
  const fa = await FaceAnalyzer.load({ detector: det, recognizer: rec });
  const jpegs: Buffer[] = [];
  const rgb: RgbImage[] = [];
  for (const f of files) {
    if (rgb.length >= count) break;
    const img = await fa.decode(f);
    const [face] = await fa.detect(img, { maxFaces: 1 });
    if (!face) continue;
    const [crop] = fa.alignFaces(img, [face]);
    rgb.push(crop);
    jpegs.push(await sharp(Buffer.from(crop.data), { raw: { width: crop.width, height: crop.height, channels: 3 } }).jpeg({ quality: 95 }).toBuffer());
  }
  await fa.release();
  return { jpegs, rgb };
}

async function main(): Promise<void> {
  const values = benchArgs('server', 'HTTP serving (`faceopt serve`, loopback, autocannon) beside the raw engine, FP32 and INT8, batching on and off.', {
    fp32: { value: 'FILE', help: 'the FP32 recognizer (default: the shared mobileface)' },
    int8: { value: 'FILE', help: 'the INT8 recognizer (made by `faceopt optimize --int8`; rows skipped without it)' },
    detector: { value: 'FILE', help: 'the detector (default: the shared scrfd_500m)' },
    duration: { value: 'S', help: 'seconds per block', default: '5' },
    blocks: { value: 'N', help: 'server/engine turns per row', default: '3' },
    connections: { value: 'N', help: 'autocannon connections', default: '32' },
    'max-batch': { value: 'N', help: 'the server\'s largest recognizer batch (default: the server\'s own, 8 on the CPU)' },
    batching: { value: 'on|off|both', help: 'micro-batching in the server', default: 'both' },
    crops: { value: 'N', help: 'aligned crops to send', default: '64' },
    photos: { value: 'N', help: 'LFW photos to send', default: '200' },
    'no-lfw': { help: 'skip the LFW photo rows' },
    workers: { value: 'N', help: 'server processes', default: '1' },
    lanes: { value: 'N', help: 'inference lanes per worker (default: the server\'s layout)' },
    threads: { value: 'N', help: 'intra-op threads per lane (default: cores / (workers x lanes))' },
    'latency-lane': { help: 'with --lanes N: add the latency lane' },
  });
  const seconds = checkNumber('--duration', values.duration, { min: 1, max: 120, integer: true });
  const connections = checkNumber('--connections', values.connections, { min: 1, max: 1024, integer: true });
  const blocks = checkNumber('--blocks', values.blocks, { min: 1, max: 20, integer: true });
  const cores = availableCores();
  const workers = checkNumber('--workers', values.workers, { min: 1, max: 64, integer: true });
  // the layout `faceopt serve` resolves from the same flags (its default unless --lanes or --threads say otherwise)
  const layout = resolveServerConfig({
    workers,
    ...(values.lanes !== undefined ? { lanes: checkNumber('--lanes', values.lanes, { min: 1, max: 64, integer: true }) } : {}),
    ...(values.threads !== undefined ? { intraOpThreads: checkNumber('--threads', values.threads, { min: 1, max: 256, integer: true }) } : {}),
    ...(values['latency-lane'] ? { latencyLane: true } : {}),
    ...(values['max-batch'] !== undefined ? { batch: { maxBatch: checkNumber('--max-batch', values['max-batch'], { min: 1, max: 1024, integer: true }) } } : {}),
  });
  const { lanes, intraOpThreads: threads } = layout;
  const { maxBatch } = layout.batch;
  const latencyLane = layout.latencyLaneThreads !== null;
  // every flag is checked before anything is printed or prepared
  const batchingArg = values.batching;
  if (!['on', 'off', 'both'].includes(batchingArg)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'on, off or both', name: '--batching', received: batchingArg });
  const data = benchData('bench:server', { detector: values.detector, recognizer: values.fp32 });
  const { det, rec: fp32, lfw } = data;
  const files = lfwPhotos(lfw);
  const photoCount = checkNumber('--photos', values.photos, { min: 1, max: files.length, integer: true });
  const cropCount = checkNumber('--crops', values.crops, { min: 1, max: 1000, integer: true });

  process.stdout.write(`faceopt bench:server — onnxruntime ${RUNTIME_VERSION}, ${cores} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg()[0].toFixed(2)}, server: ${workers} worker(s) x ${lanes} lane(s) x ${threads} intra-op thread(s)${latencyLane ? ` + a latency lane of ${lanes * threads}` : ''}\n`);
  process.stdout.write(`autocannon: ${connections} connections, ${seconds} s per block after 1 s warm-up, loopback, cache off; POST /embed multipart \`file\`; server and engine take turns in ${blocks} block(s) per row\n\n`);
  const crops = await makeCrops(det, fp32, files, cropCount);
  const photos = files.slice(0, photoCount).map((f) => readFileSync(f));
  const cropBodies = crops.jpegs.map(multipartBody);
  const photoBodies = photos.map(multipartBody);

  const batchingModes = batchingArg === 'both' ? [true, false] : [batchingArg === 'on'];
  const variants: [string, string | null][] = [['fp32', fp32], ['int8', values.int8 ?? null]];
  const rows: Row[] = [];
  const notes: string[] = [];
  const goals: string[] = [];
  for (const [variant, rec] of variants) {
    if (!rec || !existsSync(rec)) {
      notes.push(`${variant}: skipped (${rec ? `${rec} not found` : 'pass --int8 FILE, made by `faceopt optimize --int8`'})`);
      continue;
    }
    for (const batching of [true, false].filter((b) => batchingModes.includes(b))) {
      const common = ['--threads', String(threads), '--workers', String(workers), '--lanes', String(lanes), ...(latencyLane ? ['--latency-lane'] : ['--no-latency-lane'])];
      const server = await startServer(det, rec, batching ? ['--max-batch', String(maxBatch), ...common] : ['--no-batching', ...common]);
      const label = { variant, batching: batching ? `on (max ${maxBatch})` : 'off' };
      notes.push(`${variant}, batching ${batching ? 'on' : 'off'}: start to /ready ${(server.readyMs / 1000).toFixed(2)} s (${path.basename(det)} + ${path.basename(rec)})`);
      try {
        // the server stays up while the engine runs (idle: its sessions do not spin)
        const cores = workers * lanes * threads;
        const engineSeconds = Math.min(seconds, 4);
        const cb = await pairedBlocks(blocks, () => load(server.base, '/embed?embed_only=true', cropBodies, seconds, connections, { pid: workers === 1 ? server.proc.pid : undefined }),
          (meanBatch, only) => engineBest(rec, { kind: 'crops', crops: crops.rgb, batch: Math.max(1, Math.round(meanBatch)) }, cores, engineSeconds, only));
        const c = cb.median.load;
        if (c.cpu) notes.push(`${variant}, batching ${batching ? 'on' : 'off'}, crops at saturation: ${c.cpu}`);
        if (batching && c.spread) notes.push(`${variant}, crops at saturation, recognizer runs by batch size: ${c.spread}`);
        if (blocks > 1) notes.push(`${variant}, batching ${batching ? 'on' : 'off'}, crops by block (req/s / engine img/s): ${cb.all.map((b) => `${b.load.rate.toFixed(1)} / ${b.engine.rate.toFixed(1)} = ${b.ratio.toFixed(2)}`).join(', ')}`);
        const tb = batching ? await tailBlocks(server.base, cropBodies, blocks, Math.max(seconds, 10), connections, lanes) : null;
        if (tb && blocks > 1) {
          const by = (k: 'constant' | 'poisson') => tb.all.map((b) => `${b.saturation.toFixed(1)} -> ${b[k].r.p50.toFixed(0)} / ${b[k].r.p99.toFixed(0)} = ${b[k].ratio.toFixed(2)}${k === 'poisson' ? ` (ideal ${b.floor.toFixed(2)})` : ''}${b.steady ? '' : ` [host ${b.after < b.saturation ? 'slowed' : 'sped up'}: ${b.after.toFixed(1)} after]`}`).join(', ');
          notes.push(`${variant}, crops, evenly spaced at 80% by block (saturation req/s -> p50 / p99 ms = p99/p50): ${by('constant')}`);
          notes.push(`${variant}, crops, Poisson at 80% by block (saturation req/s -> p50 / p99 ms = p99/p50, ideal ${lanes}-lane FIFO under the same arrivals): ${by('poisson')}`);
          const over = `the saturation rates before and after differed by more than ${Math.round((STEADY_LOAD / 0.8 - 1) * 100)}%`;
          if (!tb.steady) notes.push(`${variant}, crops @80%: the host changed pace in every block (${over}); all blocks counted`);
          else if (tb.counted < tb.all.length) notes.push(`${variant}, crops @80%: ${tb.all.length - tb.counted} of ${tb.all.length} block(s) left out of the medians (the host changed pace: ${over})`);
        }
        const pb = values['no-lfw'] ? null : await pairedBlocks(blocks, () => load(server.base, '/embed', photoBodies, seconds, connections),
          (_meanBatch, only) => engineBest(rec, { kind: 'photos', detector: det, photos }, cores, engineSeconds, only));
        // cache off means no hits: a hit would make a row measure the cache, not inference
        const hits = await cacheHits(server.base);
        if (hits > 0) {
          notes.push(`${variant}, batching ${batching ? 'on' : 'off'}: WARNING: the server counted ${hits} cache hits although started with the cache off: these rows measured the cache`);
          goals.push(`  ${variant}, batching ${batching ? 'on' : 'off'}: WARNING: ${hits} cache hits: the goal rows of this server are not valid`);
        }
        await server.stop();
        const e = cb.median.engine;
        rows.push({ ...label, input: 'aligned crops', 'req/s': c.rate.toFixed(1), 'p50 ms': String(c.r.latency.p50), 'p99 ms': String(c.r.latency.p99), 'non-2xx': String(c.r.non2xx + c.r.errors), 'mean batch': c.meanBatch.toFixed(1), 'engine img/s': `${e.rate.toFixed(1)} (b${Math.max(1, Math.round(c.meanBatch))}, ${e.layout})`, 'server/engine': ratioText(cb) });
        if (batching) {
          const v = `${variant} (${path.basename(rec)}), batching on`;
          goals.push(goalLine(`${v}: crops server/engine (${cb.median.load.rate.toFixed(1)} 2xx/s / ${e.rate.toFixed(1)} img/s)`, cb.median.ratio, '>= 0.90', cb.median.ratio >= 0.9, 3));
          if (tb) {
            const c80 = tb.constant.constant.ratio;
            // a request refused or dropped was not served at 80% load: its (often short) latency does not make a tail met
            const failed = tb.constant.constant.r.non2xx + tb.constant.constant.r.errors;
            goals.push(goalLine(`${v}: p99/p50 at 80% of saturation, evenly spaced arrivals${tb.steady ? '' : ' (the host changed pace in every block)'}${failed > 0 ? ` (${failed} of ${tb.constant.constant.r.sent} requests not answered 2xx)` : ''}`, c80, '<= 4', c80 <= 4 && failed === 0));
            goals.push(`  ${v}: p99/p50 at 80%, Poisson arrivals (reference, see docs/server.md): ${tb.poisson.poisson.ratio.toFixed(2)}; an ideal ${lanes}-lane FIFO server under the same arrivals: ${tb.poisson.floor.toFixed(2)}`);
          }
          if (variant === 'int8') goals.push(goalLine(`${v}: /embed crops req/s, 2xx (the engine alone: ${e.rate.toFixed(1)} img/s)`, c.rate, '>= 60, for an IResNet-50-shaped INT8 model', c.rate >= 60, 1));
        }
        if (tb) {
          const range = (k: 'constant' | 'poisson') => (tb.all.length > 1 ? ` (${Math.min(...tb.all.map((b) => b[k].ratio)).toFixed(2)}-${Math.max(...tb.all.map((b) => b[k].ratio)).toFixed(2)}${tb.counted < tb.all.length ? `; ${tb.counted} of ${tb.all.length} counted` : ''})` : '');
          for (const [k, input] of [['constant', 'crops, even @80%'], ['poisson', 'crops, Poisson @80%']] as const) {
            const t = tb[k][k];
            rows.push({ ...label, input, 'req/s': t.r.rate.toFixed(1), 'p50 ms': t.r.p50.toFixed(0), 'p99 ms': t.r.p99.toFixed(0), 'non-2xx': String(t.r.non2xx + t.r.errors), 'mean batch': t.meanBatch.toFixed(1), 'p99/p50': `${t.ratio.toFixed(2)}${range(k)}` });
          }
        }
        if (pb) {
          const p = pb.median.load;
          rows.push({ ...label, input: 'LFW photos', 'req/s': p.rate.toFixed(1), 'p50 ms': String(p.r.latency.p50), 'p99 ms': String(p.r.latency.p99), 'non-2xx': String(p.r.non2xx + p.r.errors), 'mean batch': p.meanBatch.toFixed(1), 'engine img/s': `${pb.median.engine.rate.toFixed(1)} (pipeline, ${pb.median.engine.layout})`, 'server/engine': ratioText(pb) });
        }
      } finally {
        if (server.proc.exitCode === null) await server.stop();
      }
    }
  }
  process.stdout.write(`${table(rows)}\n`);
  process.stdout.write('\nengine img/s: the same model in this process, no HTTP; crops: recognizer only on decoded crops at the server\'s mean batch, the faster of\n');
  process.stdout.write('one session with all the server\'s threads (1xN) and N one-thread sessions side by side (Nx1);\n');
  process.stdout.write('LFW: decode + detect + align + embed, one photo at a time per lane, the faster of 1xN and Nx1. server/engine = req/s / engine img/s.\n');
  process.stdout.write('Each row: server load and engine take turns (the first block picks the engine layout); the row shows the block with the median\n');
  process.stdout.write('server/engine (of two middle blocks, the lower) and, in brackets, the range over the blocks.\n');
  process.stdout.write(`even / Poisson @80%: per block, the saturation rate again (3 s, ${connections} connections), then open-loop arrivals at 80% of it for\n`);
  process.stdout.write(`${Math.max(seconds, 10)} s each, evenly spaced (as wrk2 -R) and then Poisson (as MLPerf's server scenario); latency from each request's\n`);
  process.stdout.write(`scheduled arrival; the saturation rate measured after each block checks the host kept its pace (80% of the higher rate <= ${Math.round(STEADY_LOAD * 100)}%\n`);
  process.stdout.write('of the lower of the two, else the block is left out of the median). Each row shows the block with the median p99/p50 (of two middle blocks, the higher) and the range.\n');
  process.stdout.write('req/s: 2xx answers per second (non-2xx answers, 503s included, are counted in their column, not as served). non-2xx includes 503s.\n');
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  if (goals.length > 0) process.stdout.write(`\ngoals (issue 7; the median block of each row, one run on this machine):\n${goals.join('\n')}\n`);
}

/** `  what: value (goal goal): met|NOT met`. */
function goalLine(what: string, value: number, goal: string, met: boolean, digits = 2): string {
  return `  ${what}: ${value.toFixed(digits)} (goal ${goal}): ${met ? 'met' : 'NOT met'}`;
}

await main();
