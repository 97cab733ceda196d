/**
 * Getting images and options out of a request, whatever its form: multipart/form-data (the seed's
 * `-F file=@face.jpg`, several files for /v1/extract), a raw image body (Content-Type image/jpeg, png,
 * webp or application/octet-stream), or JSON with base64 strings (InsightFace-REST's
 * `{"images": {"data": [...]}}`). Content types are checked twice: the declared type, and the file's
 * magic bytes, so a PDF named face.jpg is refused before it reaches the decoder.
 */
import type { FastifyRequest } from 'fastify';
import { checkNumber, FaceoptError, isFaceoptError } from '../pipeline/errors.js';
import { containerFormat } from '../pipeline/faces/image-header.js';
import { toFaceoptError } from './errors.js';
import type { Deadline } from './batcher.js';
import type { FaceQuery } from './service.js';
import { faceOptionProperties, type FaceOption } from './routes/schemas.js';

export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;
/** Declared types taken as an image body; the bytes decide the format (image/jpg and image/pjpeg are common misnamings of JPEG). */
export const RAW_TYPES = [...IMAGE_TYPES, 'image/jpg', 'image/pjpeg', 'application/octet-stream'] as const;

/** One image taken from a request. */
export interface RequestImage {
  /** Form field or JSON key it came from. */
  field: string;
  /** Name used in error messages (file name or field[index]). */
  source: string;
  bytes: Buffer;
  /** Content type the client declared for it (multipart part or request), if any. */
  declared?: string;
  /** Why it could not be taken from the request (a lenient spec reports it for this image alone). */
  error?: FaceoptError;
}

/** Format from the magic bytes: a supported one, another known one, or null. */
export function sniffFormat(b: Uint8Array): string | null {
  const supported = containerFormat(b);
  if (supported) return supported;
  const at = (i: number, s: string) => [...s].every((c, k) => b[i + k] === c.charCodeAt(0));
  if (at(0, 'GIF8')) return 'gif';
  if (at(0, '%PDF')) return 'pdf';
  if (at(0, 'BM')) return 'bmp';
  if (at(0, 'II*\0') || at(0, 'MM\0*')) return 'tiff';
  if (at(0, 'PK\x03\x04')) return 'zip';
  if (b.length >= 12 && at(4, 'ftyp')) return 'heif/avif/mp4';
  const head = Buffer.from(b.subarray(0, 256)).toString('latin1').trimStart().toLowerCase();
  if (head.startsWith('<svg') || head.startsWith('<?xml') || head.startsWith('<!doctype') || head.startsWith('<html')) return 'svg/xml/html';
  return null;
}

/**
 * Refuse what is not a JPEG, PNG or WebP: 415 for a declared non-image type or a recognised other
 * format, 400 FACEOPT_ERR_BAD_IMAGE for bytes that claim to be an image but are not one.
 */
