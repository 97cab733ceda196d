/**
 * Every failure becomes `{ "error": { "code", "message" } }` with the status from the one error table
 * (pipeline/errors.ts). Fastify's own errors (body too large, unknown content type, schema validation,
 * malformed JSON or multipart) are mapped to the matching FACEOPT_ERR_* code; anything unexpected is
 * logged with its stack on the server and reaches the client as FACEOPT_ERR_INTERNAL without one.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, FaceoptError, isFaceoptError } from '../pipeline/errors.js';

const TOO_LARGE = new Set(['FST_ERR_CTP_BODY_TOO_LARGE', 'FST_REQ_FILE_TOO_LARGE', 'FST_FILES_LIMIT', 'FST_PARTS_LIMIT', 'FST_FIELDS_LIMIT']);
const BAD_MEDIA = new Set(['FST_ERR_CTP_INVALID_MEDIA_TYPE', 'FST_INVALID_MULTIPART_CONTENT_TYPE']);

type MaybeFastifyError = Partial<FastifyError> & { validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[]; validationContext?: string };

function firstLine(s: unknown): string {
  return String(s ?? '').split('\n')[0].slice(0, 200);
}

/**
 * The coded error for anything thrown while handling a request. `bodyLimit` fills the 413 message;
 * `contentType` names the refused type in 415s. Returns null for internal errors (caller logs them).
 */
export function toFaceoptError(e: unknown, ctx: { bodyLimit: number; contentType?: string }): FaceoptError | null {
  if (isFaceoptError(e)) return e;
  const err = (e ?? {}) as MaybeFastifyError;
  if (err.validation && err.validation.length > 0) {
    const v = err.validation[0];
    const where = `${err.validationContext ?? 'request'}${v.instancePath ? v.instancePath.replace(/\//g, '.') : ''}`;
    const extra = v.params && 'additionalProperty' in v.params ? ` "${String(v.params.additionalProperty)}"` : '';
    return new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `a value that ${firstLine(v.message)}${extra}`, name: where, received: 'something else' }, { cause: e });
  }
  const code = err.code ?? '';
  if (TOO_LARGE.has(code) || err.statusCode === 413) return new FaceoptError('FACEOPT_ERR_PAYLOAD_TOO_LARGE', { limit: ctx.bodyLimit }, { cause: e });
  if (BAD_MEDIA.has(code) || err.statusCode === 415) return new FaceoptError('FACEOPT_ERR_UNSUPPORTED_MEDIA', { type: ctx.contentType || '(none)' }, { cause: e });
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a well-formed request', name: 'request', received: firstLine(err.message) }, { cause: e });
  }
  return null;
}

/** The JSON body for a coded error. */
export function errorBody(e: FaceoptError): { error: { code: string; message: string } } {
  return { error: { code: e.code, message: e.message } };
}

/** Fastify error handler: coded JSON, Retry-After on overload, stack traces only in the server log. */
export function handleError(bodyLimit: number) {
  return (e: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const coded = toFaceoptError(e, { bodyLimit, contentType: req.headers['content-type'] });
    if (!coded) {
      req.log.error({ err: e }, 'internal error');
      const internal = new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `unexpected failure (request ${req.id}; details in the server log)` });
      return reply.code(ERRORS.FACEOPT_ERR_INTERNAL.http).send(errorBody(internal));
    }
    if (coded.code === 'FACEOPT_ERR_OVERLOADED') reply.header('retry-after', String(coded.params.retryAfter ?? 1));
    if (coded.code === 'FACEOPT_ERR_NOT_READY') reply.header('retry-after', '1');
    if (coded.httpStatus >= 500) req.log.warn({ code: coded.code }, coded.message);
    else req.log.info({ code: coded.code }, coded.message);
    return reply.code(coded.httpStatus).send(errorBody(coded));
  };
}
