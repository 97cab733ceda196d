/**
 * The server's small parts on their own: settings and their errors, the micro-batcher (batch forming,
 * order, deadlines, errors), admission (bound, Retry-After, slot held until work settles), the LRU,
 * content sniffing, and listen failures as coded errors.
 */
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { Admission, Semaphore } from '../../server/admission.js';
import { MicroBatcher } from '../../server/batcher.js';
import { LruCache } from '../../server/cache.js';
import { autoLanes, availableCores, resolveServerConfig } from '../../server/config.js';
import { faceQuery, fromBase64, sniffFormat } from '../../server/input.js';
import { bindError } from '../../server/serve.js';
import { isConfigExit } from '../../server/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('resolveServerConfig', () => {
  it('defaults: loopback:5555, batching on, threads = cores / (workers x lanes)', () => {
    const c = resolveServerConfig();
    expect(c).toMatchObject({ host: '127.0.0.1', port: 5555, workers: 1, apiKey: null, batch: { maxBatch: 8, maxWaitMs: 2 } });
    // larger batches keep paying on a GPU; an explicit setting wins everywhere
    expect(resolveServerConfig({ provider: 'cuda' }).batch.maxBatch).toBe(32);
    expect(resolveServerConfig({ provider: 'tensorrt' }).batch.maxBatch).toBe(32);
    expect(resolveServerConfig({ batch: { maxBatch: 32 } }).batch.maxBatch).toBe(32);
    expect(c.intraOpThreads).toBe(Math.max(1, Math.floor(availableCores() / c.lanes)));
    expect(resolveServerConfig({ workers: 64 }).intraOpThreads).toBe(Math.max(1, Math.floor(availableCores() / 64)));
    expect(resolveServerConfig({ lanes: 2 }).intraOpThreads).toBe(Math.max(1, Math.floor(availableCores() / 2)));
  });
  it('lanes: two plus a latency lane by default where a worker has 2+ cores, else one; explicit settings win', () => {
    expect(autoLanes({}, true, 2)).toEqual({ lanes: 2, latencyLane: true });
    expect(autoLanes({}, true, 1)).toEqual({ lanes: 1, latencyLane: false });
    expect(autoLanes({}, false, 8)).toEqual({ lanes: 1, latencyLane: false });
    expect(autoLanes({ intraOpThreads: 1 }, true, 8)).toEqual({ lanes: 1, latencyLane: false });
    expect(autoLanes({ provider: 'tensorrt' }, true, 16)).toEqual({ lanes: 1, latencyLane: false });
    const c = resolveServerConfig();
    const cores = availableCores();
    if (cores >= 2) {
      expect(c).toMatchObject({ lanes: 2, intraOpThreads: Math.floor(cores / 2), latencyLaneThreads: 2 * Math.floor(cores / 2) });
    } else {
      expect(c).toMatchObject({ lanes: 1, latencyLaneThreads: null });
    }
    expect(resolveServerConfig({ lanes: 1 })).toMatchObject({ lanes: 1, latencyLaneThreads: null });
    expect(resolveServerConfig({ lanes: 3, intraOpThreads: 1 })).toMatchObject({ lanes: 3, latencyLaneThreads: null });
    expect(resolveServerConfig({ lanes: 3, intraOpThreads: 1, latencyLane: true })).toMatchObject({ lanes: 3, latencyLaneThreads: 3 });
    expect(resolveServerConfig({ latencyLane: false }).latencyLaneThreads).toBeNull();
    expect(resolveServerConfig({ intraOpThreads: 1 })).toMatchObject({ lanes: 1, latencyLaneThreads: null });
    // resolving a resolved config gives it back (buildApp resolves what `faceopt serve` resolved; the
    // explicit --lanes 2 --threads 1 --latency-lane used to lose its latency lane there)
    for (const input of [{ lanes: 2, intraOpThreads: 1, latencyLane: true }, { lanes: 2, intraOpThreads: 1 }, {}, { lanes: 1 }]) {
      const once = resolveServerConfig(input);
      expect(resolveServerConfig(once)).toEqual(once);
    }
  });
  it('names the setting in its error', () => {
    for (const [input, text] of [
      [{ port: 70000 }, 'Expected integer between 0 and 65535 for --port but received 70000'],
      [{ workers: 0 }, 'for --workers but received 0'],
      [{ batch: { maxBatch: 0 } }, 'for --max-batch but received 0'],
      [{ apiKey: 'short' }, 'API key of at least 8 characters'],
      [{ apiKey: 12345678 }, 'an API key string'], // never "no key" (auth off) for a value of the wrong type
      [{ logLevel: 'loud' }, 'for log level'],
      [{ lanes: 0 }, 'for --lanes but received 0'],
      [{ lanes: 2, inferenceThread: false }, 'without the inference thread'],
      [{ lanes: 1, latencyLane: true }, '--lanes 2 or more with --latency-lane'],
      // a server-wide 0 answered every request with every anchor (the requests' own minimum is 0.05)
      [{ detThreshold: 0 }, 'between 0.05 and 1 for --det-threshold but received 0'],
      [{ cache: { redisUrl: 'localhost:6379' } }, 'Expected a redis:// or rediss:// URL, e.g. redis://localhost:6379 (or /N for database N) for the Redis URL (--redis-url or REDIS_URL) but received localhost:6379.'],
      [{ cache: { redisUrl: 'redis://localhost:6379/cache' } }, 'but received redis://localhost:6379/cache.'],
      [{ cache: { redisUrl: 'http://cache:6379' } }, 'but received http://cache:6379.'],
      // unparseable (no host after the credentials): refused, and the password is not printed
      [{ cache: { redisUrl: 'redis://user:hunter22@/0' } }, 'but received redis://***@/0.'],
    ] as const) {
      expect(() => resolveServerConfig(input as never)).toThrow(text);
    }
    for (const ok of ['redis://localhost:6379', 'redis://localhost:6379/', 'rediss://user:pw@cache.example:6380/2', 'REDIS://127.0.0.1']) {
      expect(resolveServerConfig({ cache: { redisUrl: ok } }).cache.redisUrl).toBe(ok);
    }
  });
});

