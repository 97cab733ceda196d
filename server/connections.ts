/**
 * The HTTP connections of the app, below Fastify: how long a request may take to arrive, what closing
 * does with connections that are silent or stalled, and the coded answers to requests Node's parser
 * refuses (buildApp wires these into the Fastify instance).
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { FaceoptError } from '../pipeline/errors.js';
import type { ServerConfig } from './config.js';
import { errorBody, rawErrorResponse } from './errors.js';

/** The whole request must arrive within this (never less than the headers' own limit). */
export function requestTimeoutMs(config: ServerConfig): number {
  return Math.max(config.timeoutMs + 30_000, config.headersTimeoutMs);
}

/** How long a connection may go without a whole request, once closing has begun, before it is closed. */
export const SILENT_GRACE_MS = 500;

/**
 * Past its deadline by this much, a request whose body is still arriving once closing has begun is
 * answered 503 FACEOPT_ERR_TIMEOUT here (a multipart body is answered by its handler at the deadline).
 */
export const STALLED_BODY_GRACE_MS = 1_000;

/**
 * The server's connections, for closing. Node's close() ends idle keep-alive connections, but one that
 * has sent nothing yet, or only part of a request's headers, counts as a request in progress: a client
 * that connected and stayed silent held shutdown until its timeout (exit 1). Once closing begins, a
 * connection with no request being answered is closed when it has sent nothing for SILENT_GRACE_MS since
 * it opened, or has not completed a request within SILENT_GRACE_MS of closing's start; a request that
 * arrives whole within that time is answered (503 FACEOPT_ERR_SHUTTING_DOWN). Node stops its own header
 * and request timeouts on close(), so a request whose body (a raw image, read before its handler runs)
 * stalls is answered 503 FACEOPT_ERR_TIMEOUT once past its deadline (`timeoutMs` from its start, plus
 * STALLED_BODY_GRACE_MS) instead of holding shutdown until its timeout.
 */
export function trackConnections(server: http.Server, timeoutMs: number, onTimeout: () => void): { closeSilent(): void; stop(): void } {
  type Conn = { at: number; answering: number; req?: http.IncomingMessage; res?: http.ServerResponse; reqAt: number };
  const open = new Map<Socket, Conn>();
  server.on('connection', (socket: Socket) => {
    open.set(socket, { at: performance.now(), answering: 0, reqAt: 0 });
    socket.once('close', () => open.delete(socket));
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const c = open.get(req.socket);
    if (!c) return;
    c.answering++;
    c.req = req;
    c.res = res;
    c.reqAt = performance.now();
    res.once('close', () => { c.answering--; if (c.res === res) { c.req = undefined; c.res = undefined; } });
  });
  let closingAt = 0;
  let timer: NodeJS.Timeout | undefined;
  const sweep = (): void => {
    const now = performance.now();
    for (const [socket, c] of open) {
      if (c.answering > 0) {
        const { req, res } = c;
        if (req && res && !req.complete && !res.headersSent && now - c.reqAt >= timeoutMs + STALLED_BODY_GRACE_MS) {
          onTimeout();
          const e = new FaceoptError('FACEOPT_ERR_TIMEOUT', { ms: timeoutMs });
          res.writeHead(e.httpStatus, { 'content-type': 'application/json; charset=utf-8', connection: 'close' }).end(JSON.stringify(errorBody(e)));
        }
        continue;
      }
      if (now - c.at < SILENT_GRACE_MS) continue;
      if (socket.bytesRead === 0 || now - closingAt >= SILENT_GRACE_MS) socket.destroy();
    }
  };
  return {
    closeSilent() {
      closingAt = performance.now();
      sweep();
      timer ??= setInterval(sweep, 100).unref();
    },
    stop() { clearInterval(timer); timer = undefined; },
  };
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers over 16 KB, an unknown method,
 * a broken request line) get a coded JSON answer like every other error, with `Connection: close`
 * because the socket ends with it (a client reusing it would otherwise see ECONNRESET).
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
  const server = (socket as Socket & { server?: http.Server }).server;
  const e = err.code === 'HPE_HEADER_OVERFLOW'
    ? new FaceoptError('FACEOPT_ERR_HEADERS_TOO_LARGE', { limit: http.maxHeaderSize })
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' // Node's headersTimeout or requestTimeout
      ? new FaceoptError('FACEOPT_ERR_REQUEST_TIMEOUT', { headersMs: server?.headersTimeout ?? '?', requestMs: server?.requestTimeout ?? '?' })
      : new FaceoptError('FACEOPT_ERR_BAD_HTTP', { reason: String(err.code ?? 'unparseable').toLowerCase().replace(/^hpe_/, '').replace(/_/g, ' ') });
  // pipelined requests: an answer still being made for an earlier request on this connection goes out
  // whole first (written now, this answer would cut into it or take its place), then this one ends it
  const inFlight = (socket as Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
  if (inFlight && !inFlight.writableFinished) {
    inFlight.once('finish', () => { if (socket.writable) socket.end(rawErrorResponse(e)); else socket.destroy(); });
    return;
  }
  socket.end(rawErrorResponse(e));
}
