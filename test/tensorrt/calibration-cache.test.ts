import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import {
  bitsToScale, cacheScaleFromAmax, cacheScales, decodeTrtVersionNumber, loadCalibrationCache, parseCalibrationCache,
  saveCalibrationCache, scaleToHex, scalesFromRanges, trtVersionNumber, withCacheVersion, writeCalibrationCache,
} from '../../pipeline/tensorrt/calibration-cache.js';

describe('TensorRT version numbers (NV_TENSORRT_VERSION)', () => {
  it.each([
    ['7.0.0', 7000], ['7.1.3', 7103], ['8.5.2', 8502], ['8.6.1', 8601], ['8.6.1.6', 8601],
    ['10.0.1', 100001], ['10.3.0', 100300], ['10.13.2', 101302], ['11.0.0', 110000],
  ])('%s -> %d and back', (v, n) => {
    expect(trtVersionNumber(v)).toBe(n);
    const d = decodeTrtVersionNumber(n);
    expect(`${d.major}.${d.minor}.${d.patch}`).toBe(v.split('.').slice(0, 3).join('.'));
  });

  it('refuses versions the encoding cannot hold', () => {
    expect(() => trtVersionNumber('8.10.0')).toThrow(/TensorRT version/);
    expect(() => trtVersionNumber('eight')).toThrow(/major.minor/);
    expect(() => decodeTrtVersionNumber(12)).toThrow(/>= 1000/);
  });
});

describe('scale encoding', () => {
  it('writes the big-endian float32 bit pattern as 8 lower-case hex digits', () => {
    expect(scaleToHex(1)).toBe('3f800000');
    expect(scaleToHex(2)).toBe('40000000');
    expect(scaleToHex(2 ** -149)).toBe('00000001'); // smallest subnormal keeps its leading zeros
    expect(scaleToHex(3.4028234663852886e38)).toBe('7f7fffff');
    expect(bitsToScale(0x3c008912)).toBeCloseTo(0.0078449, 6); // a line from TensorRT's sampleINT8 cache
  });

  it('cache scale = float32(amax / 127), 1 for amax 0', () => {
    expect(cacheScaleFromAmax(2.54)).toBe(Math.fround(0.02));
    expect(cacheScaleFromAmax(0)).toBe(1);
    expect(scalesFromRanges({ a: [-1.27, 0.5], b: [0, 12.7] })).toEqual(new Map([['a', Math.fround(0.01)], ['b', Math.fround(0.1)]]));
  });
});

