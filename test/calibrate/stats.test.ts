import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalibrationCollector } from '../../pipeline/calibrate/collectors.js';
import {
  type CalibrationStats, STATS_SCHEMA_VERSION, createStats, hashImageList, loadStats, parseStats, saveStats,
  serializeStats, statsFor, statsHash,
} from '../../pipeline/calibrate/stats.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { sha256 } from '../../pipeline/fsutil.js';
import { gaussian } from './random.js';

const MODEL = sha256('model bytes');
const OTHER = sha256('another model');

function sampleStats(method: 'entropy' | 'minmax' = 'entropy'): CalibrationStats {
  const c = new CalibrationCollector(method);
  c.update('input.1', gaussian(2000, 1, 1));
  c.update('683', gaussian(2000, 3, 2).map((v) => Math.max(v, 0)));
  c.update('conv/out:0', Float32Array.from([1e-8, -2.5e-7, 3.4e38]));
  const images = ['a/1.jpg', 'b/2.jpg'];
  return createStats({
    modelSha256: MODEL, method, settings: c.settings,
    source: { description: 'lfw/calibration.txt (aligned faces)', images: images.length, listSha256: hashImageList(images) },
    tensors: c.results(),
  });
}

/** Expect `fn` to throw FACEOPT_ERR_STATS whose message matches `re`. */
function expectStatsError(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isFaceoptError(e, 'FACEOPT_ERR_STATS')).toBe(true);
    expect((e as Error).message).toMatch(re);
    return;
  }
  throw new Error('expected FACEOPT_ERR_STATS');
}