export function checkImageBytes(img: RequestImage, declared: string | undefined): void {
  const type = (declared ?? '').split(';')[0].trim().toLowerCase();
  if (type && !(RAW_TYPES as readonly string[]).includes(type)) {
    throw new FaceoptError('FACEOPT_ERR_UNSUPPORTED_MEDIA', { type });
  }
  if (img.bytes.length === 0) throw new FaceoptError('FACEOPT_ERR_BAD_IMAGE', { source: img.source, reason: 'it is empty' });
  const format = sniffFormat(img.bytes);
  if (format === 'jpeg' || format === 'png' || format === 'webp') return;
  if (format !== null) throw new FaceoptError('FACEOPT_ERR_UNSUPPORTED_MEDIA', { type: `${format} (from the file's first bytes)` });
  throw new FaceoptError('FACEOPT_ERR_BAD_IMAGE', { source: img.source, reason: 'it does not start like a JPEG, PNG or WebP file' });
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Bytes of a base64 (or data: URL) string; FACEOPT_ERR_BAD_ARGUMENT naming the field when it is not base64. */
export function fromBase64(value: unknown, field: string): Buffer {
  if (typeof value !== 'string') {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a base64 string', name: field, received: value === null ? 'null' : typeof value });
  }
  const comma = value.startsWith('data:') ? value.indexOf(',') : -1;
  const text = (comma >= 0 ? value.slice(comma + 1) : value).replace(/\s+/g, '');
  if (!BASE64.test(text)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a base64 string', name: field, received: 'characters outside base64' });
  }
  return Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
}

export interface ImageSpec {
  /** Multipart file fields accepted, in the order images are wanted. */
  fields: readonly string[];
  /** Most images. */
  max: number;
  /** Fewest images. */
  min: number;
  /** Images from a parsed JSON body. */
  fromJson: (body: Record<string, unknown>) => RequestImage[];
  /** Leave the per-image type checks to the caller (so one bad image does not fail a batch). */
  lenient?: boolean;
  /** The options the route takes (its query string, form fields and JSON keys; schemas.ts ROUTE_OPTIONS). */
  options: readonly string[];
}

/** Whether a request's non-query options are form fields or JSON body fields, for messages. */
export function formOrBody(req: FastifyRequest): OptionSource['part'] {
  return isMultipart(req) ? 'form field' : 'body field';
}

function isMultipart(req: FastifyRequest): boolean {
  return (req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/');
}

/**
 * Settles the reading of a multipart body: rejects at the request's deadline, when the client closes the
 * connection before sending all of it, or when the bytes received pass the body limit (counted as
 * received, boundaries and part headers included, as the declared length is). A multipart body is read
 * inside the admitted work, and a client that stalled mid-body and hung up after its 503 left the parser
 * waiting for bytes that never came: the work never settled and its admission slot was never given
 * back (two such clients filled `--queue 2` for good). `done()` detaches.
 */
function bodyWatch(req: FastifyRequest, bodyLimit: number, deadline: Deadline | undefined): { stopped: Promise<never>; received: () => number; done: () => void } {
  let stop!: (e: FaceoptError) => void;
  const stopped = new Promise<never>((_, reject) => { stop = reject; });
  stopped.catch(() => undefined);
  const onClose = () => {
    if (!req.raw.complete) stop(new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a complete request body', name: 'body', received: 'the client closed the connection before the end of it' }));
  };
  let received = 0;
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > bodyLimit) stop(tooLarge(bodyLimit));
  };
  req.raw.once('close', onClose);
  req.raw.on('data', onData);
  const timer = deadline ? setTimeout(() => stop(new FaceoptError('FACEOPT_ERR_TIMEOUT', { ms: deadline.ms })), Math.max(0, deadline.at - performance.now())) : undefined;
  return { stopped, received: () => received, done: () => { req.raw.off('close', onClose); req.raw.off('data', onData); clearTimeout(timer); } };
}

/** FACEOPT_ERR_PAYLOAD_TOO_LARGE for a multipart request over the body limit, counted over all of its parts. */
function tooLarge(bodyLimit: number): FaceoptError {
  return new FaceoptError('FACEOPT_ERR_PAYLOAD_TOO_LARGE', { limit: bodyLimit });
}

/**
 * After a refusal mid-body: a body within the limit is read to its end and dropped, so the client gets
 * its answer and may reuse the connection (a refused form field used to leave a large upload stalled on
 * backpressure, the answer unread and the connection stuck); a body over the limit or past the deadline
 * is not read on (errors.ts closes the connection with the answer).
 */
function dropRest(req: FastifyRequest, e: unknown, bodyLimit: number, received: number): void {
  if (req.raw.complete || isFaceoptError(e, 'FACEOPT_ERR_PAYLOAD_TOO_LARGE') || isFaceoptError(e, 'FACEOPT_ERR_TIMEOUT')) return;
  req.raw.unpipe();
  // a chunked body declares no length: dropped up to the limit, then the connection goes
  let n = received;
  req.raw.on('data', (chunk: Buffer) => {
    n += chunk.length;
    if (n > bodyLimit) req.raw.socket?.destroy();
  });
  req.raw.resume();
}

async function fromMultipart(req: FastifyRequest, spec: ImageSpec, bodyLimit: number, deadline?: Deadline): Promise<{ images: RequestImage[]; fields: Record<string, string> }> {
  // the body limit holds for the whole request (the parser's own limit is per file): refused up front
  // when the declared length is over it, and counted as the bytes come (bodyWatch)
  if (Number(req.headers['content-length'] ?? 0) > bodyLimit) throw tooLarge(bodyLimit);
  const images: RequestImage[] = [];
  const fields: Record<string, string> = {};
  const watch = bodyWatch(req, bodyLimit, deadline);
  try {
    const parts = req.parts()[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([parts.next(), watch.stopped]);
      if (next.done) break;
      const part = next.value;
      if (part.type === 'file') {
        if (!spec.fields.includes(part.fieldname)) {
          part.file.resume(); // drain it so the parser moves on
          throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `file fields ${spec.fields.map((f) => `"${f}"`).join(' or ')}`, name: 'multipart field', received: JSON.stringify(part.fieldname.slice(0, 40)) });
        }
        if (images.length >= spec.max) {
          part.file.resume();
          throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `at most ${spec.max} image(s)`, name: 'images', received: 'more' });
        }
        const source = part.filename ? part.filename.slice(0, 80) : `${part.fieldname}[${images.length}]`;
        const img: RequestImage = { field: part.fieldname, source, bytes: await Promise.race([part.toBuffer(), watch.stopped]), declared: part.mimetype };
        if (!spec.lenient) checkImageBytes(img, img.declared);
        images.push(img);
      } else {
        const name = part.fieldname;
        if (!(spec.options as readonly string[]).includes(name)) {
          throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `only the options this route takes (${spec.options.join(', ')}; docs/server.md)`, name: `form field "${name.slice(0, 40)}"`, received: shortValue(part.value) });
        }
        if (name in fields) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'one value', name: `form field ${name}`, received: 'it twice' });
        if (part.valueTruncated || part.fieldnameTruncated) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `a value of at most ${FIELD_SIZE} bytes`, name: `form field ${name}`, received: 'a longer one' });
        fields[name] = String(part.value);
      }
    }
  } catch (e) {
    dropRest(req, e, bodyLimit, watch.received());
    if (isFaceoptError(e)) throw e;
    const code = (e as { code?: string })?.code ?? '';
    if (PART_LIMITS.has(code)) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `at most ${spec.max} image(s) and the route's options (${spec.options.join(', ')}) as multipart parts`, name: 'multipart body', received: 'more parts' }, { cause: e });
    }
    throw toFaceoptError(e, { bodyLimit }) ?? new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a well-formed multipart/form-data body', name: 'body', received: String((e as Error)?.message ?? e).split('\n')[0].slice(0, 120) }, { cause: e });
  } finally {
    watch.done();
  }
  return { images, fields };
}

