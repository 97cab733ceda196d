/**
 * Multipart bodies over a real loopback socket: a client that stalls mid-body and hangs up after its 503
 * gives its admission slot back; the body limit holds for the whole request, not per file.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { FaceoptApp } from '../../server/app.js';
import { fakeApp, listenLoopback, multipart, solidImage, waitFor, writeChunkedPost } from './helpers.js';

let app: FaceoptApp | null = null;
afterEach(async () => { await app?.close(); app = null; });

async function listening(config: Parameters<typeof fakeApp>[0]): Promise<number> {
  ({ app } = await fakeApp(config));
  return listenLoopback(app);
}

/** Send a multipart head declaring `declared` body bytes, then only a little of it; resolves with what came back before `closeAfterMs`. */
function stalledUpload(port: number, declared: number, closeAfterMs: number): Promise<string> {
  const boundary = 'stallstallstall';
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
  return new Promise((resolve) => {
    let got = '';
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${declared}\r\n\r\n${head}\xff\xd8\xff${'x'.repeat(100)}`);
    });
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('error', () => undefined);
    setTimeout(() => { s.destroy(); resolve(got); }, closeAfterMs);
  });
}

describe('multipart bodies', () => {
  it('a client that stalls mid-body gets 503 at the deadline, and its slot is free again once it hangs up', async () => {
    const port = await listening({ maxQueue: 2, timeoutMs: 300 });
    const answers = await Promise.all([stalledUpload(port, 10_000, 800), stalledUpload(port, 10_000, 800)]);
    for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 503/);
    await waitFor(() => app!.faceopt.service.admission.inflight === 0, 3000, 'the stalled requests to leave the queue');
    const { payload, headers } = await multipart([{ name: 'file', data: await solidImage([200, 120, 90]) }]);
    const ok = await app!.inject({ method: 'POST', url: '/v1/embed', payload, headers });
    expect(ok.statusCode).toBe(200);
  });

  it('--body-limit holds for the whole multipart request: several files under it each, over it together -> 413', async () => {
    const port = await listening({ bodyLimit: 200_000 });
    const big = Buffer.concat([await solidImage([200, 120, 90]), Buffer.alloc(90_000, 7)]); // a JPEG with trailing bytes
    const { payload, headers } = await multipart([0, 1, 2].map(() => ({ name: 'file', data: big })));
    expect(payload.length).toBeGreaterThan(200_000);
    const r = await fetch(`http://127.0.0.1:${port}/v1/extract`, { method: 'POST', body: new Uint8Array(payload), headers });
    expect(r.status).toBe(413);
    const body = await r.json() as { error: { code: string; message: string } };
    expect(body.error.code).toBe('FACEOPT_ERR_PAYLOAD_TOO_LARGE');
    expect(body.error.message).toContain('200000');
    const two = await multipart([0, 1].map(() => ({ name: 'file', data: big })));
    expect(two.payload.length).toBeLessThan(200_000);
    expect((await fetch(`http://127.0.0.1:${port}/v1/extract`, { method: 'POST', body: new Uint8Array(two.payload), headers: two.headers })).status).toBe(200);
  });

  it('Expect: 100-continue with a body declared over the limit -> 413 at once, no 100 Continue; under it -> 100 then the answer', async () => {
    const port = await listening({ bodyLimit: 100_000 });
    const ask = (length: number, body: Buffer | null) => new Promise<string>((resolve) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () => s.write(`POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`));
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (body && got.startsWith('HTTP/1.1 100')) { s.write(body); body = null; }
      });
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
      setTimeout(() => s.destroy(), 5000);
    });
    const big = await ask(5_000_000, null);
    expect(big).toMatch(/^HTTP\/1\.1 413/);
    expect(big).toContain('FACEOPT_ERR_PAYLOAD_TOO_LARGE');
    const jpeg = await solidImage([200, 120, 90]);
    const ok = await ask(jpeg.length, jpeg);
    expect(ok).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
  });

  it('a form field refused before a large file: the answer comes, the rest of the body is dropped, the connection serves the next request', async () => {
    const port = await listening({ bodyLimit: 4_000_000 });
    const { payload, headers } = await multipart([{ name: 'treshold', data: '0.5' }, { name: 'file', data: Buffer.concat([await solidImage([200, 120, 90]), Buffer.alloc(3_000_000, 7)]) }]);
    const answers = await new Promise<string>((resolve) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(`POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: ${headers['content-type']}\r\nContent-Length: ${payload.length}\r\n\r\n`);
        s.write(payload);
        s.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
      s.on('data', (d) => { got += d.toString('latin1'); });
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
      setTimeout(() => s.destroy(), 8000);
    });
    const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['400', '200']);
    expect(answers).toContain('form field \\"treshold\\"');
  });

  it('a chunked multipart body over the limit -> 413 like a declared one, counted as received', async () => {
    const port = await listening({ bodyLimit: 100_000 });
    const { payload, headers } = await multipart([{ name: 'file', data: Buffer.concat([await solidImage([200, 120, 90]), Buffer.alloc(150_000, 7)]) }]);
    const got = await new Promise<string>((resolve) => {
      let text = '';
      const s = net.connect(port, '127.0.0.1', () => writeChunkedPost(s, '/v1/embed', headers['content-type']!, payload));
      s.on('data', (d) => { text += d.toString('latin1'); });
      s.on('close', () => resolve(text));
      s.on('error', () => resolve(text));
      setTimeout(() => s.destroy(), 8000);
    });
    expect(got).toMatch(/^HTTP\/1\.1 413/);
    expect(got).toMatch(/\r\nconnection: close\r\n/i);
  });

  it('Expect: 100-continue goes through the hooks: without the API key 401, not 413; the 413 is logged in the metrics', async () => {
    const port = await listening({ bodyLimit: 4096, apiKey: 'secret-key-123' });
    const head = (auth: string) => new Promise<string>((resolve) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () => s.write(`POST /v1/embed HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: image/jpeg\r\nContent-Length: 5000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`));
      s.on('data', (d) => { got += d.toString('latin1'); });
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      setTimeout(() => s.destroy(), 5000);
    });
    expect(await head('')).toMatch(/^HTTP\/1\.1 401/);
    expect(await head('Authorization: Bearer secret-key-123\r\n')).toMatch(/^HTTP\/1\.1 413/);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: 'Bearer secret-key-123' } })).text();
    expect(metrics).toMatch(/faceopt_http_requests_total\{[^}]*status="413"[^}]*\} 1/);
  });

  it('a bad query value is refused before the body is read or a queue slot is taken', async () => {
    const port = await listening({ timeoutMs: 5000 });
    const t0 = performance.now();
    const got = await new Promise<string>((resolve) => {
      let text = '';
      const s = net.connect(port, '127.0.0.1', () => s.write(`POST /v1/embed?threshold=0 HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\nContent-Length: 100000\r\n\r\n--zz\r\n`));
      s.on('data', (d) => { text += d.toString('latin1'); if (text.includes('}}')) { s.destroy(); resolve(text); } });
      s.on('error', () => resolve(text));
      setTimeout(() => { s.destroy(); resolve(text); }, 4000);
    });
    expect(got).toMatch(/^HTTP\/1\.1 400/);
    expect(got).toContain('for query parameter threshold');
    expect(performance.now() - t0).toBeLessThan(2000); // not after the 5 s deadline
  });

  it('a refused chunked body is dropped only up to the limit: past it the connection goes', async () => {
    const port = await listening({ bodyLimit: 100_000 });
    const { payload, headers } = await multipart([{ name: 'treshold', data: '0.5' }, { name: 'file', data: Buffer.alloc(2_000_000, 7) }]);
    const outcome = await new Promise<{ text: string; closed: boolean }>((resolve) => {
      let text = '';
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(`POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: ${headers['content-type']}\r\nTransfer-Encoding: chunked\r\n\r\n`);
        const send = (i: number): void => {
          if (i >= payload.length || s.destroyed) { if (!s.destroyed) s.write('0\r\n\r\n'); return; }
          const chunk = payload.subarray(i, i + 16_384);
          s.write(`${chunk.length.toString(16)}\r\n`);
          s.write(chunk);
          s.write('\r\n', () => send(i + 16_384));
        };
        send(0);
      });
      s.on('data', (d) => { text += d.toString('latin1'); });
      s.on('close', () => resolve({ text, closed: true }));
      s.on('error', () => undefined);
      setTimeout(() => { resolve({ text, closed: s.destroyed }); s.destroy(); }, 6000);
    });
    expect(outcome.text).toMatch(/^HTTP\/1\.1 400/);
    expect(outcome.closed).toBe(true);
  });

  it('Expect: 100-continue is answered after the other refusals that need no body: a compressed body gets 415 without 100', async () => {
    const port = await listening({});
    const got = await new Promise<string>((resolve) => {
      let text = '';
      const s = net.connect(port, '127.0.0.1', () => s.write('POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Encoding: gzip\r\nContent-Length: 500\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n'));
      s.on('data', (d) => { text += d.toString('latin1'); });
      s.on('close', () => resolve(text));
      s.on('error', () => resolve(text));
      setTimeout(() => s.destroy(), 4000);
    });
    expect(got).toMatch(/^HTTP\/1\.1 415/);
    expect(got).not.toMatch(/100 Continue/);
    expect(got).toContain('"code":"FACEOPT_ERR_UNSUPPORTED_ENCODING"'); // not UNSUPPORTED_MEDIA, the other 415
  });
});