describe('MicroBatcher', () => {
  it('forms batches of up to maxBatch from concurrent submits and keeps each output with its input', async () => {
    const sizes: number[] = [];
    const b = new MicroBatcher<number, number>({
      name: 't', maxBatch: 4, maxWaitMs: 5,
      run: async (xs) => { sizes.push(xs.length); await sleep(10); return xs.map((x) => x * 10); },
    });
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(i)));
    expect(out).toEqual(Array.from({ length: 10 }, (_, i) => i * 10));
    expect(sizes.reduce((a, s) => a + s, 0)).toBe(10);
    expect(Math.max(...sizes)).toBe(4);
    expect(sizes.length).toBeLessThanOrEqual(4);
  });
  it('maxBatch 1 is a serial lane: never two runs at once', async () => {
    let running = 0;
    let peak = 0;
    const b = new MicroBatcher<number, number>({
      name: 't', maxBatch: 1, maxWaitMs: 0,
      run: async (xs) => { running++; peak = Math.max(peak, running); await sleep(5); running--; return xs; },
    });
    await Promise.all([1, 2, 3, 4, 5].map((x) => b.submit(x)));
    expect(peak).toBe(1);
  });
  it('lanes: up to `lanes` runs at once, leftovers go to the next free lane, outputs stay with inputs', async () => {
    let running = 0;
    let peak = 0;
    const sizes: number[] = [];
    const b = new MicroBatcher<number, number>({
      name: 't', maxBatch: 4, maxWaitMs: 1, lanes: 2,
      run: async (xs) => { running++; peak = Math.max(peak, running); sizes.push(xs.length); await sleep(20); running--; return xs.map((x) => x + 100); },
    });
    const out = await Promise.all(Array.from({ length: 12 }, (_, i) => b.submit(i)));
    expect(out).toEqual(Array.from({ length: 12 }, (_, i) => i + 100));
    expect(peak).toBe(2);
    expect(sizes.reduce((a, n) => a + n, 0)).toBe(12);
    expect(sizes.slice(0, 2)).toEqual([4, 4]); // the burst fills both lanes at once
    expect(Math.max(...sizes)).toBe(4);
    await b.idle();
    expect(b.busy).toBe(false);
  });
  it('lanes: a run takes at most its share of what waits or runs, so a burst is split between lanes', async () => {
    const sizes: number[] = [];
    const b = new MicroBatcher<number, number>({
      name: 't', maxBatch: 32, maxWaitMs: 1, lanes: 2,
      run: async (xs) => { sizes.push(xs.length); await sleep(20); return xs; },
    });
    await Promise.all(Array.from({ length: 16 }, (_, i) => b.submit(i)));
    expect(sizes).toEqual([8, 8]);
    // one lane: the whole burst in one run
    const one: number[] = [];
    const c = new MicroBatcher<number, number>({ name: 't', maxBatch: 32, maxWaitMs: 1, run: async (xs) => { one.push(xs.length); return xs; } });
    await Promise.all(Array.from({ length: 16 }, (_, i) => c.submit(i)));
    expect(one).toEqual([16]);
  });
  it('a failed run rejects only its own items; later items still run', async () => {
    let calls = 0;
    const b = new MicroBatcher<number, number>({
      name: 't', maxBatch: 2, maxWaitMs: 0,
      run: async (xs) => { calls++; if (calls === 1) throw new Error('boom'); return xs; },
    });
    const first = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await b.submit(3)).toBe(3);
  });
  it('drops items whose deadline passed before their run, with FACEOPT_ERR_TIMEOUT', async () => {
    const seen: number[] = [];
    const b = new MicroBatcher<number, number>({ name: 't', maxBatch: 1, maxWaitMs: 0, run: async (xs) => { seen.push(...xs); await sleep(50); return xs; } });
    const a = b.submit(1);
    const late = b.submit(2, { at: performance.now() + 10, ms: 10 });
    await expect(a).resolves.toBe(1);
    await expect(late).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_TIMEOUT'));
    expect(seen).toEqual([1]);
    await b.idle();
  });
});

