/**
 * Server test helpers: a synthetic face backend (real sharp decoding, a fake "face" wherever the photo is
 * not black, a colour-derived embedding, configurable delays) so routes, limits, batching and overload
 * run without model files; fake ServedModels; image and multipart builders; free ports; and a real
 * redis-server started on a free port (or a printed reason to skip).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll } from 'vitest';
import { l2normalize } from '../../pipeline/faces/arcface.js';
import { decodeImage } from '../../pipeline/faces/decode.js';
import { resizeBilinear } from '../../pipeline/faces/preprocess.js';
import type { DetectOptions } from '../../pipeline/faces/scrfd.js';
import type { DetectedFace, RgbImage } from '../../pipeline/faces/types.js';
import { buildApp, type AppOptions, type FaceoptApp } from '../../server/app.js';
import type { FaceBackend, LaneEvents } from '../../server/backend.js';
import type { ServerConfigInput } from '../../server/config.js';
import type { ServedModel, ServedModels } from '../../server/models.js';

export interface FakeOptions {
  embedDelayMs?: number;
  detectDelayMs?: number;
  warmDelayMs?: number;
  maxPixels?: number;
  /** Throw a plain Error from embed (an internal failure). */
  failEmbed?: boolean;
  /** Throw this from embed (a coded failure, e.g. the inference thread's). */
  embedError?: Error;
  /** Inference lanes the backend offers (default 1). */
  lanes?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function meanRgb(img: RgbImage): [number, number, number] {
  const s = [0, 0, 0];
  for (let i = 0; i < img.data.length; i += 3) { s[0] += img.data[i]; s[1] += img.data[i + 1]; s[2] += img.data[i + 2]; }
  const n = img.width * img.height;
  return [s[0] / n, s[1] / n, s[2] / n];
}

/** Synthetic backend: one centred face unless the photo is black; embedding = unit (R, G, B, 64). */
export class FakeBackend implements FaceBackend {
  readonly info = { detector: { path: '/fake/det.onnx', inputSize: [640, 640] as const }, recognizer: { path: '/fake/rec.onnx', inputSize: [112, 112] as const } };
  readonly batches: number[] = [];
  /** Most embed runs in flight at once, seen so far. */
  maxConcurrentEmbeds = 0;
  private embedsInFlight = 0;
  detections = 0;
  released = false;
  /** Whether an inference thread is alive (a test sets it, then tells the service through laneEvents). */
  healthy = true;
  laneEvents: LaneEvents = {};
  constructor(readonly opts: FakeOptions = {}) {}

  setLaneEvents(events: LaneEvents): void {
    this.laneEvents = events;
  }

  get lanes(): number {
    return this.opts.lanes ?? 1;
  }

  decode(bytes: Uint8Array, source: string): Promise<RgbImage> {
    return decodeImage(bytes, { source, maxPixels: this.opts.maxPixels ?? 16_000_000 });
  }

  async detect(img: RgbImage, opts: DetectOptions): Promise<DetectedFace[]> {
    if (this.opts.detectDelayMs) await sleep(this.opts.detectDelayMs);
    this.detections++;
    const [r, g, b] = meanRgb(img);
    if (r + g + b < 30 || 0.9 < (opts.threshold ?? 0.5)) return [];
    const w = img.width / 2, h = img.height / 2, x = img.width / 4, y = img.height / 4;
    if (opts.minFaceSize && (w < opts.minFaceSize || h < opts.minFaceSize)) return [];
    const kps: [number, number][] = [[x + w * 0.3, y + h * 0.4], [x + w * 0.7, y + h * 0.4], [x + w * 0.5, y + h * 0.6], [x + w * 0.35, y + h * 0.8], [x + w * 0.65, y + h * 0.8]];
    return [{ box: [x, y, x + w, y + h], score: 0.9, kps }];
  }

  align(img: RgbImage, faces: readonly DetectedFace[]): RgbImage[] {
    return faces.map(() => resizeBilinear(img, 112, 112));
  }

  async embed(crops: readonly RgbImage[]) {
    this.batches.push(crops.length);
    this.maxConcurrentEmbeds = Math.max(this.maxConcurrentEmbeds, ++this.embedsInFlight);
    try {
      if (this.opts.embedDelayMs) await sleep(this.opts.embedDelayMs);
    } finally {
      this.embedsInFlight--;
    }
    if (this.opts.failEmbed) throw new Error('synthetic failure with a secret stack');
    if (this.opts.embedError) throw this.opts.embedError;
    const out = crops.map((c) => l2normalize([...meanRgb(c), 64]));
    return { embeddings: out.map((o) => o.unit), norms: out.map((o) => o.norm) };
  }

