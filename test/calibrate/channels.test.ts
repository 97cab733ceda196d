import { describe, expect, it } from 'vitest';
import { makeNode } from '../../pipeline/onnx/index.js';
import { collectChannelAmax, collectChannelMeans, collectChannelStats } from '../../pipeline/calibrate/channels.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { seededFloats } from '../onnx/compare.js';
import { tinyModel } from '../onnx/tiny.js';

// x [N,3,5,5] -> conv (4 ch) -> c; c -> global pool -> flatten -> f [N,4] (a 2-D tensor)
const model = (opset: number) => tinyModel({
  opset, input: { name: 'x', shape: ['N', 3, 5, 5] }, outputs: ['f'],
  nodes: [
    makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    makeNode('GlobalAveragePool', ['c'], ['p'], 'pool'),
    makeNode('Flatten', ['p'], ['f'], 'flat'),
  ],
  initializers: [{ name: 'w', dims: [4, 3, 3, 3], data: seededFloats(108, 1) }, { name: 'b', dims: [4], data: [0.5, -0.5, 2, -2] }],
});

describe('collectChannelStats (in-graph per-channel mean and max |x|)', () => {
  for (const opset of [13, 18]) {
    it(`matches a JS reference over several batches, for 4-D and 2-D tensors (opset ${opset})`, async () => {
      const m = model(opset);
      const batches = [2, 3].map((n, i) => ({ data: seededFloats(n * 75, 20 + i), dims: [n, 3, 5, 5] }));
      const got = await collectChannelStats(m, batches, ['c', 'f']);
      // reference: run the float graph with c and f exposed, reduce in JS
      const probe = m.clone();
      probe.graph.proto.output!.push({ name: 'c', type: { tensorType: { elemType: 1 } } });
      const s = await createSession(probe.toBytes());
      const sum = { c: new Float64Array(4), f: new Float64Array(4) };
      const amax = { c: new Float64Array(4), f: new Float64Array(4) };
      const count = { c: 0, f: 0 };
      for (const b of batches) {
        const out = await runSession(s, { x: floatTensor(b.data, b.dims) });
        for (const t of ['c', 'f'] as const) {
          const d = out[t]!.data as Float32Array;
          const inner = t === 'c' ? 25 : 1;
          for (let i = 0; i < d.length; i++) {
            const ch = Math.floor(i / inner) % 4;
            sum[t][ch] += d[i]!; amax[t][ch] = Math.max(amax[t][ch]!, Math.abs(d[i]!));
          }
          count[t] += d.length / 4;
        }
      }
      await s.release();
      for (const t of ['c', 'f'] as const) {
        Array.from(got.mean.get(t)!).forEach((v, ch) => expect(v).toBeCloseTo(sum[t][ch]! / count[t], 5));
        Array.from(got.amax.get(t)!).forEach((v, ch) => expect(v).toBeCloseTo(amax[t][ch]!, 6));
      }
      // asking for one of the two computes only that one, with the same values
      const means = await collectChannelMeans(m, batches, ['c', 'f']);
      const maxes = await collectChannelAmax(m, batches, ['c', 'f']);
      for (const t of ['c', 'f'] as const) {
        expect(means.get(t)).toEqual(got.mean.get(t));
        expect(maxes.get(t)).toEqual(got.amax.get(t));
      }
      expect((await collectChannelStats(m, batches, ['c'], undefined, { amax: false })).amax.size).toBe(0);
    });
  }

  it('a tensor named twice is measured once, and no tensor gives empty maps (mutation audit)', async () => {
    const m = model(13);
    const batches = [{ data: seededFloats(2 * 75, 30), dims: [2, 3, 5, 5] }];
    const twice = await collectChannelStats(m, batches, ['c', 'c']);
    const once = await collectChannelStats(m, batches, ['c']);
    expect([...twice.mean.keys()]).toEqual(['c']);
    expect(twice).toEqual(once);
    const none = await collectChannelStats(m, batches, []);
    expect(none.mean.size + none.amax.size).toBe(0);
  });
});
