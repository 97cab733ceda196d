/**
 * Request input checks at their edges (server/input.ts): an empty image is named as such, WebP is taken,
 * base64 JSON images get the same type check as uploads, the image count is bounded for JSON and refused
 * at the first extra multipart file, multipart requests leave no timer behind, and over a real socket the multipart body limit is exact (no
 * slack) and a body declared over it is refused before it is sent.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import type { FaceoptApp } from '../../server/app.js';
import { checkImageBytes } from '../../server/input.js';
import { fakeApp, listenLoopback, multipart, solidImage, writeChunkedPost } from './helpers.js';

let app: FaceoptApp | null = null;
afterEach(async () => { await app?.close(); app = null; });

async function listening(config: Parameters<typeof fakeApp>[0]): Promise<number> {
  ({ app } = await fakeApp(config));
  return listenLoopback(app);
}

/** Write `request` (head and as much body as given) and collect the answer until the server closes or `ms` passes. */
function exchange(port: number, request: (s: net.Socket) => void, ms = 20_000): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const s = net.connect(port, '127.0.0.1', () => request(s));
    s.on('data', (d) => { text += d.toString('latin1'); });
    s.on('close', () => resolve(text));
    s.on('error', () => resolve(text));
    setTimeout(() => s.destroy(), ms);
  });
}

describe('checkImageBytes', () => {
  it('an empty image is refused as empty; WebP, PNG and JPEG bytes pass', async () => {
    let thrown: unknown = null;
    try { checkImageBytes({ field: 'file', source: 'f.jpg', bytes: Buffer.alloc(0) }, 'image/jpeg'); } catch (e) { thrown = e; }
    expect(isFaceoptError(thrown, 'FACEOPT_ERR_BAD_IMAGE')).toBe(true);
    expect((thrown as Error).message).toContain('f.jpg: it is empty');
    for (const format of ['webp', 'png', 'jpeg'] as const) {
      const bytes = await solidImage([10, 200, 30], 32, format);
      expect(() => checkImageBytes({ field: 'file', source: format, bytes }, `image/${format}`), format).not.toThrow();
    }
  });
});

describe('request images', () => {
  it('a WebP body is served', async () => {
    ({ app } = await fakeApp());
    const res = await app.inject({ method: 'POST', url: '/v1/embed', payload: await solidImage([120, 80, 40], 64, 'webp'), headers: { 'content-type': 'image/webp' } });
    expect(res.statusCode).toBe(200);
  });

  it('a base64 JSON image is type-checked like an upload: a PDF -> 415', async () => {
    ({ app } = await fakeApp());
    const pdf = Buffer.from('%PDF-1.7\n1 0 obj\n<<>>\nendobj\n').toString('base64');
    const res = await app.inject({ method: 'POST', url: '/v1/embed', payload: { image: pdf } });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('FACEOPT_ERR_UNSUPPORTED_MEDIA');
    expect(res.json().error.message).toContain('pdf (from the file');
  });

  it('/v1/extract: more JSON images than --max-images -> 400 naming the bound', async () => {
    ({ app } = await fakeApp({ maxImagesPerRequest: 2 }));
    const img = (await solidImage([120, 80, 40])).toString('base64');
    const ok = await app.inject({ method: 'POST', url: '/v1/extract', payload: { images: { data: [img, img] } } });
    expect(ok.statusCode).toBe(200);
    const res = await app.inject({ method: 'POST', url: '/v1/extract', payload: { images: { data: [img, img, img] } } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(res.json().error.message).toMatch(/1 to 2 image\(s\).*received 3/);
  });

  it('multipart requests leave no timer running once answered (their body-read deadline is cleared)', async () => {
    ({ app } = await fakeApp({ cache: { memoryEntries: 0 } }));
    // the fewest timers seen over a few samples: the test runner's own short-lived timers come and go
    const timers = async () => {
      let fewest = Infinity;
      for (let i = 0; i < 5; i++) {
        fewest = Math.min(fewest, process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length);
        await new Promise((r) => setTimeout(r, 5));
      }
      return fewest;
    };
    const { payload, headers } = await multipart([{ name: 'file', data: await solidImage([120, 80, 40]) }]);
    expect((await app.inject({ method: 'POST', url: '/v1/embed', payload, headers })).statusCode).toBe(200);
    const before = await timers();
    const n = 6;
    for (let i = 0; i < n; i++) expect((await app.inject({ method: 'POST', url: '/v1/embed', payload, headers })).statusCode).toBe(200);
    // one left behind per request would stay for the whole request timeout
    expect(await timers() - before).toBeLessThan(n);
  });

  it('multipart: the first file over the route\'s count is refused as one too many', async () => {
    ({ app } = await fakeApp());
    const img = await solidImage([120, 80, 40]);
    const { payload, headers } = await multipart([{ name: 'file', data: img }, { name: 'file', data: img }]);
    const res = await app.inject({ method: 'POST', url: '/v1/embed', payload, headers });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toContain('at most 1 image(s)');
  });
});

describe('multipart body limit over a socket', () => {
  it('a multipart body declared over --body-limit is refused at once with 413, not left to time out', async () => {
    const port = await listening({ bodyLimit: 100_000, timeoutMs: 3000 });
    const boundary = 'declareddeclared';
    const got = await exchange(port, (s) => {
      // the head and a little of the body; the rest never comes
      s.write(`POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100001\r\n\r\n`);
      s.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff`);
    });
    expect(got).toMatch(/^HTTP\/1\.1 413/);
    expect(got).toContain('FACEOPT_ERR_PAYLOAD_TOO_LARGE');
  });

  it('a chunked multipart body a little over --body-limit in all (each file under it) -> 413', async () => {
    const limit = 100_000;
    const port = await listening({ bodyLimit: limit });
    const jpeg = await solidImage([200, 120, 90]);
    const build = (pad: number) => multipart([0, 1].map(() => ({ name: 'file', data: Buffer.concat([jpeg, Buffer.alloc(pad, 7)]) })));
    const overhead = (await build(0)).payload.length;
    const { payload, headers } = await build(Math.ceil((limit + 2000 - overhead) / 2)); // about 2 KB over in all
    expect(payload.length).toBeGreaterThan(limit);
    expect(payload.length).toBeLessThan(limit + 4000);
    const got = await exchange(port, (s) => writeChunkedPost(s, '/v1/extract', headers['content-type']!, payload), 8000);
    expect(got).toMatch(/^HTTP\/1\.1 413/);
  });
});