/** The multipart parser's limits on how many parts (not how many bytes): a 400, not a 413. */
const PART_LIMITS = new Set(['FST_FILES_LIMIT', 'FST_PARTS_LIMIT', 'FST_FIELDS_LIMIT']);

/** Longest form field value the multipart parser keeps (app.ts sets it as the parser's limit). */
export const FIELD_SIZE = 4096;

function shortValue(v: unknown): string {
  const t = String(v);
  return t.length > 40 ? `${t.slice(0, 37)}...` : t;
}

/**
 * The images of a request per `spec`, plus option values sent as multipart fields. Errors:
 * 400 (missing/extra images, bad base64, broken multipart), 413 (too large), 415 (wrong types).
 */
export async function readImages(req: FastifyRequest, spec: ImageSpec, bodyLimit: number, deadline?: Deadline): Promise<{ images: RequestImage[]; fields: Record<string, unknown> }> {
  let images: RequestImage[];
  let fields: Record<string, unknown> = {};
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (isMultipart(req)) {
    ({ images, fields } = await fromMultipart(req, spec, bodyLimit, deadline));
  } else if (type === 'application/json') {
    const body = (req.body ?? {}) as Record<string, unknown>;
    images = spec.fromJson(body);
    if (!spec.lenient) for (const img of images) checkImageBytes(img, undefined);
    fields = body;
  } else if (Buffer.isBuffer(req.body)) {
    const img: RequestImage = { field: 'body', source: 'body', bytes: req.body, declared: type };
    if (!spec.lenient) checkImageBytes(img, type);
    images = [img];
  } else {
    throw new FaceoptError('FACEOPT_ERR_UNSUPPORTED_MEDIA', { type: type || '(none)' });
  }
  if (images.length < spec.min || images.length > spec.max) {
    const want = spec.min === spec.max ? `${spec.min}` : `${spec.min} to ${spec.max}`;
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: `${want} image(s) (${isMultipart(req) ? `multipart field${spec.fields.length > 1 ? 's' : ''} ${spec.fields.map((f) => `"${f}"`).join(', ')}` : type === 'application/json' ? 'in the JSON body' : 'one raw image as the body'})`,
      name: 'images',
      received: String(images.length),
    });
  }
  return { images, fields };
}

