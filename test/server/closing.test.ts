/**
 * What close() (SIGTERM's shutdown) does with connections over real loopback sockets: one that has sent
 * nothing, or half a request's headers, no longer holds shutdown until its timeout; a request arriving
 * while closing gets a coded 503 with `Connection: close`; a request in flight is still answered.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SILENT_GRACE_MS, type FaceoptApp } from '../../server/app.js';
import { fakeApp } from './helpers.js';

/** A raw client connection: what the server wrote, and how the connection ended. */
function connect(port: number): { sock: net.Socket; got: () => string; ended: Promise<'closed' | 'reset'> } {
  const sock = net.connect(port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => { got += d.toString('utf8'); });
  const ended = new Promise<'closed' | 'reset'>((resolve) => {
    sock.on('error', () => resolve('reset'));
    sock.on('close', () => resolve('closed'));
  });
  return { sock, got: () => got, ended };
}

/** Resolves when the server has accepted `n` more connections. */
function accepted(app: FaceoptApp, n: number): Promise<void> {
  return new Promise((resolve) => {
    let left = n;
    const on = () => { if (--left === 0) { app.server.off('connection', on); resolve(); } };
    app.server.on('connection', on);
  });
}

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let app: FaceoptApp | null = null;
afterEach(async () => { await app?.close().catch(() => undefined); app = null; });

async function listening(): Promise<number> {
  ({ app } = await fakeApp());
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as net.AddressInfo).port;
}

describe('close() and the connections it finds', () => {
  it('closes a silent connection and one with half its headers, instead of waiting for them (shutdown exited 1 after its timeout)', async () => {
    const port = await listening();
    const both = accepted(app!, 2);
    const silent = connect(port);
    const half = connect(port);
    half.sock.write('GET /health HTTP/1.1\r\nHost: x\r\n');
    await both;
    await sleep(SILENT_GRACE_MS + 50); // both older than the grace: neither is a request about to arrive
    const t0 = performance.now();
    await within(app!.close(), 5_000, 'close()');
    // the silent one at once, the half request once it has had the grace to finish
    expect(performance.now() - t0).toBeLessThan(SILENT_GRACE_MS + 1_000);
    expect(await silent.ended).toBe('closed');
    expect(await half.ended).toBe('closed');
    expect(silent.got() + half.got()).toBe('');
    app = null;
  });

  it('a request arriving on a connection made just before closing gets 503 FACEOPT_ERR_SHUTTING_DOWN with Connection: close', async () => {
    const port = await listening();
    const one = accepted(app!, 1);
    const late = connect(port);
    await one;
    const closed = app!.close(); // the connection is younger than the grace: kept for its request
    late.sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await within(late.ended, 3_000, 'the answer')).toBe('closed');
    await within(closed, 3_000, 'close()');
    const counted = await app!.faceopt.metrics.registry.getSingleMetricAsString('faceopt_requests_rejected_total');
    app = null;
    expect(counted).toMatch(/reason="shutting_down"} 1/);
    const [head, body] = late.got().split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503 /);
    expect(head).toMatch(/\r\nconnection: close/i);
    expect((JSON.parse(body!) as { error: { code: string } }).error.code).toBe('FACEOPT_ERR_SHUTTING_DOWN');
  });

  it('a request in flight when closing begins is answered in full', async () => {
    const port = await listening();
    const one = accepted(app!, 1);
    const busy = connect(port);
    await one;
    // a body still arriving: the request is in progress when close() is called
    const body = Buffer.alloc(2_000, 1);
    busy.sock.write(`POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${body.length}\r\n\r\n`);
    busy.sock.write(body.subarray(0, 1_000));
    await sleep(SILENT_GRACE_MS + 100);
    const closed = app!.close();
    await sleep(SILENT_GRACE_MS + 300); // past the grace: an unanswered request is not closed by it
    busy.sock.write(body.subarray(1_000));
    expect(await within(busy.ended, 5_000, 'the answer')).toBe('closed');
    await within(closed, 5_000, 'close()');
    app = null;
    // answered by the route (a bad image: the body is not a JPEG), not refused or reset
    expect(busy.got()).toMatch(/^HTTP\/1\.1 400 /);
    expect(busy.got()).toMatch(/FACEOPT_ERR_BAD_IMAGE/);
  });
});
