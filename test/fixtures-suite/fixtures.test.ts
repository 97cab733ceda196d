/**
 * Structure of the InsightFace-shaped fixtures, read back from their encoded bytes: op histograms,
 * parameter counts and MACs against the reference architectures, opset/IR, tensor layouts, determinism,
 * the on-disk cache and the writer script. Inference checks live in fixtures-runtime.test.ts.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { sha256 } from '../../pipeline/fsutil.js';
import { FIXTURE_BUILDERS, FIXTURE_NAMES, FIXTURES, encodeModel, fixtureBytes, fixtureFile, requireFixtureName } from '../fixtures/index.js';
import { buildIResNet, IRESNET_LAYERS, type IResNetDepth } from '../fixtures/iresnet.js';
import { buildMobileFaceNet } from '../fixtures/mobilefacenet.js';
import { buildScrfd } from '../fixtures/scrfd.js';
import { main as writeMain, writeFixtures } from '../fixtures/write.js';
import { decode, dims, floatParams, initializerDims, opHistogram } from './decode.js';

/** w600k_r50.onnx as published in buffalo_l: 174,383,860 bytes (sha256 4c06341c...). */
const W600K_R50_BYTES = 174_383_860;

/** IResNet MACs by hand from iresnet.py, independent of the builder's own counting. */
function iresnetMacs(layers: readonly number[]): number {
  let macs = 3 * 64 * 9 * 112 * 112;
  let cin = 64;
  let hw = 112;
  layers.forEach((blocks, stage) => {
    const c = [64, 128, 256, 512][stage];
    for (let b = 0; b < blocks; b++) {
      const out = b === 0 ? hw / 2 : hw;
      macs += cin * c * 9 * hw * hw + c * c * 9 * out * out + (b === 0 ? cin * c * out * out : 0);
      cin = c;
      hw = out;
    }
  });
  return macs + 512 * 7 * 7 * 512;
}

describe('IResNet fixtures', () => {
  const expected: Record<IResNetDepth, { params: number; gmacs?: number }> = {
    18: { params: 24_025_728, gmacs: 2.6 },
    34: { params: 34_139_456 },
    50: { params: 43_590_976, gmacs: 6.3 },
    100: { params: 65_156_288, gmacs: 12.1 },
  };

  for (const depth of [18, 34, 50] as const) {
    it(`iresnet${depth}: op histogram, params and layouts as exported from iresnet.py`, () => {
      const builder = buildIResNet(depth);
      const bytes = encodeModel(builder.build());
      const m = decode(bytes);
      const B = IRESNET_LAYERS[depth].reduce((a, b) => a + b, 0);
      expect(opHistogram(m)).toEqual({
        Conv: 1 + 2 * B + 4, PRelu: 1 + B, BatchNormalization: B + 2, Add: B, Flatten: 1, Gemm: 1,
      });
      expect(floatParams(m)).toBe(expected[depth].params);
      expect(builder.summary().params).toBe(expected[depth].params);
      expect(builder.summary().macs).toBe(iresnetMacs(IRESNET_LAYERS[depth]));
      const g = expected[depth].gmacs;
      if (g) expect(Math.abs(builder.summary().macs / 1e9 - g) / g).toBeLessThan(0.01);

      expect(Number(m.irVersion)).toBe(6);
      expect(m.opsetImport!.map((o) => [o.domain, Number(o.version)])).toEqual([['', 11]]);
      expect(m.graph!.input!.map((v) => [v.name, dims(v)])).toEqual([['input.1', ['N', 3, 112, 112]]]);
      expect(dims(m.graph!.output![0])).toEqual(['N', 512]);
      const init = initializerDims(m);
      for (const n of m.graph!.node!.filter((x) => x.opType === 'PRelu')) expect(init.get(n.input![1])!.slice(1)).toEqual([1, 1]);
      const gemm = m.graph!.node!.find((x) => x.opType === 'Gemm')!;
      expect(init.get(gemm.input![1])).toEqual([512, 512 * 7 * 7]);
      // Every float initializer is stored as raw_data, never as float_data.
      for (const t of m.graph!.initializer!) expect(t.floatData ?? []).toHaveLength(0);
      if (depth === 50) {
        // The same architecture as w600k_r50: parameters within 0.1% of 43.6 M, file size within 0.1%.
        expect(Math.abs(floatParams(m) - 43.6e6) / 43.6e6).toBeLessThan(0.001);
        expect(Math.abs(bytes.length - W600K_R50_BYTES) / W600K_R50_BYTES).toBeLessThan(0.001);
      }
    });
  }

  it('iresnet100: parameters and MACs (glintr100 layout) without encoding', () => {
    const s = buildIResNet(100).summary();
    expect(s.params).toBe(expected[100].params);
    expect(s.macs).toBe(iresnetMacs(IRESNET_LAYERS[100]));
    expect(Math.abs(s.macs / 1e9 - 12.1) / 12.1).toBeLessThan(0.01);
    expect(s.ops).toEqual({ Conv: 103, PRelu: 50, BatchNormalization: 51, Add: 49, Flatten: 1, Gemm: 1 });
  });
});

