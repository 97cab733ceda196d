/**
 * Hostile and malformed requests (truncated JPEGs, decompression bombs, PNG headers claiming huge sizes,
 * wrong types, broken multipart, deep or huge JSON, odd headers) through inject over the synthetic
 * backend, which decodes with the real sharp path: every answer is a coded 4xx, never a 5xx, and the
 * server still answers normally afterwards. The cases are shared with `npm run bench:hostile`
 * (bench/hostile-cases.ts), which sends them to a real server and also watches its memory.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileRequests as cases, hostileSeeds, type HostileSeeds } from '../../bench/hostile-cases.js';
import type { FaceoptApp } from '../../server/app.js';
import { FakeBackend, fakeApp } from './helpers.js';

const BODY_LIMIT = 2 * 1024 * 1024;
let app: FaceoptApp;
let seeds: HostileSeeds;

beforeAll(async () => {
  ({ app } = await fakeApp({ bodyLimit: BODY_LIMIT, maxPixels: 4_000_000, cache: { memoryEntries: 0 } }, new FakeBackend({ maxPixels: 4_000_000 })));
  seeds = await hostileSeeds();
});
afterAll(async () => { await app?.close(); });

/** The shared hostile cases (bench/hostile-cases.ts) that inject can send: not those only a socket parser sees. */
async function hostileRequests(): Promise<[string, InjectOptions][]> {
  return cases(seeds, { bodyLimit: BODY_LIMIT }).filter((c) => !c.socketOnly)
    .map((c) => [c.name, { method: c.method as InjectOptions['method'], url: c.url, headers: c.headers, payload: c.payload }]);
}

describe('hostile inputs', () => {
  it('each gets a coded 4xx, never a 5xx', async () => {
    const reqs = await hostileRequests();
    const seen: Record<string, number> = {};
    const messages: Record<string, string> = {};
    for (const [name, req] of reqs) {
      const res = await app.inject(req);
      seen[name] = res.statusCode;
      messages[name] = res.json().error?.message ?? '';
      expect.soft(res.statusCode, `${name}: ${res.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
      expect.soft(res.statusCode, `${name}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
      expect.soft(res.json().error.code, name).toMatch(/^FACEOPT_ERR_/);
    }
    expect(seen['PNG header claiming 100000 x 100000']).toBe(413);
    expect(seen['PNG bomb: 3000 x 3000 zeros in a few KB']).toBe(413);
    expect(seen['body over the limit']).toBe(413);
    expect(seen['JPEG truncated at 100']).toBe(400);
    expect(seen['SVG with a script']).toBe(415);
    expect(seen['PNG header claiming 50000 x 50000']).toBe(413);
    // refused from sharp's header (25,000,000 pixels), not decoded first by the wasm path as 16 x 16
    expect(seen['JPEG of 5000 x 5000 claiming 16 x 16 past FF 00 stuffing']).toBe(413);
    expect(messages['JPEG of 5000 x 5000 claiming 16 x 16 past FF 00 stuffing']).toContain('25000000 pixels');
    expect(seen['gzip bomb (512 MiB) as JSON to /v1/extract']).toBe(415); // never inflated: a Content-Encoding is refused up front
    expect(seen['gzip bomb (512 MiB) as image/jpeg']).toBe(415);
    expect(seen['application/xml']).toBe(415);
    expect(seen['multipart with 10 files to /embed']).toBe(400);
    expect(seen['multipart missing the file field']).toBe(400);
    expect(seen['PUT /v1/models']).toBe(405); // the endpoint takes GET
    expect(seen['POST /v2/embed']).toBe(404);
  });

  it('10 rounds of every hostile request: still 0 5xx, then a normal photo is answered', async () => {
    const reqs = await hostileRequests();
    let fivexx = 0;
    let total = 0;
    for (let round = 0; round < 10; round++) {
      const res = await Promise.all(reqs.map(([, r]) => app.inject(r)));
      for (const r of res) { total++; if (r.statusCode >= 500) fivexx++; }
    }
    expect(total).toBe(reqs.length * 10);
    expect(fivexx).toBe(0);
    const ok = await app.inject({ method: 'POST', url: '/v1/embed', payload: seeds.jpeg, headers: { 'content-type': 'image/jpeg' } });
    expect(ok.statusCode).toBe(200);
    expect(app.faceopt.service.admission.inflight).toBe(0);
  });
});