/** Where an option came from, for messages ("query parameter threshold", "form field threshold"). */
export interface OptionSource {
  part: 'query parameter' | 'form field' | 'body field';
  values: Record<string, unknown>;
}

/** One option's value, parsed by the rule faceOptionProperties gives it: decimal numbers in range, true or false. */
function optionValue(name: FaceOption, v: unknown, part: OptionSource['part']): number | boolean {
  const rule = faceOptionProperties[name] as { type: string; minimum?: number; maximum?: number };
  const label = `${part} ${name}`;
  if (rule.type === 'boolean') {
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'true or false', name: label, received: shortValue(v) });
  }
  if (typeof v !== 'number' && typeof v !== 'string') throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a number', name: label, received: v === null ? 'null' : typeof v });
  return checkNumber(label, v, { min: rule.minimum, max: rule.maximum, integer: rule.type === 'integer' });
}

/**
 * Request options (InsightFace-REST names) from the query string and form or JSON fields, each parsed by
 * one rule whichever way it came (schemas.ts faceOptionProperties): the query string's schema only refuses
 * unknown keys and repeats, so `?threshold=0x1` and a form field `0x1` get the same answer. An option given
 * in two places is refused like a repeat (the body's value won without a word).
 */
export function faceQuery(...sources: OptionSource[]): FaceQuery {
  const raw = new Map<FaceOption, { v: unknown; part: OptionSource['part'] }>();
  for (const { part, values } of sources) {
    for (const name of Object.keys(faceOptionProperties) as FaceOption[]) {
      const v = values[name];
      if (v === undefined || v === '') continue;
      const earlier = raw.get(name);
      if (earlier && earlier.part !== part) {
        throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `each option once (in the query string or in the body, not both)`, name: `option ${name}`, received: `it as a ${earlier.part} and as a ${part}` });
      }
      raw.set(name, { v, part });
    }
  }
  const get = (name: FaceOption) => {
    const r = raw.get(name);
    return r === undefined ? undefined : optionValue(name, r.v, r.part);
  };
  const q: FaceQuery = {};
  const threshold = get('threshold');
  const limit = get('limit_faces');
  const minSize = get('min_face_size');
  const embedOnly = get('embed_only');
  const extractEmbedding = get('extract_embedding');
  if (threshold !== undefined) q.threshold = threshold as number;
  if (limit !== undefined) q.limitFaces = limit as number;
  if (minSize !== undefined) q.minFaceSize = minSize as number;
  if (embedOnly !== undefined) q.embedOnly = embedOnly as boolean;
  if (extractEmbedding !== undefined) q.extractEmbedding = extractEmbedding as boolean;
  if (q.embedOnly && q.extractEmbedding === false) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'embed_only without extract_embedding=false (an aligned crop is only embedded: there is nothing else to return)', name: 'options', received: 'both' });
  }
  return q;
}

/**
 * Route preHandler: the query string's option values are checked before the body is read and before
 * the request takes a queue slot (a multipart body is read inside the admitted work, so `?threshold=0`
 * on a large upload was refused only after all of it had come, or timed out).
 */
export async function checkQueryFirst(req: FastifyRequest): Promise<void> {
  faceQuery({ part: 'query parameter', values: (req.query ?? {}) as Record<string, unknown> });
}