describe('MobileFaceNet fixture', () => {
  it('has the get_mbf structure: 49 convs (depthwise and grouped), 33 PReLU, GDC head, ~0.45 GMACs', () => {
    const b = buildMobileFaceNet();
    const m = decode(encodeModel(b.build()));
    expect(opHistogram(m)).toEqual({
      Conv: 49, PRelu: 33, Add: 12, Shape: 1, Gather: 1, Unsqueeze: 1, Concat: 1, Reshape: 1, MatMul: 1, BatchNormalization: 1,
    });
    expect(floatParams(m)).toBe(2_049_152);
    expect(b.summary().macs).toBe(437_520_896);
    const convs = m.graph!.node!.filter((n) => n.opType === 'Conv');
    const group = (n: (typeof convs)[number]): number => Number(n.attribute!.find((a) => a.name === 'group')!.i);
    const kernel = (n: (typeof convs)[number]): number[] => n.attribute!.find((a) => a.name === 'kernel_shape')!.ints!.map(Number);
    expect(group(convs[1])).toBe(64); // ConvBlock(128, 128, groups=64): 2 channels per group
    expect(convs.filter((n) => group(n) > 64).length).toBe(16); // 15 DepthWise 3x3 + the GDC 7x7
    expect(kernel(convs.at(-1)!)).toEqual([7, 7]);
    expect(dims(m.graph!.input![0])).toEqual(['N', 3, 112, 112]);
    expect(dims(m.graph!.output![0])).toEqual(['N', 512]);
  });
});

describe('SCRFD fixtures', () => {
  it('static: the 9 SCRFD outputs with 2 anchors per cell at strides 8/16/32, SCRFD-500M-KPS histogram', () => {
    const b = buildScrfd();
    const m = decode(encodeModel(b.build()));
    expect(opHistogram(m)).toEqual({ Conv: 60, Relu: 41, Resize: 2, Add: 4, Transpose: 9, Reshape: 9, Sigmoid: 3 });
    expect(floatParams(m)).toBe(626_354);
    expect(b.summary().macs).toBe(733_545_600);
    expect(dims(m.graph!.input![0])).toEqual([1, 3, 640, 640]);
    const outs = Object.fromEntries(m.graph!.output!.map((v) => [v.name!, dims(v)]));
    expect(outs).toEqual({
      score_8: [1, 12800, 1], score_16: [1, 3200, 1], score_32: [1, 800, 1],
      bbox_8: [1, 12800, 4], bbox_16: [1, 3200, 4], bbox_32: [1, 800, 4],
      kps_8: [1, 12800, 10], kps_16: [1, 3200, 10], kps_32: [1, 800, 10],
    });
  });

  it('dynamic: symbolic H/W, runtime Resize sizes, 2-D outputs with numeric names, same weights', () => {
    const stat = decode(encodeModel(buildScrfd().build()));
    const m = decode(encodeModel(buildScrfd({ dynamic: true }).build()));
    expect(opHistogram(m)).toEqual({
      Conv: 60, Relu: 41, Shape: 6, Gather: 4, Unsqueeze: 4, Slice: 2, Concat: 2, Resize: 2, Add: 4, Transpose: 9, Reshape: 9, Sigmoid: 3,
    });
    expect(dims(m.graph!.input![0])).toEqual([1, 3, '?', '?']);
    for (const o of m.graph!.output!) expect(o.name).toMatch(/^\d+$/);
    expect(m.graph!.output!.map((o) => dims(o).at(-1))).toEqual([1, 1, 1, 4, 4, 4, 10, 10, 10]);
    // Weights are drawn per parameter name, so the dynamic export shares every weight with the static one.
    const raw = (x: typeof m): Map<string, string> => new Map(x.graph!.initializer!.filter((t) => t.dataType === 1 && t.name!.includes('.')).map((t) => [t.name!, sha256(t.rawData!)]));
    expect(raw(m)).toEqual(raw(stat));
  });
});