  async warmUp(): Promise<void> {
    if (this.opts.warmDelayMs) await sleep(this.opts.warmDelayMs);
  }

  async release(): Promise<void> {
    this.released = true;
  }
}

function fakeModel(role: 'detector' | 'recognizer', verdict: ServedModel['verdict'] = null): ServedModel {
  return {
    role, variant: 'fake', path: `/fake/${role}.onnx`, sha256: (role === 'detector' ? 'd' : 'e').repeat(64), sizeBytes: 1,
    source: 'file', report: null, verdict, keyNumbers: null, reportMatchThreshold: null,
  };
}

/** ServedModels for the synthetic backend (match threshold 0.99: only near-identical colours match). */
export function fakeModels(id = 'fakefakefakefake'): ServedModels {
  return { detector: fakeModel('detector'), recognizer: fakeModel('recognizer'), matchThreshold: { value: 0.99, source: 'default' }, detSize: null, id, manifest: null };
}

/** Start `app` listening on a free loopback port; resolves with the port. */
export async function listenLoopback(app: FaceoptApp): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as net.AddressInfo).port;
}
/** An app over the synthetic backend, ready (unless `wait` is false), logging nothing. */
export async function fakeApp(config: ServerConfigInput = {}, fake: FakeBackend = new FakeBackend(), wait = true, extra: Pick<AppOptions, 'reclaimer'> = {}): Promise<{ app: FaceoptApp; fake: FakeBackend }> {
  const app = await buildApp({ logLevel: 'silent', ...config }, { models: fakeModels(), backend: async () => fake, ...extra });
  if (wait) await app.faceoptReady;
  return { app, fake };
}

/** A solid-colour JPEG (or PNG/WebP). */
export function solidImage(rgb: [number, number, number], size = 64, format: 'jpeg' | 'png' | 'webp' = 'jpeg'): Promise<Buffer> {
  return sharp({ create: { width: size, height: size, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })[format]().toBuffer();
}

export interface Part { name: string; data: Buffer | string; filename?: string; type?: string }

/** A multipart/form-data body and its content-type header, as fetch would send it. */
export async function multipart(parts: Part[]): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const form = new FormData();
  for (const p of parts) {
    if (typeof p.data === 'string' && p.filename === undefined) form.append(p.name, p.data);
    else form.append(p.name, new Blob([typeof p.data === 'string' ? p.data : new Uint8Array(p.data)], { type: p.type ?? 'image/jpeg' }), p.filename ?? 'image.jpg');
  }
  const req = new Request('http://localhost/', { method: 'POST', body: form });
  return { payload: Buffer.from(await req.arrayBuffer()), headers: { 'content-type': req.headers.get('content-type') ?? '' } };
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** True when `redis-server` is on PATH. */
export const HAS_REDIS = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
export const NO_REDIS_REASON = 'redis-server not installed (apt-get install -y redis-server); skipping Redis cache tests';

/** Start redis-server (on a free port, or `port`) without persistence; resolves once it accepts connections. */
export async function startRedis(fixedPort?: number): Promise<{ url: string; port: number; proc: ChildProcess; stop: () => Promise<void> }> {
  const port = fixedPort ?? await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const stop = () => new Promise<void>((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return { url: `redis://127.0.0.1:${port}`, port, proc, stop };
    await sleep(50);
  }
  await stop();
  throw new Error(`redis-server did not start on port ${port}`);
}

/**
 * A redis-server and a client of it for the enclosing describe block: started in beforeAll, stopped in
 * afterAll (resumed first if a test left it paused with SIGSTOP). Read `redis` and `client` inside tests.
 */
export function redisForSuite(): { readonly redis: Awaited<ReturnType<typeof startRedis>>; readonly client: Redis } {
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    if (redis?.proc.exitCode === null) redis.proc.kill('SIGCONT');
    await redis?.stop();
  });
  return { get redis() { return redis!; }, get client() { return client!; } };
}

/** Write a whole POST to `route` with a chunked body (16 KiB chunks and the terminating chunk) on socket `s`. */
export function writeChunkedPost(s: net.Socket, route: string, contentType: string, payload: Buffer): void {
  s.write(`POST ${route} HTTP/1.1\r\nHost: x\r\nContent-Type: ${contentType}\r\nTransfer-Encoding: chunked\r\n\r\n`);
  for (let i = 0; i < payload.length; i += 16_384) {
    const chunk = payload.subarray(i, i + 16_384);
    s.write(`${chunk.length.toString(16)}\r\n`);
    s.write(chunk);
    s.write('\r\n');
  }
  s.write('0\r\n\r\n');
}

/** Poll `fn` until it returns true (or throw after `ms`). */
export async function waitFor(fn: () => Promise<boolean> | boolean, ms = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
