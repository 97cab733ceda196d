/**
 * Every failure becomes `{ "error": { "code", "message" } }` with the status from the one error table
 * (pipeline/errors.ts). Fastify's own errors (body too large, unknown content type, schema validation,
 * malformed JSON or multipart) are mapped to the matching FACEOPT_ERR_* code; anything unexpected is
 * logged with its stack on the server and reaches the client as FACEOPT_ERR_INTERNAL without one.
 */
import http from 'node:http';
import type net from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, FaceoptError, isFaceoptError } from '../pipeline/errors.js';

const TOO_LARGE = new Set(['FST_ERR_CTP_BODY_TOO_LARGE', 'FST_REQ_FILE_TOO_LARGE']);
const BAD_MEDIA = new Set(['FST_ERR_CTP_INVALID_MEDIA_TYPE', 'FST_INVALID_MULTIPART_CONTENT_TYPE']);

type Validation = { instancePath?: string; message?: string; params?: Record<string, unknown> };
type MaybeFastifyError = Partial<FastifyError> & { validation?: Validation[]; validationContext?: string };

/** How a reader names each part of a request that a schema checks. */
const PART_NAMES: Record<string, string> = { querystring: 'query parameter', body: 'body field', headers: 'header', params: 'path parameter' };

/**
 * A value as the client sent it, short, and never walked in depth (a hostile body may nest thousands of
 * levels: stringifying it here overflowed the stack and answered 500).
 */
function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return `a list of ${v.length} item${v.length === 1 ? '' : 's'}`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    return keys.length ? `an object with ${keys.slice(0, 3).map((k) => shown(k)).join(', ')}${keys.length > 3 ? ', ...' : ''}` : 'an empty object';
  }
  const text = String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** What the schema wanted, in words, from ajv's message and params ("must be <= 1" -> "a value <= 1"). */
function wanted(v: Validation): string {
  const msg = firstLine(v.message);
  const allowed = v.params?.allowedValues;
  if (Array.isArray(allowed)) return `one of ${allowed.map(String).join(', ')}`;
  const type = /^must be (number|integer|boolean|string|array|object)$/.exec(msg)?.[1];
  if (type) return { number: 'a number', integer: 'an integer', boolean: 'true or false', string: 'text', array: 'a list', object: 'an object' }[type]!;
  const bound = /^must be ([<>]=? ?.+)$/.exec(msg)?.[1];
  if (bound) return `a value ${bound}`;
  return `a value that ${msg}`;
}

/**
 * A schema validation failure as a coded error that names the parameter, what it must be and what came
 * (`input`: the checked part of the request, e.g. the parsed query string, when the caller has it).
 */
function validationError(err: MaybeFastifyError, input: unknown, cause: unknown): FaceoptError {
  const v = err.validation![0]!;
  const context = err.validationContext ?? 'request';
  const part = PART_NAMES[context] ?? context;
  const path = (v.instancePath ?? '').split('/').filter(Boolean);
  const at = (obj: unknown, keys: string[]): unknown => keys.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);
  if (v.params && 'additionalProperty' in v.params) {
    const name = String(v.params.additionalProperty);
    return new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `only the ${part}s this route takes (docs/server.md lists them)`, name: `${part} "${name}"`, received: `${name}=${shown(at(input, [...path, name]))}` }, { cause });
  }
  if (v.params && 'missingProperty' in v.params) {
    return new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a value', name: `${part} ${[...path, String(v.params.missingProperty)].join('.')}`, received: 'nothing' }, { cause });
  }
  const name = path.length ? `${part} ${path.join('.')}` : context;
  return new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: wanted(v), name, received: input === undefined ? 'something else' : shown(at(input, path)) }, { cause });
}

function firstLine(s: unknown): string {
  return String(s ?? '').split('\n')[0].slice(0, 200);
}

/**
 * The coded error for anything thrown while handling a request. `bodyLimit` fills the 413 message;
 * `contentType` names the refused type in 415s. Returns null for internal errors (caller logs them).
 */
export function toFaceoptError(e: unknown, ctx: { bodyLimit: number; contentType?: string; input?: (context: string) => unknown }): FaceoptError | null {
  if (isFaceoptError(e)) return e;
  const err = (e ?? {}) as MaybeFastifyError;
  if (err.validation && err.validation.length > 0) return validationError(err, ctx.input?.(err.validationContext ?? ''), e);
  const code = err.code ?? '';
  if (TOO_LARGE.has(code) || err.statusCode === 413) return new FaceoptError('FACEOPT_ERR_PAYLOAD_TOO_LARGE', { limit: ctx.bodyLimit }, { cause: e });
  if (BAD_MEDIA.has(code) || err.statusCode === 415) return new FaceoptError('FACEOPT_ERR_UNSUPPORTED_MEDIA', { type: ctx.contentType || '(none)' }, { cause: e });
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a well-formed request', name: 'request', received: firstLine(err.message) }, { cause: e });
  }
  return null;
}