describe('Admission', () => {
  it('refuses past maxQueue with OVERLOADED and a Retry-After, holds the slot until the work settles', async () => {
    const adm = new Admission(2, 50);
    let finish!: () => void;
    const gate = new Promise<void>((r) => { finish = r; });
    const a = adm.run(() => gate);
    const b = adm.run(() => gate);
    await expect(adm.run(async () => 1)).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_OVERLOADED') && Number((e as unknown as { params: { retryAfter: number } }).params.retryAfter) >= 1);
    await expect(a).rejects.toSatisfy((e: unknown) => isFaceoptError(e, 'FACEOPT_ERR_TIMEOUT')); // 50 ms deadline
    await expect(b).rejects.toBeDefined();
    expect(adm.inflight).toBe(2); // timed out but still working: slots stay taken
    finish();
    await adm.drained();
    expect(adm.inflight).toBe(0);
    await expect(adm.run(async () => 7)).resolves.toBe(7);
  });
  it('Semaphore hands slots over in order', async () => {
    const s = new Semaphore(1);
    const order: number[] = [];
    const r1 = await s.acquire();
    const p2 = s.acquire().then((r) => { order.push(2); return r; });
    const p3 = s.acquire().then((r) => { order.push(3); return r; });
    expect(s.waiting).toBe(2);
    r1();
    (await p2)();
    (await p3)();
    expect(order).toEqual([2, 3]);
  });
});

describe('LruCache', () => {
  it('evicts the least recently used entry', () => {
    const c = new LruCache<number>(2);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1);
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.size).toBe(2);
  });
});

