/**
 * JSON schemas of the image routes: the query-string options (InsightFace-REST names) and the JSON
 * bodies. Unknown query keys are refused (a typo such as `treshold` must not be silently ignored).
 * Multipart and raw-image bodies are not JSON, so only the application/json body is schema-checked;
 * their form fields go through the same checks in input.ts.
 */
import { MIN_DET_THRESHOLD } from '../config.js';

const base64 = { type: 'string', minLength: 1 } as const;

/** Options accepted by the face routes, in the query string (or as form / JSON fields). */
export const faceOptionProperties = {
  threshold: { type: 'number', minimum: MIN_DET_THRESHOLD, maximum: 1, description: 'detection score threshold (default 0.5)' },
  limit_faces: { type: 'integer', minimum: 0, maximum: 1000, description: 'keep the N largest and most central faces (0: all)' },
  min_face_size: { type: 'number', minimum: 0, maximum: 100_000, description: 'drop faces narrower or shorter than this many pixels' },
  embed_only: { type: 'boolean', description: 'the image is an aligned face crop (112x112): skip detection' },
  extract_embedding: { type: 'boolean', description: '/v1/extract: false returns boxes and keypoints only' },
} as const;

export type FaceOption = keyof typeof faceOptionProperties;

/**
 * The options each route takes; any other is refused (400), so an option that would do nothing there
 * (`embed_only` on /v1/detect, `limit_faces` where only the main face is used) is not silently accepted.
 */
export const ROUTE_OPTIONS = {
  embed: ['threshold', 'min_face_size', 'embed_only'],
  detect: ['threshold', 'limit_faces', 'min_face_size'],
  verify: ['threshold', 'min_face_size', 'embed_only'],
  extract: ['threshold', 'limit_faces', 'min_face_size', 'embed_only', 'extract_embedding'],
} as const satisfies Record<string, readonly FaceOption[]>;

function pick(names: readonly FaceOption[]): Partial<typeof faceOptionProperties> {
  return Object.fromEntries(names.map((n) => [n, faceOptionProperties[n]]));
}

/**
 * The query-string schema of a route: its options as text, once each, nothing else. Their values are
 * parsed by input.ts faceQuery, by the same rules as form and JSON fields.
 */
export function querySchema(names: readonly FaceOption[]): object {
  return { type: 'object', properties: Object.fromEntries(names.map((n) => [n, { type: 'string' }])), additionalProperties: false };
}

/** `{"image": "<base64>"}` plus the route's options. */
export function singleImageJson(names: readonly FaceOption[]): object {
  return { type: 'object', required: ['image'], properties: { image: base64, ...pick(names) }, additionalProperties: false };
}

/** `{"a": "<base64>", "b": "<base64>"}` plus /v1/verify's options. */
export const verifyJson = {
  type: 'object',
  required: ['a', 'b'],
  properties: { a: base64, b: base64, ...pick(ROUTE_OPTIONS.verify) },
  additionalProperties: false,
} as const;

/**
 * InsightFace-REST's fields that ask for what faceopt does not return (face crops, gender and age,
 * MessagePack): accepted when false, refused when true (input.ts restFlags).
 */
export const REST_UNSUPPORTED_FLAGS = ['return_face_data', 'extract_ga', 'msgpack'] as const;

/** InsightFace-REST's fields that change nothing here (landmarks always come back; timings are `took_ms`). */
export const REST_ACCEPTED = {
  return_landmarks: { type: 'boolean' },
  verbose_timings: { type: 'boolean' },
  api_ver: { type: 'string', maxLength: 8 },
} as const;

/** InsightFace-REST's `{"images": {"data": [...]}}`, or `{"images": [...]}`, plus options and its other fields. */
export const extractJson = {
  type: 'object',
  required: ['images'],
  properties: {
    // a list, or {data: [...]}: checked in extract.ts, which answers an item that is not an image in its own
    // entry, as for {data: [...]} (an items schema refused the whole request for one bad item)
    images: { type: ['array', 'object'] },
    ...pick(ROUTE_OPTIONS.extract),
    ...REST_ACCEPTED,
    ...Object.fromEntries(REST_UNSUPPORTED_FLAGS.map((f) => [f, { type: 'boolean' }])),
  },
  additionalProperties: false,
} as const;

/** Body schema for a route: only JSON bodies are validated by schema. */
export function jsonBody(schema: object): { content: Record<string, { schema: object }> } {
  return { content: { 'application/json': { schema } } };
}
