import { describe, expect, it } from 'vitest';
import { loadModel, upgradeOpset } from '../../pipeline/onnx/index.js';
import { fixtureFile } from '../fixtures/index.js';
import { maxOutputDiff } from './compare.js';

// Every InsightFace-shaped fixture (opset 11, like the originals) upgraded to 13 computes the same
// outputs. iresnet34/100 share iresnet18/50's block code and are left out to keep the suite fast.
const CASES: [string, number[]][] = [
  ['iresnet18', [2, 3, 112, 112]],
  ['iresnet50', [1, 3, 112, 112]],
  ['mobilefacenet512', [2, 3, 112, 112]],
  ['scrfd', [1, 3, 640, 640]],
  ['scrfd_dynamic', [1, 3, 320, 480]],
];

describe('opset upgrade of the fixtures', () => {
  for (const [name, dims] of CASES) {
    it(`${name}: opset 11 -> 13 keeps outputs within 1e-5`, async () => {
      const file = await fixtureFile(name);
      const m = loadModel(file);
      expect(m.opset()).toBe(11);
      const up = m.clone();
      upgradeOpset(up, 13);
      expect(up.opset()).toBe(13);
      const { maxAbs } = await maxOutputDiff(m.toBytes(), up.toBytes(), dims);
      expect(maxAbs).toBeLessThanOrEqual(1e-5);
    });
  }
});
