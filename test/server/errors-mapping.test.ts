/**
 * server/errors.ts unit by unit (a mutation audit found these unchecked): how a Fastify or schema error
 * becomes a coded error (status, code, the words of its message), which 503s carry Retry-After, and the
 * raw HTTP answer written on a socket outside Fastify.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaceoptError } from '../../pipeline/errors.js';
import type { FaceoptApp } from '../../server/app.js';
import { rawErrorResponse, retryAfter, toFaceoptError } from '../../server/errors.js';
import { fakeApp, listenLoopback } from './helpers.js';

const ctx = { bodyLimit: 1234 };
const validation = (v: object, context = 'querystring') => Object.assign(new Error('validation'), { statusCode: 400, validation: [v], validationContext: context });

describe('toFaceoptError', () => {
  it('a long value is shown cut to 60 characters', () => {
    const long = 'x'.repeat(100);
    const e = toFaceoptError(validation({ instancePath: '/threshold', message: 'must be number' }), { ...ctx, input: () => ({ threshold: long }) })!;
    expect(e.message).toBe(`Expected a number for query parameter threshold but received ${'x'.repeat(57)}....`);
    const exact = 'y'.repeat(60);
    const e2 = toFaceoptError(validation({ instancePath: '/threshold', message: 'must be number' }), { ...ctx, input: () => ({ threshold: exact }) })!;
    expect(e2.message).toBe(`Expected a number for query parameter threshold but received ${exact}.`);
  });

  it('says what each schema type wants in words', () => {
    const words = (message: string) => toFaceoptError(validation({ instancePath: '/limit_faces', message }), { ...ctx, input: () => ({ limit_faces: 'q' }) })!.message;
    expect(words('must be integer')).toBe('Expected an integer for query parameter limit_faces but received q.');
    expect(words('must be boolean')).toBe('Expected true or false for query parameter limit_faces but received q.');
    expect(words('must be <= 1000')).toBe('Expected a value <= 1000 for query parameter limit_faces but received q.');
    expect(words('must match format "x"')).toBe('Expected a value that must match format "x" for query parameter limit_faces but received q.');
  });

  it('a missing property is named with its path, received nothing', () => {
    const e = toFaceoptError(validation({ instancePath: '/images', message: "must have required property 'data'", params: { missingProperty: 'data' } }, 'body'), { ...ctx, input: () => ({ images: {} }) })!;
    expect(e.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(e.message).toBe('Expected a value for body field images.data but received nothing.');
  });

  it('413 and 415 are recognised by status as well as by Fastify code', () => {
    const big = toFaceoptError(Object.assign(new Error('too big'), { statusCode: 413, code: 'SOME_PLUGIN_LIMIT' }), ctx)!;
    expect(big.code).toBe('FACEOPT_ERR_PAYLOAD_TOO_LARGE');
    expect(big.message).toContain('1234 bytes');
    const media = toFaceoptError(Object.assign(new Error('no'), { statusCode: 415, code: 'SOME_PLUGIN_MEDIA' }), { ...ctx, contentType: 'text/csv' })!;
    expect(media.code).toBe('FACEOPT_ERR_UNSUPPORTED_MEDIA');
    expect(media.message).toContain('text/csv');
    expect(toFaceoptError(Object.assign(new Error('no'), { statusCode: 415 }), ctx)!.message).toContain('(none)');
    expect(toFaceoptError(Object.assign(new Error('no'), { statusCode: 415 }), { ...ctx, contentType: '' })!.message).toContain('(none)');
  });

  it('other 4xx become BAD_ARGUMENT (400 and 499 included), 5xx and plain errors stay internal (null)', () => {
    for (const statusCode of [400, 404, 499]) {
      expect(toFaceoptError(Object.assign(new Error(`bad ${statusCode}\nsecond line`), { statusCode }), ctx)?.code, String(statusCode)).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    }
    expect(toFaceoptError(Object.assign(new Error('bad\nsecond line'), { statusCode: 400 }), ctx)!.message).toBe('Expected a well-formed request for request but received bad.');
    expect(toFaceoptError(Object.assign(new Error('x'.repeat(500)), { statusCode: 400 }), ctx)!.message).toBe(`Expected a well-formed request for request but received ${'x'.repeat(200)}.`);
    for (const statusCode of [500, 502, 399]) expect(toFaceoptError(Object.assign(new Error('oops'), { statusCode }), ctx), String(statusCode)).toBeNull();
    expect(toFaceoptError(new Error('plain'), ctx)).toBeNull();
    expect(toFaceoptError(undefined, ctx)).toBeNull();
  });

  it('a coded error passes through unchanged', () => {
    const e = new FaceoptError('FACEOPT_ERR_TIMEOUT', { ms: 5 });
    expect(toFaceoptError(e, ctx)).toBe(e);
  });
});

describe('retryAfter', () => {
  it('every retryable 503 says 1 s unless it carries an estimate; other errors say nothing', () => {
    expect(retryAfter(new FaceoptError('FACEOPT_ERR_TIMEOUT', { ms: 5 }))).toBe('1');
    expect(retryAfter(new FaceoptError('FACEOPT_ERR_SHUTTING_DOWN'))).toBe('1');
    expect(retryAfter(new FaceoptError('FACEOPT_ERR_NOT_READY', { reason: 'loading' }))).toBe('1');
    expect(retryAfter(new FaceoptError('FACEOPT_ERR_OVERLOADED', { depth: 4, retryAfter: 3 }))).toBe('3');
    expect(retryAfter(new FaceoptError('FACEOPT_ERR_PAYLOAD_TOO_LARGE', { limit: 1 }))).toBeUndefined();
    expect(retryAfter(new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: 'x' }))).toBeUndefined();
  });
});

describe('rawErrorResponse', () => {
  it('a whole HTTP/1.1 answer that closes the connection, with Retry-After on a retryable 503 only', () => {
    const shutting = rawErrorResponse(new FaceoptError('FACEOPT_ERR_SHUTTING_DOWN'));
    const [head, body] = shutting.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(head).toContain('\r\nConnection: close');
    expect(head).toContain('\r\nRetry-After: 1');
    expect(head).toContain(`\r\nContent-Length: ${Buffer.byteLength(body)}`);
    expect(JSON.parse(body).error.code).toBe('FACEOPT_ERR_SHUTTING_DOWN');
    const large = rawErrorResponse(new FaceoptError('FACEOPT_ERR_PAYLOAD_TOO_LARGE', { limit: 1 }));
    expect(large).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(large).toContain('\r\nConnection: close');
    expect(large).not.toContain('Retry-After');
  });
});

describe('handleError', () => {
  let app: FaceoptApp | null = null;
  afterEach(async () => { await app?.close(); app = null; });

  it('a request whose body is still arriving at its deadline gets 503 TIMEOUT with Retry-After and Connection: close', async () => {
    ({ app } = await fakeApp({ timeoutMs: 300 }));
    const port = await listenLoopback(app);
    const boundary = 'stallstallstall';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(`POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 10000\r\n\r\n${head}\xff\xd8\xff${'x'.repeat(100)}`);
      });
      s.on('data', (d) => { got += d.toString('latin1'); });
      s.on('error', () => undefined);
      s.on('close', () => resolve(got)); // the server closes after its answer (Connection: close)
      setTimeout(() => { s.destroy(); resolve(got); }, 10_000).unref();
    });
    expect(answer).toMatch(/^HTTP\/1\.1 503/);
    expect(answer).toContain('FACEOPT_ERR_TIMEOUT');
    expect(answer.toLowerCase()).toContain('\r\nconnection: close\r\n');
    expect(answer.toLowerCase()).toContain('\r\nretry-after: 1\r\n');
  });
});
