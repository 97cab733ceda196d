/**
 * trackConnections (server/connections.ts) on a plain http.Server over real loopback sockets, its clock
 * faked (a mutation audit found these unchecked): once closing begins, a connection that never sent a
 * byte is closed at once and one with part of a request only after the grace; a keep-alive connection
 * whose request was answered counts as silent again; a body stalled past its deadline is answered 503
 * FACEOPT_ERR_TIMEOUT and counted once.
 */
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SILENT_GRACE_MS, STALLED_BODY_GRACE_MS, trackConnections } from '../../server/connections.js';
import { waitFor } from './helpers.js';

const TIMEOUT_MS = 2_000;
let server: http.Server | null = null;
const clients: net.Socket[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) c.destroy();
  await new Promise<void>((resolve) => { if (server) server.close(() => resolve()); else resolve(); });
  server = null;
});

/**
 * A server answering GET at once and POST once its body has arrived, tracked by trackConnections, with
 * performance.now and setInterval faked (setTimeout stays real: waitFor polls with it).
 */
async function tracked(): Promise<{ port: number; accepted: net.Socket[]; tracker: ReturnType<typeof trackConnections>; timeouts: () => number }> {
  vi.useFakeTimers({ toFake: ['performance', 'setInterval', 'clearInterval'] });
  const s = http.createServer((req, res) => {
    if (req.method === 'GET') res.end('ok');
    else req.resume().on('end', () => { if (!res.headersSent) res.end('body read'); });
  });
  server = s;
  const accepted: net.Socket[] = [];
  s.on('connection', (socket: net.Socket) => accepted.push(socket));
  let timeouts = 0;
  const tracker = trackConnections(s, TIMEOUT_MS, () => { timeouts++; });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { port: (s.address() as net.AddressInfo).port, accepted, tracker, timeouts: () => timeouts };
}

function client(port: number): { sock: net.Socket; got: () => string } {
  const sock = net.connect(port, '127.0.0.1');
  clients.push(sock);
  let got = '';
  sock.on('data', (d) => { got += d.toString('utf8'); });
  sock.on('error', () => undefined);
  return { sock, got: () => got };
}

describe('trackConnections once closing begins (mutation audit)', () => {
  it('a connection that never sent a byte goes at once; one with half its headers only after the grace', async () => {
    const { port, accepted, tracker } = await tracked();
    client(port);
    const half = client(port);
    half.sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await waitFor(() => accepted.length === 2 && accepted.some((s) => s.bytesRead > 0), 5_000, 'both connections, the half request read');
    const [silentSide, halfSide] = accepted[0]!.bytesRead === 0 ? [accepted[0]!, accepted[1]!] : [accepted[1]!, accepted[0]!];
    vi.advanceTimersByTime(SILENT_GRACE_MS + 1); // both older than the grace
    tracker.closeSilent();
    expect([silentSide.destroyed, halfSide.destroyed]).toEqual([true, false]);
    vi.advanceTimersByTime(SILENT_GRACE_MS);
    expect(halfSide.destroyed).toBe(true);
    tracker.stop();
  });

  it('a keep-alive connection whose request was answered counts as silent again: its half-sent next request goes after the grace', async () => {
    const { port, accepted, tracker } = await tracked();
    const c = client(port);
    c.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => c.got().endsWith('ok'), 5_000, 'the answer');
    c.sock.write('GET / HTTP/1.1\r\n');
    vi.advanceTimersByTime(SILENT_GRACE_MS + 1);
    tracker.closeSilent();
    expect(accepted[0]!.destroyed).toBe(false);
    vi.advanceTimersByTime(SILENT_GRACE_MS);
    expect(accepted[0]!.destroyed).toBe(true);
    tracker.stop();
  });

  it('a body stalled past its deadline is answered 503 FACEOPT_ERR_TIMEOUT and counted once', async () => {
    const { port, tracker, timeouts } = await tracked();
    const c = client(port);
    let requests = 0;
    server!.on('request', () => { requests++; });
    c.sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\nabc');
    await waitFor(() => requests === 1, 5_000, 'the request to start');
    tracker.closeSilent();
    vi.advanceTimersByTime(TIMEOUT_MS + STALLED_BODY_GRACE_MS - 200);
    expect(timeouts()).toBe(0);
    vi.advanceTimersByTime(300);
    expect(timeouts()).toBe(1);
    await waitFor(() => c.got().includes('FACEOPT_ERR_TIMEOUT'), 5_000, 'the answer');
    expect(c.got()).toMatch(/^HTTP\/1\.1 503 /);
    vi.advanceTimersByTime(1_000);
    expect(timeouts()).toBe(1);
    tracker.stop();
  });
});