let dir = '';
beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'faceopt-stats-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('stats artifact', () => {
  it('round-trips through a file exactly (numbers, histograms, names)', async () => {
    const stats = sampleStats();
    const file = path.join(dir, 'rt.stats.json');
    await saveStats(file, stats);
    const back = await loadStats(file, { modelSha256: MODEL });
    expect(back).toEqual(stats);
    expect(back.tensors['conv/out:0'].max).toBe(Math.fround(3.4e38));
    expect(back.tensors['683'].histogram?.positive).toEqual(stats.tensors['683'].histogram?.positive);
  });

  it('writes identical bytes for identical content, one tensor per line, sorted', () => {
    const a = serializeStats(sampleStats());
    const b = serializeStats(sampleStats());
    expect(a).toBe(b);
    const lines = a.trimEnd().split('\n');
    expect(lines[1]).toMatch(/^ {2}"683":\{/);
    expect(lines[2]).toMatch(/^ {2}"conv\/out:0":\{/);
    expect(lines[3]).toMatch(/^ {2}"input\.1":\{/);
  });

  it('has a stable hash: independent of key order and tool version, sensitive to content', () => {
    const s = sampleStats();
    const h = statsHash(s);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    const reordered = Object.fromEntries(Object.entries(s).reverse()) as unknown as CalibrationStats;
    expect(Object.keys(reordered)[0]).toBe('tensors');
    expect(statsHash(reordered)).toBe(h);
    expect(statsHash({ ...s, tool: '9.9.9' })).toBe(h);
    expect(statsHash({ ...s, settings: { ...s.settings, percentile: 99.99 } })).not.toBe(h);
    const t = structuredClone(s);
    t.tensors['683'].range = [0, t.tensors['683'].range[1] * 0.5];
    expect(statsHash(t)).not.toBe(h);
  });

  it('hashes image lists by order and content', () => {
    expect(hashImageList(['a', 'b'])).toBe(sha256('a\nb\n'));
    expect(hashImageList(['b', 'a'])).not.toBe(hashImageList(['a', 'b']));
  });

  it('accepts another method when the stored histograms allow re-thresholding', () => {
    const text = serializeStats(sampleStats('entropy'));
    expect(parseStats(text, 'x', { method: 'percentile' }).method).toBe('entropy');
  });
});

describe('stats validation', () => {
  const good = () => JSON.parse(serializeStats(sampleStats())) as Record<string, any>;
  const parse = (obj: unknown, expect = {}) => () => parseStats(JSON.stringify(obj), 'calib.stats.json', expect);

  it.each([
    ['not JSON', () => parseStats('{"schemaVersion":', 'calib.stats.json'), /not JSON/],
    ['an array', parse([1, 2]), /not a JSON object/],
    ['another schema version', parse({ ...good(), schemaVersion: 2 }), /schema version 2, this faceopt reads version 1/],
    ['a bad model hash', parse({ ...good(), modelSha256: 'abc' }), /not a sha256/],
    ['another model', parse(good(), { modelSha256: OTHER }), /made for another model/],
    ['an unknown method', parse({ ...good(), method: 'kl' }), /unknown method kl/],
    ['bad settings', parse({ ...good(), settings: { ...good().settings, bins: 3 } }), /bad settings/],
    ['no source', parse({ ...good(), source: undefined }), /source must have/],
    ['no tensors', parse({ ...good(), tensors: {} }), /holds no tensors/],
  ])('refuses %s', (_name, fn, re) => {
    expectStatsError(fn, re);
  });

  it('names the tensor with inconsistent numbers', () => {
    const s = good();
    s.tensors['683'].min = s.tensors['683'].max + 1;
    expectStatsError(parse(s), /tensor 683: min\/max/);
    const r = good();
    r.tensors['input.1'].range = [1, -1];
    expectStatsError(parse(r), /tensor input\.1: range/);
    const h = good();
    delete h.tensors['input.1'].histogram;
    expectStatsError(parse(h), /tensor input\.1: entropy needs a histogram/);
    const w = good();
    w.tensors['input.1'].histogram.binWidth = 0.3;
    expectStatsError(parse(w), /power of two/);
    const m = good();
    m.tensors['683'].method = 'minmax';
    expectStatsError(parse(m), /method minmax differs/);
  });

  it('refuses a binary file without echoing its bytes, and says what --stats takes', async () => {
    const file = path.join(dir, 'photo.jpg');
    await writeFile(file, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]));
    const e = await loadStats(file).then(() => new Error('loaded'), (x: unknown) => x as Error);
    expect(isFaceoptError(e, 'FACEOPT_ERR_STATS')).toBe(true);
    expect(e.message).toBe(`Calibration stats ${file} cannot be used: not JSON: a binary file (an image or a model?), not a stats.json. --stats reuses a stats.json that \`faceopt optimize\` wrote for this model; to calibrate again, name a new file or delete an outdated one.`);
  });

  it('checks a parsed artifact for its use apart from parsing it (statsFor)', () => {
    const stats = parseStats(serializeStats(sampleStats('minmax')), 'x');
    expect(statsFor(stats, 'x', { modelSha256: MODEL })).toBe(stats);
    expectStatsError(() => statsFor(stats, 'x', { modelSha256: OTHER }), /made for another model/);
    expectStatsError(() => statsFor(stats, 'x', { method: 'percentile' }), /minmax stats without histograms, and percentile needs them/);
  });

  it('refuses a histogram method on minmax stats without histograms', () => {
    expectStatsError(() => parseStats(serializeStats(sampleStats('minmax')), 'x', { method: 'entropy' }), /without histograms/);
  });

  it('reports a missing file as FACEOPT_ERR_FILE_NOT_FOUND and a corrupt one with its path', async () => {
    await expect(loadStats(path.join(dir, 'nope.json'))).rejects.toMatchObject({ code: 'FACEOPT_ERR_FILE_NOT_FOUND' });
    const file = path.join(dir, 'bad.stats.json');
    await writeFile(file, serializeStats(sampleStats()).slice(0, 200));
    await expect(loadStats(file)).rejects.toMatchObject({ code: 'FACEOPT_ERR_STATS', params: { path: file } });
  });

  it('saves atomically: no temp file left behind', async () => {
    const file = path.join(dir, 'atomic.stats.json');
    await saveStats(file, sampleStats());
    expect((await readFile(file, 'utf8')).startsWith(`{"method":"entropy","modelSha256":"${MODEL}"`)).toBe(true);
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(STATS_SCHEMA_VERSION).toBe(1);
  });
});
