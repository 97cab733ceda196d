/**
 * The face routes: the seed-compatible `POST /embed` (multipart `file`, answers `{"embedding": [...]}`
 * for the main face), and `/v1/embed`, `/v1/detect`, `/v1/verify`. Each admits the request, reads its
 * image(s) (multipart, raw body or base64 JSON), and asks the FaceService; `x-faceopt-cache` says
 * whether the answer came from the cache.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FaceoptError } from '../../pipeline/errors.js';
import type { Deadline } from '../batcher.js';
import { cosineSimilarity } from '../../pipeline/faces/similarity.js';
import type { AppContext } from '../app.js';
import { checkQueryFirst, faceQuery, formOrBody, fromBase64, readImages, type ImageSpec, type RequestImage } from '../input.js';
import type { FaceJson } from '../service.js';
import { jsonBody, querySchema, ROUTE_OPTIONS, singleImageJson, verifyJson } from './schemas.js';

const round = (v: number, digits: number): number => Number(v.toFixed(digits));

const single = (options: readonly string[]): ImageSpec => ({
  fields: ['file', 'image'],
  min: 1,
  max: 1,
  options,
  fromJson: (b) => [{ field: 'image', source: 'image', bytes: fromBase64(b.image, 'image') }],
});
const EMBED = single(ROUTE_OPTIONS.embed);
const DETECT = single(ROUTE_OPTIONS.detect);

const PAIR: ImageSpec = {
  fields: ['a', 'b', 'file'],
  min: 2,
  max: 2,
  options: ROUTE_OPTIONS.verify,
  fromJson: (b) => [
    { field: 'a', source: 'a', bytes: fromBase64(b.a, 'a') },
    { field: 'b', source: 'b', bytes: fromBase64(b.b, 'b') },
  ],
};

type Query = Record<string, unknown>;

/** Images and options of a request (query string, then form or JSON fields). */
async function input(req: FastifyRequest, ctx: AppContext, spec: ImageSpec, deadline: Deadline) {
  const { images, fields } = await readImages(req, spec, ctx.config.bodyLimit, deadline);
  return { images, query: faceQuery({ part: 'query parameter', values: (req.query ?? {}) as Query }, { part: formOrBody(req), values: fields }) };
}

/**
 * `a` then `b`, or two `file` parts in upload order; anything else (a and file, a twice) is refused
 * rather than guessed, so the answer's `a` is always the image sent as `a`.
 */
function pairOrder(images: RequestImage[]): [RequestImage, RequestImage] {
  const fields = images.map((i) => i.field).join(',');
  if (fields === 'a,b' || fields === 'file,file') return [images[0]!, images[1]!];
  if (fields === 'b,a') return [images[1]!, images[0]!];
  throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'images "a" and "b", or two "file" parts', name: 'multipart files', received: fields.split(',').map((f) => `"${f}"`).join(' and ') });
}

function withoutEmbedding(f: FaceJson): Omit<FaceJson, 'embedding'> {
  const { embedding: _drop, ...rest } = f;
  return rest;
}

/** Register /embed, /v1/embed, /v1/detect and /v1/verify. */
export function registerFaceRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { service } = ctx;
  const embedSchema = { querystring: querySchema(ROUTE_OPTIONS.embed), body: jsonBody(singleImageJson(ROUTE_OPTIONS.embed)) };
  const detectSchema = { querystring: querySchema(ROUTE_OPTIONS.detect), body: jsonBody(singleImageJson(ROUTE_OPTIONS.detect)) };
  const opts = (schema: object) => ({ schema, preHandler: checkQueryFirst });

  const embedMain = (req: FastifyRequest) => service.run(async (deadline) => {
    const { images, query } = await input(req, ctx, EMBED, deadline);
    return service.embedMain(images[0].bytes, images[0].source, query, deadline);
  });

  app.post('/embed', opts(embedSchema), async (req, reply) => {
    const { value, hit } = await embedMain(req);
    reply.header('x-faceopt-cache', hit ? 'hit' : 'miss');
    return { embedding: value.embedding };
  });

  app.post('/v1/embed', opts(embedSchema), async (req, reply) => {
    const { value, hit } = await embedMain(req);
    reply.header('x-faceopt-cache', hit ? 'hit' : 'miss');
    return { ...value, dim: value.embedding?.length ?? 0 };
  });

  app.post('/v1/detect', opts(detectSchema), async (req, reply) => {
    const { value, hit } = await service.run(async (deadline) => {
      const { images, query } = await input(req, ctx, DETECT, deadline);
      return service.detect(images[0].bytes, images[0].source, query, deadline);
    });
    reply.header('x-faceopt-cache', hit ? 'hit' : 'miss');
    return value;
  });

  app.post('/v1/verify', opts({ querystring: querySchema(ROUTE_OPTIONS.verify), body: jsonBody(verifyJson) }), async (req, reply) => {
    const threshold = ctx.models.matchThreshold;
    const result = await service.run(async (deadline) => {
      const { images, query } = await input(req, ctx, PAIR, deadline);
      const [a, b] = pairOrder(images);
      const [fa, fb] = await Promise.all([
        service.embedMain(a.bytes, a.source, query, deadline),
        service.embedMain(b.bytes, b.source, query, deadline),
      ]);
      return { fa, fb };
    });
    const cosine = cosineSimilarity(result.fa.value.embedding ?? [], result.fb.value.embedding ?? []);
    // as /v1/extract says it: one of the two from the cache is 'partial'
    reply.header('x-faceopt-cache', result.fa.hit && result.fb.hit ? 'hit' : result.fa.hit || result.fb.hit ? 'partial' : 'miss');
    return {
      cosine: round(cosine, 6),
      threshold: threshold.value,
      thresholdSource: threshold.source,
      same: cosine > threshold.value, // strictly above, as the report's evaluation counts a match
      a: withoutEmbedding(result.fa.value),
      b: withoutEmbedding(result.fb.value),
    };
  });
}
