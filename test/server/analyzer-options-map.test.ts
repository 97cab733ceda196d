/**
 * analyzerOptionsFor: every server setting the face pipeline needs reaches it (a mutation audit found
 * threads, batch size and the detector-size wording unchecked).
 */
import { describe, expect, it } from 'vitest';
import { analyzerOptionsFor, servedDetSize } from '../../server/analyzer-options.js';
import { resolveServerConfig } from '../../server/config.js';
import { fakeModels } from './helpers.js';

describe('analyzerOptionsFor', () => {
  it('passes models, provider, threads, det threshold, pixel limit and batch size; no det size when none is set', () => {
    const config = resolveServerConfig({ intraOpThreads: 3, detThreshold: 0.7, maxPixels: 1234, batch: { maxBatch: 5 } });
    expect(analyzerOptionsFor(fakeModels(), config)).toEqual({
      detector: '/fake/detector.onnx', recognizer: '/fake/recognizer.onnx',
      session: { provider: 'cpu', intraOpThreads: 3 },
      detect: { threshold: 0.7 }, decode: { maxPixels: 1234 }, maxBatch: 5,
    });
  });

  it('names where the det size came from: --det-size, or the report', () => {
    const flagged = analyzerOptionsFor(fakeModels(), resolveServerConfig({ detSize: 320 }));
    expect(flagged).toMatchObject({ detSize: 320, detSizeName: '--det-size' });
    const fromReport = analyzerOptionsFor({ ...fakeModels(), detSize: 480 }, resolveServerConfig());
    expect(fromReport).toMatchObject({ detSize: 480, detSizeName: "the input size the detector's report evaluated (480)" });
    expect(servedDetSize({ detSize: 480 }, { detSize: null })).toBe(480);
    expect(servedDetSize({ detSize: null }, { detSize: 320 })).toBe(320);
  });
});
