/**
 * Requests Node's HTTP parser refuses (oversized headers, an unknown method, a broken request line,
 * headers that never finish) over a real loopback socket: coded JSON bodies, `Connection: close`, and
 * the server keeps answering.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaceoptApp } from '../../server/app.js';
import { fakeApp, listenLoopback } from './helpers.js';

let app: FaceoptApp;
let port = 0;
beforeAll(async () => {
  ({ app } = await fakeApp());
  port = await listenLoopback(app);
});
afterAll(async () => { await app.close(); });

/** Send raw bytes and collect everything the server writes until it closes the socket. */
function raw(request: string, to = port): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(to, '127.0.0.1', () => s.write(request));
    let got = '';
    s.on('data', (d) => { got += d.toString('utf8'); });
    s.on('end', () => resolve(got));
    s.on('error', (e) => (got ? resolve(got) : reject(e)));
    s.setTimeout(10_000, () => { s.destroy(); reject(new Error(`no answer; got ${got.slice(0, 200)}`)); });
  });
}

const parse = (res: string) => {
  const [head, body] = res.split('\r\n\r\n');
  return { status: Number(head!.split(' ')[1]), head: head!, body: JSON.parse(body!) as { error: { code: string; message: string } } };
};

describe('HTTP parser errors', () => {
  it('headers over 16 KB -> 431 FACEOPT_ERR_HEADERS_TOO_LARGE with Connection: close', async () => {
    const r = parse(await raw(`GET /health HTTP/1.1\r\nHost: x\r\nCookie: ${'a'.repeat(64 * 1024)}\r\n\r\n`));
    expect(r.status).toBe(431);
    expect(r.head).toMatch(/\r\nConnection: close/i);
    expect(r.body.error.code).toBe('FACEOPT_ERR_HEADERS_TOO_LARGE');
    expect(r.body.error.message).toMatch(/16384 bytes/);
  });

  it('an unknown method and a garbled request line -> 400 FACEOPT_ERR_BAD_HTTP, and /health still answers', async () => {
    for (const line of ['BREW /embed HTTP/1.1', '\u0001\u0002 nonsense']) {
      const r = parse(await raw(`${line}\r\nHost: x\r\n\r\n`));
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('FACEOPT_ERR_BAD_HTTP');
      expect(r.body.error.message).toContain('(invalid method)'); // the parser's code in words, without its HPE_ prefix
      expect(r.body.error.message).not.toMatch(/at .*\.js/); // no stack
    }
    const ok = await raw('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(ok.split(' ')[1]).toBe('200');
  });
});

describe('headers that do not arrive in time', () => {
  it('-> 408 FACEOPT_ERR_REQUEST_TIMEOUT naming the limits, with Connection: close (Node answered 400 through our handler before)', async () => {
    const { app: slow } = await fakeApp({ headersTimeoutMs: 300 });
    try {
      await slow.listen({ port: 0, host: '127.0.0.1' });
      const to = (slow.server.address() as net.AddressInfo).port;
      const t0 = performance.now();
      // half a request's headers, then nothing: a slow-loris client
      const r = parse(await raw('GET /health HTTP/1.1\r\nHost: x\r\n', to));
      expect(performance.now() - t0).toBeLessThan(5_000); // checked every 75 ms here (a quarter of the limit)
      expect(r.status).toBe(408);
      expect(r.head).toMatch(/\r\nConnection: close/i);
      expect(r.body.error.code).toBe('FACEOPT_ERR_REQUEST_TIMEOUT');
      expect(r.body.error.message).toMatch(/headers within 300 ms, the whole request within 40000 ms/);
      // a connection that sends nothing at all ends the same way
      expect(parse(await raw('', to)).status).toBe(408);
      expect((await raw('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', to)).split(' ')[1]).toBe('200');
    } finally {
      await slow.close();
    }
  });

  it('a headers limit above the request limit raises the request limit with it (Node refuses headersTimeout > requestTimeout)', async () => {
    const { app: patient } = await fakeApp({ headersTimeoutMs: 600_000 });
    try {
      expect(patient.server.headersTimeout).toBe(600_000);
      expect(patient.server.requestTimeout).toBe(600_000);
    } finally {
      await patient.close();
    }
  });
});