describe('determinism', () => {
  it('same seed gives byte-identical models; another seed gives other weights', () => {
    for (const name of ['iresnet18', 'mobilefacenet512', 'scrfd', 'scrfd_dynamic']) {
      expect(sha256(encodeModel(FIXTURES[name]())), name).toBe(sha256(encodeModel(FIXTURES[name]())));
    }
    const a = encodeModel(buildScrfd({ seed: 1 }).build());
    const b = encodeModel(buildScrfd({ seed: 2 }).build());
    expect(a.length).toBe(b.length);
    expect(sha256(a)).not.toBe(sha256(b));
  });
});

describe('registry, cache and writer', () => {
  let tmp: string;
  const saved = process.env.FACEOPT_FIXTURE_CACHE;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-fixtures-'));
    process.env.FACEOPT_FIXTURE_CACHE = path.join(tmp, 'cache');
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.FACEOPT_FIXTURE_CACHE;
    else process.env.FACEOPT_FIXTURE_CACHE = saved;
    await rm(tmp, { recursive: true, force: true });
  });

  it('lists the fixtures and rejects unknown names with a coded error', () => {
    expect(FIXTURE_NAMES).toEqual(['iresnet18', 'iresnet34', 'iresnet50', 'iresnet100', 'mobilefacenet512', 'scrfd', 'scrfd_dynamic']);
    expect(Object.keys(FIXTURE_BUILDERS)).toEqual([...FIXTURE_NAMES]);
    let err: unknown;
    try {
      requireFixtureName('resnet50');
    } catch (e) {
      err = e;
    }
    expect(isFaceoptError(err, 'FACEOPT_ERR_BAD_ARGUMENT')).toBe(true);
    expect((err as Error).message).toContain('iresnet50');
  });

  it('caches encoded bytes on disk under a builder-hash key and serves them back', async () => {
    const file = await fixtureFile('scrfd');
    expect(path.dirname(file)).toBe(path.join(tmp, 'cache'));
    expect(path.basename(file)).toMatch(/^scrfd-[0-9a-f]{16}\.onnx$/);
    expect(await fixtureFile('scrfd')).toBe(file);
    const bytes = await fixtureBytes('scrfd');
    expect(sha256(bytes)).toBe(sha256(encodeModel(FIXTURES.scrfd())));
  });

  it('writer script writes chosen fixtures atomically and fails with one coded line on bad input', async () => {
    const out = path.join(tmp, 'out');
    const written = await writeFixtures(out, ['scrfd', 'mobilefacenet512']);
    expect(written.map((w) => path.basename(w.file))).toEqual(['scrfd.onnx', 'mobilefacenet512.onnx']);
    for (const w of written) expect(sha256(await readFile(w.file))).toBe(w.sha256);

    const lines: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (lines.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await writeMain(['--out', out, 'nope'])).toBe(64);
      expect(await writeMain(['scrfd'])).toBe(64);
    } finally {
      process.stderr.write = orig;
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^faceopt: FACEOPT_ERR_BAD_ARGUMENT: .*fixture.*nope/);
    expect(lines[1]).toMatch(/--out/);
    const said: string[] = [];
    const origOut = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => (said.push(String(s)), true)) as typeof process.stdout.write;
    try {
      expect(await writeMain(['--help'])).toBe(0);
    } finally {
      process.stdout.write = origOut;
    }
    expect(said.join('')).toMatch(/^usage: npm run fixtures -- --out DIR \[names\.\.\.\]/);
  });
});