describe('calibration cache round trip', () => {
  const awkward = new Map<string, number>([
    ['input.1', cacheScaleFromAmax(2.64)],
    ['subnormal', 1e-40],
    ['smallest', 2 ** -149],
    ['tiny', 1e-8],
    ['third', 1 / 3],
    ['tenth', 0.1],
    ['large', 3.4e38],
    ['max', 3.4028234663852886e38],
    ['(Unnamed Layer* 4) [Fully Connected]_output', 0.05],
    ['input:0', 0.25],
    ['/backbone/conv1/Conv_output_0', 0.0123],
  ]);

  it('write -> parse gives the same float32 scales bit for bit, in order', () => {
    const text = writeCalibrationCache(awkward, '8.6.1');
    const cache = parseCalibrationCache(text);
    expect(cache.version).toBe(8601);
    expect(cache.algorithm).toBe('EntropyCalibration2');
    expect(cache.entries.map((e) => e.name)).toEqual([...awkward.keys()]);
    const view = new DataView(new ArrayBuffer(4));
    for (const e of cache.entries) {
      const want = Math.fround(awkward.get(e.name)!);
      view.setFloat32(0, want);
      expect(e.bits).toBe(view.getUint32(0));
      expect(Object.is(e.scale, want)).toBe(true);
    }
    expect(writeCalibrationCache(cacheScales(cache), cache.version)).toBe(text); // text is stable too
  });

  it('matches the documented layout: header line, then "name: 8 hex digits" lines, final newline', () => {
    const text = writeCalibrationCache({ data: 1 / 127.5, conv1: 0.0167 }, '10.3.0');
    const lines = text.split('\n');
    expect(lines[0]).toBe('TRT-100300-EntropyCalibration2');
    expect(lines[1]).toMatch(/^data: [0-9a-f]{8}$/);
    expect(lines[2]).toMatch(/^conv1: [0-9a-f]{8}$/);
    expect(lines[3]).toBe('');
    expect(lines.length).toBe(4);
  });

  it('parses a cache as TensorRT wrote it (sampleINT8), CRLF and unpadded hex included', () => {
    const trt = 'TRT-7000-EntropyCalibration2\r\ndata: 3c008912\r\nconv1: 3c88edfc\r\nprob: 3C010A14\r\nsmall: 1\r\n';
    const c = parseCalibrationCache(trt);
    expect(c.version).toBe(7000);
    expect(c.entries.map((e) => e.name)).toEqual(['data', 'conv1', 'prob', 'small']);
    expect(c.entries[2].bits).toBe(0x3c010a14);
    expect(c.entries[3].scale).toBe(2 ** -149);
  });

  it('saves atomically and loads back', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'faceopt-cache-'));
    try {
      const file = path.join(dir, 'calibration.cache');
      const text = await saveCalibrationCache(file, awkward, { major: 10, minor: 3, patch: 0 });
      expect(await readFile(file, 'utf8')).toBe(text);
      expect(cacheScales(await loadCalibrationCache(file))).toEqual(new Map([...awkward].map(([k, v]) => [k, Math.fround(v)])));
      await expect(loadCalibrationCache(path.join(dir, 'missing.cache'))).rejects.toMatchObject({ code: 'FACEOPT_ERR_FILE_NOT_FOUND' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('withCacheVersion rewrites only the header', () => {
    const text = writeCalibrationCache(awkward, '8.6.1');
    const v10 = withCacheVersion(text, '10.3.0');
    expect(v10.split('\n')[0]).toBe('TRT-100300-EntropyCalibration2');
    expect(v10.split('\n').slice(1)).toEqual(text.split('\n').slice(1));
  });
});

describe('calibration cache errors', () => {
  it.each([
    ['an empty file', '', /line 1: the file is empty/],
    ['a missing header', 'data: 3c008912\n', /line 1: expected a header/],
    ['a non-TensorRT version', 'TRT-12-EntropyCalibration2\n', /line 1: version number 12/],
    ['an unknown algorithm', 'TRT-8601-MagicCalibration\n', /line 1: unknown calibration algorithm MagicCalibration/],
    ['a line without a value', 'TRT-8601-EntropyCalibration2\ndata 3c008912\n', /line 2: expected "tensor: 8 hex digits"/],
    ['too many hex digits', 'TRT-8601-EntropyCalibration2\ndata: 3c0089120\n', /line 2: expected/],
    ['non-hex digits', 'TRT-8601-EntropyCalibration2\ndata: 3g008912\n', /line 2: expected/],
    ['an empty name', 'TRT-8601-EntropyCalibration2\n: 3c008912\n', /line 2: empty tensor name/],
    ['a duplicate tensor', 'TRT-8601-EntropyCalibration2\na: 3c008912\na: 3c008912\n', /line 3: tensor a appears twice/],
    ['a NaN scale', 'TRT-8601-EntropyCalibration2\na: 7fc00000\n', /line 2: scale 7fc00000 of a is NaN/],
    ['an infinite scale', 'TRT-8601-EntropyCalibration2\na: 7f800000\n', /line 2: .*Infinity/],
    ['a negative scale', 'TRT-8601-EntropyCalibration2\na: bf800000\n', /line 2: scale bf800000 of a is -1/],
    ['a blank line between entries', 'TRT-8601-EntropyCalibration2\na: 3c008912\n\nb: 3c008912\n', /line 3: expected/],
  ])('refuses %s with FACEOPT_ERR_CALIBRATION_CACHE and the line', (_n, text, re) => {
    try {
      parseCalibrationCache(text, 'model.trt/calibration.cache');
    } catch (e) {
      expect(isFaceoptError(e, 'FACEOPT_ERR_CALIBRATION_CACHE')).toBe(true);
      expect((e as Error).message).toMatch(re);
      expect((e as Error).message).toContain('model.trt/calibration.cache');
      return;
    }
    throw new Error('expected a calibration cache error');
  });

  it('the writer refuses scales TensorRT cannot use and multi-line names', () => {
    expect(() => writeCalibrationCache({ a: 0 }, '8.6.1')).toThrow(/finite float32 > 0/);
    expect(() => writeCalibrationCache({ a: NaN }, '8.6.1')).toThrow(/finite float32 > 0/);
    expect(() => writeCalibrationCache({ a: 1e-50 }, '8.6.1')).toThrow(/finite float32 > 0/); // rounds to 0
    expect(() => writeCalibrationCache({ 'a\nb': 1 }, '8.6.1')).toThrow(/single-line name/);
    expect(() => writeCalibrationCache({ a: 1 }, 8601, 'Magic' as never)).toThrow(/calibration algorithm/);
  });
});
