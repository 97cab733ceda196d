import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadModel, saveModel } from '../../pipeline/onnx/index.js';
import { describeShared, shared } from '../helpers/shared.js';
import { maxOutputDiff } from './compare.js';

const MODELS: [string, number[]][] = [
  ['mobileface_paddle_128d.onnx', [2, 3, 112, 112]],
  ['scrfd_500m_bnkps.onnx', [1, 3, 640, 640]],
  ['scrfd_500m_bnkps_dynamic.onnx', [1, 3, 480, 640]],
];

describeShared('read -> write -> read of the shared models', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-rt-'));
  for (const [file, dims] of MODELS) {
    it(`${file}: initializers byte-stable, outputs identical`, async () => {
      const src = shared('models', file);
      const a = loadModel(src);
      const out = path.join(dir, file);
      await saveModel(a, out);
      const b = loadModel(out);
      const names = a.graph.initializerNames();
      expect(b.graph.initializerNames()).toEqual(names);
      for (const n of names) {
        const ta = a.graph.initializer(n)!;
        const tb = b.graph.initializer(n)!;
        expect(Buffer.from(tb.rawData ?? [])).toEqual(Buffer.from(ta.rawData ?? []));
        expect(tb.floatData ?? []).toEqual(ta.floatData ?? []);
      }
      const { maxAbs } = await maxOutputDiff(readFileSync(src), readFileSync(out), dims);
      expect(maxAbs).toBe(0);
    });
  }
});
