import { expect, it } from 'vitest';
import { loadModel, upgradeOpset } from '../../pipeline/onnx/index.js';
import { maxOutputDiff } from './compare.js';
import { describeShared, shared } from '../helpers/shared.js';

const CASES: [string, number[]][] = [
  ['mobileface_paddle_128d.onnx', [2, 3, 112, 112]],
  ['scrfd_500m_bnkps.onnx', [1, 3, 640, 640]],
  ['scrfd_500m_bnkps_dynamic.onnx', [1, 3, 640, 640]],
];

describeShared('opset upgrade of the shared InsightFace models', () => {
  for (const [file, dims] of CASES) {
    for (const target of [13, 18, 21]) {
      it(`${file} -> opset ${target} keeps outputs within 1e-5`, async () => {
        const original = loadModel(shared('models', file));
        const upgraded = original.clone();
        const r = upgradeOpset(upgraded, target);
        expect(r.from).toBeLessThan(13);
        expect(upgraded.opset()).toBe(target);
        const { maxAbs } = await maxOutputDiff(original.toBytes(), upgraded.toBytes(), dims);
        expect(maxAbs).toBeLessThanOrEqual(1e-5);
      });
    }
  }
});
