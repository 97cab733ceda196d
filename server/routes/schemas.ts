/**
 * JSON schemas of the image routes: the query-string options (InsightFace-REST names) and the JSON
 * bodies. Unknown query keys are refused (a typo such as `treshold` must not be silently ignored).
 * Multipart and raw-image bodies are not JSON, so only the application/json body is schema-checked;
 * their form fields go through the same checks in input.ts.
 */

const base64 = { type: 'string', minLength: 1 } as const;

/** Options accepted by the face routes, in the query string (or as form / JSON fields). */
export const faceOptionProperties = {
  threshold: { type: 'number', minimum: 0, maximum: 1, description: 'detection score threshold (default 0.5)' },
  limit_faces: { type: 'integer', minimum: 0, maximum: 1000, description: 'keep at most N faces, largest and most central first (0: all)' },
  min_face_size: { type: 'number', minimum: 0, description: 'drop faces narrower or shorter than this many pixels' },
  embed_only: { type: 'boolean', description: 'the image is an aligned face crop (112x112): skip detection' },
  extract_embedding: { type: 'boolean', description: '/v1/extract: false returns boxes and keypoints only' },
} as const;

export const faceQuerySchema = { type: 'object', properties: faceOptionProperties, additionalProperties: false } as const;

/** `{"image": "<base64>"}` plus options. */
export const singleImageJson = {
  type: 'object',
  required: ['image'],
  properties: { image: base64, ...faceOptionProperties },
  additionalProperties: false,
} as const;

/** `{"a": "<base64>", "b": "<base64>"}`. */
export const verifyJson = {
  type: 'object',
  required: ['a', 'b'],
  properties: { a: base64, b: base64, ...faceOptionProperties },
  additionalProperties: false,
} as const;

/** InsightFace-REST's `{"images": {"data": [...]}}`, or `{"images": [...]}`, plus options. */
export const extractJson = {
  type: 'object',
  required: ['images'],
  properties: {
    images: {
      anyOf: [
        { type: 'array', items: base64, minItems: 1 },
        { type: 'object', required: ['data'], properties: { data: { type: 'array', items: base64, minItems: 1 } }, additionalProperties: false },
      ],
    },
    ...faceOptionProperties,
  },
  additionalProperties: false,
} as const;

/** Body schema for a route: only JSON bodies are validated by schema. */
export function jsonBody(schema: object): { content: Record<string, { schema: object }> } {
  return { content: { 'application/json': { schema } } };
}