describe('input', () => {
  it('sniffs formats from magic bytes', () => {
    expect(sniffFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniffFormat(Buffer.from('\x89PNG\r\n\x1a\n....', 'latin1'))).toBe('png');
    expect(sniffFormat(Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1'))).toBe('webp');
    expect(sniffFormat(Buffer.from('GIF89a'))).toBe('gif');
    expect(sniffFormat(Buffer.from('%PDF-1.7'))).toBe('pdf');
    expect(sniffFormat(Buffer.from('  <svg xmlns="x">'))).toBe('svg/xml/html');
    expect(sniffFormat(Buffer.from('hello'))).toBeNull();
  });
  it('base64 and data URLs decode; other text is refused by name', () => {
    expect(fromBase64('aGVsbG8=', 'image').toString()).toBe('hello');
    expect(fromBase64('data:image/jpeg;base64,aGVs\nbG8=', 'image').toString()).toBe('hello');
    expect(() => fromBase64('he llo!', 'images[2]')).toThrow('for images[2]');
    expect(() => fromBase64(5, 'image')).toThrow('Expected a base64 string for image but received number');
  });
  it('options: InsightFace-REST names, strings from forms, one source per option', () => {
    const query = (values: Record<string, unknown>) => ({ part: 'query parameter' as const, values });
    const form = (values: Record<string, unknown>) => ({ part: 'form field' as const, values });
    expect(faceQuery(query({ threshold: '0.3', limit_faces: '2' }), { part: 'body field', values: { embed_only: true, min_face_size: 20 } })).toEqual({ threshold: 0.3, limitFaces: 2, embedOnly: true, minFaceSize: 20 });
    expect(() => faceQuery(query({ threshold: '0.3' }), form({ threshold: '0.6' }))).toThrow('for option threshold but received it as a query parameter and as a form field');
    expect(() => faceQuery(query({ limit_faces: '1.5' }))).toThrow('for query parameter limit_faces');
    // one rule for every channel: decimal numbers in the schema's range, exactly true or false
    for (const src of [query, form]) {
      expect(() => faceQuery(src({ threshold: '0x1' }))).toThrow(/^Expected number between 0.05 and 1 for (query parameter|form field) threshold but received 0x1/);
      expect(() => faceQuery(src({ threshold: '0.01' }))).toThrow('between 0.05 and 1');
      expect(() => faceQuery(src({ embed_only: 'TRUE' }))).toThrow('Expected true or false');
      expect(() => faceQuery(src({ min_face_size: '1e9' }))).toThrow('between 0 and 100000');
    }
  });
});

describe('bindError', () => {
  const sys = (code: string) => Object.assign(new Error(`listen ${code}`), { code });
  it('turns each listen failure a user can fix into a coded usage error naming the fix', () => {
    const cases: [string, string][] = [
      ['EADDRINUSE', 'pick another --port or stop it'],
      ['EACCES', 'ports below 1024 need root'],
      ['EADDRNOTAVAIL', 'an address of this machine'],
      ['ENOTFOUND', 'a host name that resolves'],
      ['EAI_AGAIN', 'a host name that resolves'],
    ];
    for (const [code, fix] of cases) {
      const e = bindError(sys(code), 'example.invalid', 80);
      expect(isFaceoptError(e) && e.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
      expect((e as Error).message).toContain(fix);
      expect((e as Error).message).toContain(`received example.invalid:80 (${code})`);
    }
  });
  it('passes anything else through unchanged', () => {
    const other = sys('EMFILE');
    expect(bindError(other, '127.0.0.1', 5555)).toBe(other);
    const plain = new Error('no code');
    expect(bindError(plain, '127.0.0.1', 5555)).toBe(plain);
  });
});

describe('isConfigExit', () => {
  it('a worker that failed for its configuration or gates stops the cluster; internal and temporary failures are restarted', () => {
    for (const code of [3, 64, 65, 66, 69, 73, 78]) expect(isConfigExit(code), String(code)).toBe(true);
    for (const code of [null, 0, 1, 2, 70, 75, 134]) expect(isConfigExit(code), String(code)).toBe(false);
  });
});
