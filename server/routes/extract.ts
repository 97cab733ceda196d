/**
 * `POST /v1/extract`: several photos per request (multipart files, or InsightFace-REST's JSON
 * `{"images": {"data": [base64...]}}`), every face with box, score, keypoints, embedding and norm.
 * Options as InsightFace-REST names them: threshold, limit_faces, min_face_size, embed_only (the images
 * are aligned crops: no detection), extract_embedding (false: detection only). A photo that cannot be
 * read (bad bytes, or in JSON a string that is not base64) gets its own `{status: "error", error}` entry;
 * when every photo fails, the request fails with the first photo's error and status.
 */
import type { FastifyInstance } from 'fastify';
import { FaceoptError, isFaceoptError } from '../../pipeline/errors.js';
import type { AppContext } from '../app.js';
import { errorBody } from '../errors.js';
import { checkImageBytes, checkQueryFirst, faceQuery, formOrBody, fromBase64, readImages, type ImageSpec, type RequestImage } from '../input.js';
import type { ImageJson } from '../service.js';
import { extractJson, jsonBody, querySchema, REST_UNSUPPORTED_FLAGS, ROUTE_OPTIONS } from './schemas.js';

type ImageResult = ({ status: 'ok'; cached: boolean } & ImageJson) | ({ status: 'error' } & ReturnType<typeof errorBody>);

/** True for failures that belong to one photo (bad bytes, no face) rather than to the whole request. */
function perImage(e: unknown): e is FaceoptError {
  return isFaceoptError(e) && e.httpStatus < 500;
}

/**
 * The base64 strings of a JSON body's `images`: a list, or InsightFace-REST's `{"data": [...]}`. Its
 * `{"urls": [...]}` is refused: the server does not fetch images from addresses a client names.
 */
function jsonImages(images: unknown): unknown[] {
  const bad = (expected: string, received: string) => new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected, name: 'body field images', received });
  if (Array.isArray(images)) {
    if (images.length === 0) throw bad('at least one base64 image', 'an empty list');
    return images;
  }
  const o = images as Record<string, unknown>;
  if ('urls' in o) throw bad('base64 images in images.data (the server does not download images by URL)', 'images.urls');
  const extra = Object.keys(o).filter((k) => k !== 'data');
  if (extra.length) throw bad('a list of base64 images, or {"data": [...]}', `images.${extra[0]!.slice(0, 40)}`);
  if (!Array.isArray(o.data)) throw bad('a list of base64 images in images.data', o.data === undefined ? 'no images.data' : `images.data that is not a list`);
  if (o.data.length === 0) throw bad('at least one base64 image in images.data', 'an empty list');
  return o.data;
}

/** Register /v1/extract. */
export function registerExtractRoute(app: FastifyInstance, ctx: AppContext): void {
  const { service } = ctx;
  const spec: ImageSpec = {
    fields: ['file', 'files', 'image', 'images'],
    min: 1,
    max: ctx.config.maxImagesPerRequest,
    lenient: true,
    options: ROUTE_OPTIONS.extract,
    fromJson: (b) => {
      for (const flag of REST_UNSUPPORTED_FLAGS) {
        if (b[flag] === true) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `false or nothing (faceopt returns boxes, scores, keypoints and embeddings only)`, name: `body field ${flag}`, received: 'true' });
      }
      const list = jsonImages(b.images);
      return list.map((s, i): RequestImage => {
        const source = `images[${i}]`;
        try {
          return { field: 'images', source, bytes: fromBase64(s, source) };
        } catch (e) {
          if (!isFaceoptError(e)) throw e;
          return { field: 'images', source, bytes: Buffer.alloc(0), error: e };
        }
      });
    },
  };

  app.post('/v1/extract', { schema: { querystring: querySchema(ROUTE_OPTIONS.extract), body: jsonBody(extractJson) }, preHandler: checkQueryFirst }, async (req, reply) => {
    const t0 = performance.now();
    const { results, errors } = await service.run(async (deadline) => {
      const { images, fields } = await readImages(req, spec, ctx.config.bodyLimit, deadline);
      const query = faceQuery({ part: 'query parameter', values: (req.query ?? {}) as Record<string, unknown> }, { part: formOrBody(req), values: fields });
      const errors: FaceoptError[] = [];
      const results = await Promise.all(images.map(async (img, i): Promise<ImageResult> => {
        try {
          if (img.error) throw img.error;
          checkImageBytes(img, img.declared);
          const { value, hit } = await service.extract(img.bytes, img.source, query, deadline);
          return { status: 'ok', cached: hit, ...value };
        } catch (e) {
          if (!perImage(e)) throw e; // timeouts, shutdown, internal errors fail the whole request
          errors[i] = e;
          return { status: 'error', ...errorBody(e) };
        }
      }));
      return { results, errors };
    });
    if (results.every((r) => r.status === 'error')) throw errors[0];
    const ok = results.filter((r) => r.status === 'ok');
    reply.header('x-faceopt-cache', ok.every((r) => r.cached) ? 'hit' : ok.some((r) => r.cached) ? 'partial' : 'miss');
    return { took_ms: Math.round(performance.now() - t0), images: results };
  });
}