/** Why the server is not ready, as FACEOPT_ERR_NOT_READY tells the client. */
export const NOT_READY_REASONS = {
  loading: 'the models are still loading',
  restarting: 'no inference thread is running (the stopped ones are being restarted)',
  closing: 'the server is closing',
  failed: 'the models failed to load (the server log says why)',
} as const;

/** FACEOPT_ERR_NOT_READY with its reason. */
export function notReady(why: keyof typeof NOT_READY_REASONS): FaceoptError {
  return new FaceoptError('FACEOPT_ERR_NOT_READY', { reason: NOT_READY_REASONS[why] });
}

/** The 503s a client may simply retry: the server is busy, slow, loading or restarting. */
const RETRYABLE = new Set(['FACEOPT_ERR_OVERLOADED', 'FACEOPT_ERR_TIMEOUT', 'FACEOPT_ERR_NOT_READY', 'FACEOPT_ERR_SHUTTING_DOWN']);

/**
 * The Retry-After value (seconds) a coded error is answered with, one rule for every answer (Fastify's and
 * those written on a socket): retryable 503s only, the admission's estimate where the error carries one.
 */
export function retryAfter(e: FaceoptError): string | undefined {
  if (e.httpStatus !== 503 || !RETRYABLE.has(e.code)) return undefined;
  return String(e.params.retryAfter ?? 1);
}

/** The JSON body for a coded error. */
export function errorBody(e: FaceoptError): { error: { code: string; message: string } } {
  return { error: { code: e.code, message: e.message } };
}

/**
 * A coded error as a whole HTTP/1.1 response, for answers written on a socket outside Fastify (Node's
 * parser refused the request, or the cluster primary refuses a connection): the socket ends with it.
 */
export function rawErrorResponse(e: FaceoptError): string {
  const body = JSON.stringify(errorBody(e));
  const after = retryAfter(e);
  const retry = after ? `Retry-After: ${after}\r\n` : '';
  return `HTTP/1.1 ${e.httpStatus} ${http.STATUS_CODES[e.httpStatus] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`;
}

/** How long a refused connection may stay open after its answer for the client to read it and close. */
export const REFUSED_LINGER_MS = 2_000;

/**
 * Answer a connection nobody has read (the cluster primary's, paused) with a coded error and close it.
 * Its request is read and dropped meanwhile: closing a socket with unread bytes sends a reset, which
 * can reach the client before the answer does.
 */
export function refuseConnection(socket: net.Socket, e: FaceoptError): void {
  if (socket.destroyed || !socket.writable) { socket.destroy(); return; }
  if (!socket.listenerCount('error')) socket.on('error', () => undefined);
  const timer = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(rawErrorResponse(e));
  socket.resume();
}

/**
 * Fastify error handler: coded JSON, Retry-After on retryable 503s, stack traces only in the server log.
 * `onAnswered` hears of every coded error answered (the metrics count each 503 timeout there, once).
 */
export function handleError(bodyLimit: number, onAnswered?: (e: FaceoptError) => void) {
  return (e: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    // header values (an API key among them) are never echoed back
    const parts: Record<string, unknown> = { querystring: req.query, body: req.body, params: req.params };
    const coded = toFaceoptError(e, { bodyLimit, contentType: req.headers['content-type'], input: (context) => parts[context] });
    if (!coded) {
      req.log.error({ err: e }, 'internal error');
      const internal = new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `unexpected failure (request ${req.id}; details in the server log)` });
      return reply.code(ERRORS.FACEOPT_ERR_INTERNAL.http).send(errorBody(internal));
    }
    // a body left unread (over the limit, past the deadline, refused before it was sent) ends with the answer
    if (!req.raw.complete && (coded.code === 'FACEOPT_ERR_PAYLOAD_TOO_LARGE' || coded.code === 'FACEOPT_ERR_TIMEOUT')) reply.header('connection', 'close');
    const after = retryAfter(coded);
    if (after) reply.header('retry-after', after);
    onAnswered?.(coded);
    if (coded.httpStatus >= 500) req.log.warn({ code: coded.code }, coded.message);
    else req.log.info({ code: coded.code }, coded.message);
    return reply.code(coded.httpStatus).send(errorBody(coded));
  };
}
