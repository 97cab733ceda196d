/**
 * Throughput behaviour over the synthetic backend: concurrent requests share recognizer runs (and each
 * still gets its own embedding), batching off means batches of one, a burst larger than the queue gets
 * 503 + Retry-After without losing admitted requests, and the server serves normally afterwards.
 * No timing assertions: only counts and values.
 */
import { describe, expect, it } from 'vitest';
import { FakeBackend, fakeApp, solidImage } from './helpers.js';

const colours: [number, number, number][] = Array.from({ length: 16 }, (_, i) => [40 + i * 12, 200 - i * 9, 60 + (i % 4) * 40]);

describe('micro-batching', () => {
  it('16 concurrent /v1/embed requests share runs; every answer is its own image\'s embedding', async () => {
    const fake = new FakeBackend({ embedDelayMs: 30 });
    const { app } = await fakeApp({ batch: { maxBatch: 8, maxWaitMs: 20 }, cache: { memoryEntries: 0 } }, fake);
    try {
      const images = await Promise.all(colours.map((c) => solidImage(c)));
      const alone = [];
      for (const img of images.slice(0, 3)) alone.push((await app.inject({ method: 'POST', url: '/v1/embed', payload: img, headers: { 'content-type': 'image/jpeg' } })).json().embedding);
      fake.batches.length = 0;
      const res = await Promise.all(images.map((img) => app.inject({ method: 'POST', url: '/v1/embed', payload: img, headers: { 'content-type': 'image/jpeg' } })));
      expect(res.every((r) => r.statusCode === 200)).toBe(true);
      expect(fake.batches.reduce((a, b) => a + b, 0)).toBe(16);
      expect(Math.max(...fake.batches)).toBeGreaterThan(1);
      expect(Math.max(...fake.batches)).toBeLessThanOrEqual(8);
      for (let i = 0; i < 3; i++) expect(res[i].json().embedding).toEqual(alone[i]);
      const metrics = (await app.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/faceopt_batch_size_count\{model="recognizer"\} \d+/);
      expect(metrics).toMatch(/faceopt_inference_seconds_count\{model="detector"\} 19/);
    } finally {
      await app.close();
    }
  });

  it('two inference lanes: two recognizer runs at once, never more; every answer is its own image\'s embedding', async () => {
    const one = new FakeBackend({ embedDelayMs: 30 });
    const two = new FakeBackend({ embedDelayMs: 30, lanes: 2 });
    const images = await Promise.all(colours.map((c) => solidImage(c)));
    const answers = [];
    for (const fake of [one, two]) {
      const { app } = await fakeApp({ batch: { maxBatch: 4, maxWaitMs: 5 }, cache: { memoryEntries: 0 } }, fake);
      try {
        const res = await Promise.all(images.map((img) => app.inject({ method: 'POST', url: '/v1/embed', payload: img, headers: { 'content-type': 'image/jpeg' } })));
        expect(res.every((r) => r.statusCode === 200)).toBe(true);
        answers.push(res.map((r) => r.json().embedding));
      } finally {
        await app.close();
      }
    }
    expect(one.maxConcurrentEmbeds).toBe(1);
    expect(two.maxConcurrentEmbeds).toBe(2);
    expect(two.batches.reduce((a, b) => a + b, 0)).toBe(16);
    expect(answers[1]).toEqual(answers[0]);
  });

  it('batching off (max batch 1): every run has one crop', async () => {
    const fake = new FakeBackend({ embedDelayMs: 5 });
    const { app } = await fakeApp({ batch: { maxBatch: 1 }, cache: { memoryEntries: 0 } }, fake);
    try {
      const images = await Promise.all(colours.slice(0, 8).map((c) => solidImage(c)));
      await Promise.all(images.map((img) => app.inject({ method: 'POST', url: '/v1/embed', payload: img, headers: { 'content-type': 'image/jpeg' } })));
      expect(fake.batches).toEqual(Array(8).fill(1));
    } finally {
      await app.close();
    }
  });
});

describe('overload', () => {
  it('a burst of 40 against a queue of 8: the rest get 503 + Retry-After, admitted ones succeed, then it recovers', async () => {
    const fake = new FakeBackend({ embedDelayMs: 40 });
    const { app } = await fakeApp({ maxQueue: 8, batch: { maxBatch: 4 }, cache: { memoryEntries: 0 } }, fake);
    try {
      const img = await solidImage([120, 80, 60]);
      const burst = await Promise.all(Array.from({ length: 40 }, () => app.inject({ method: 'POST', url: '/v1/embed', payload: img, headers: { 'content-type': 'image/jpeg' } })));
      const ok = burst.filter((r) => r.statusCode === 200);
      const refused = burst.filter((r) => r.statusCode === 503);
      expect(ok.length + refused.length).toBe(40);
      expect(ok.length).toBeGreaterThanOrEqual(8);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect(r.json().error.code).toBe('FACEOPT_ERR_OVERLOADED');
        expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
      expect(app.faceopt.service.admission.inflight).toBe(0);
      const after = await Promise.all(Array.from({ length: 8 }, () => app.inject({ method: 'POST', url: '/v1/embed', payload: img, headers: { 'content-type': 'image/jpeg' } })));
      expect(after.map((r) => r.statusCode)).toEqual(Array(8).fill(200));
      const metrics = (await app.inject({ url: '/metrics' })).body;
      expect(metrics).toContain(`faceopt_requests_rejected_total{reason="overloaded"} ${refused.length}`);
      expect(metrics).toContain('faceopt_requests_admitted 0');
    } finally {
      await app.close();
    }
  });
});
