/**
 * What a hand-edited or misnamed --stats file gets: a folder is refused as a stats file (not EISDIR as an
 * internal error); chosen ranges must be finite, inside the tensor's [min, max] and of positive width
 * where the data has any; a file made for this graph must hold every tensor the graph calibrates; and a
 * file refused because the prepared graph differs says when the calibration photos are what differ.
 * Files the tool writes, with every method and degenerate tensors, still load.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CalibrationCollector, type CalibrationMethod } from '../../pipeline/calibrate/collectors.js';
import { checkStatsModel, createStats, hashImageList, loadStats, parseStats, serializeStats, statsFor, statsHash, type CalibrationStats } from '../../pipeline/calibrate/stats.js';
import { isFaceoptError } from '../../pipeline/errors.js';
import { sha256 } from '../../pipeline/fsutil.js';
import { gaussian } from './random.js';

const MODEL = sha256('model bytes');
const images = ['a/1.jpg', 'b/2.jpg', 'c/3.jpg'];

function stats(method: CalibrationMethod): CalibrationStats {
  const c = new CalibrationCollector(method);
  c.update('input.1', gaussian(4000, 1, 1));
  c.update('relu', gaussian(4000, 3, 2).map((v) => Math.max(v, 0)));
  c.update('neg', gaussian(4000, 5, 1).map((v) => -Math.abs(v) - 0.5));
  c.update('pos', gaussian(4000, 6, 0.1).map((v) => Math.abs(v) + 3));
  c.update('const', new Float32Array(100).fill(0.25));
  c.update('zeros', new Float32Array(100));
  c.update('unit', gaussian(4000, 7, 0.3).map((v) => Math.min(1, Math.max(0, v + 0.5))));
  return createStats({
    modelSha256: MODEL, method, settings: c.settings,
    source: { description: 'test', images: images.length, listSha256: hashImageList(images) },
    tensors: c.results(),
  });
}

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(isFaceoptError(e, 'FACEOPT_ERR_STATS'), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected FACEOPT_ERR_STATS');
}

/** The stats text with tensor `name`'s range replaced. */
function withRange(s: CalibrationStats, name: string, range: unknown): string {
  return serializeStats({ ...s, tensors: { ...s.tensors, [name]: { ...s.tensors[name]!, range: range as [number, number] } } });
}

let dir = '';
beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'faceopt-statschk-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('--stats checks', () => {
  it('a folder is a bad stats file (FACEOPT_ERR_STATS naming it), not an internal EISDIR', async () => {
    const folder = path.join(dir, 'a-folder');
    await mkdir(folder);
    let err: unknown = null;
    try { await loadStats(folder); } catch (e) { err = e; }
    expect(isFaceoptError(err, 'FACEOPT_ERR_STATS'), String(err)).toBe(true);
    expect((err as Error).message).toContain(folder);
    expect((err as Error).message).toContain('it is a folder, not a stats file (name the stats.json inside it)');
    expect((err as { exitCode: number }).exitCode).toBe(65);
  });

  it('files the tool writes load, for every method, with constant, all-negative and all-positive tensors', () => {
    for (const m of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      const s = stats(m);
      expect(parseStats(serializeStats(s), `${m}.json`)).toEqual(s);
    }
  });

  it('refuses chosen ranges outside [min, max], non-finite, or of zero width on spread data', () => {
    const s = stats('minmax');
    const u = s.tensors.unit!;
    expect(u.min).toBe(0);
    expect(u.max).toBe(1);
    expect(refused(() => parseStats(withRange(s, 'unit', [-1e30, 1e30]), 'h.json'))).toMatch(/tensor unit: .*range .*outside .*\[0, 1\]/);
    expect(refused(() => parseStats(withRange(s, 'unit', [3, 5]), 'h.json'))).toMatch(/tensor unit: .*range/);
    expect(refused(() => parseStats(withRange(s, 'unit', [0.5, 0.5]), 'h.json'))).toMatch(/tensor unit: .*width/);
    expect(refused(() => parseStats(withRange(s, 'unit', [0, 'Infinity']), 'h.json'))).toMatch(/tensor unit: .*finite/);
    // a range inside [min, max] is fine (clipping is what the methods do)
    expect(() => parseStats(withRange(s, 'unit', [0.1, 0.9]), 'h.json')).not.toThrow();
    // a constant tensor's range is its one value
    expect(s.tensors.const!.range).toEqual([0.25, 0.25]);
  });

  it('a file made for this graph must hold every tensor it calibrates', () => {
    const s = stats('minmax');
    const names = Object.keys(s.tensors);
    expect(statsFor(s, 'ok.json', { modelSha256: MODEL, tensors: names })).toBe(s);
    const { relu: _relu, neg: _neg, ...rest } = s.tensors;
    const cut = parseStats(serializeStats({ ...s, tensors: rest }), 'cut.json');
    const msg = refused(() => statsFor(cut, 'cut.json', { modelSha256: MODEL, tensors: names }));
    expect(msg).toMatch(/2 of the graph's 7 calibrated tensors/);
    expect(msg).toMatch(/relu/);
    expect(msg).not.toMatch(/another model/);
  });

  it('says the calibration photos differ when the recorded source differs from this run', () => {
    const s = stats('minmax');
    const other = sha256('prepared with other photos');
    const photos = refused(() => statsFor(s, 's.json', { modelSha256: other, source: { images: 5, listSha256: hashImageList(['x/1.jpg']) } }));
    expect(photos).toMatch(/calibration photos differ/);
    expect(photos).toMatch(/3 images/);
    expect(photos).toMatch(/5/);
    expect(photos).not.toMatch(/another faceopt version/);
    // same photos, another graph: the old reason
    const graph = refused(() => statsFor(s, 's.json', { modelSha256: other, source: { images: 3, listSha256: hashImageList(images) } }));
    expect(graph).toMatch(/another model/);
    // no source known: the old reason
    expect(refused(() => statsFor(s, 's.json', { modelSha256: other }))).toMatch(/another model/);
  });

  it('refuses a file made from other photos even when the prepared graph is the same (no equalization)', () => {
    const s = stats('minmax');
    const msg = refused(() => statsFor(s, 's.json', { modelSha256: MODEL, source: { images: 3, listSha256: hashImageList(['x/1.jpg', 'y/2.jpg', 'z/3.jpg']) } }));
    expect(msg).toMatch(/calibration photos differ/);
    expect(msg).toMatch(/report does not name/);
    expect(statsFor(s, 's.json', { modelSha256: MODEL, source: { images: 3, listSha256: hashImageList(images) } })).toBe(s);
  });

  it('a file of another model is refused as such first, whatever its photos (it blamed the photos, then the model)', () => {
    const s = stats('minmax');
    const otherGraph = ['383', '384', '385', '390', 'input.1']; // another model's tensors: 1 of the file's 7 is there
    const msg = refused(() => statsFor(s, 's.json', { modelSha256: sha256('another graph'), source: { images: 5, listSha256: hashImageList(['x/1.jpg']) }, tensors: otherGraph }));
    expect(msg).toMatch(/made for another model: 6 of its 7 tensors are not in this one \(relu, neg, pos, \.\.\.\)/);
    expect(msg).not.toMatch(/photos differ/);
    expect(() => checkStatsModel(s, 's.json', Object.keys(s.tensors))).not.toThrow();
  });
});


describe('--stats checks at their edges (mutation audit)', () => {
  it('a key left undefined is left out of the file and of the hash, as if absent', () => {
    const s = stats('minmax');
    const withUndefined = { ...s, source: { ...s.source, faces: undefined } };
    expect(statsHash(withUndefined)).toBe(statsHash(s));
    expect(serializeStats(withUndefined)).toBe(serializeStats(s));
  });

  it('a range a hair (rounding) past [min, max] loads; one below min is refused', () => {
    const s = stats('minmax');
    expect(() => parseStats(withRange(s, 'unit', [0, 1 + 1e-7]), 'h.json')).not.toThrow();
    expect(refused(() => parseStats(withRange(s, 'unit', [-0.5, 0.5]), 'h.json'))).toMatch(/tensor unit: range \[-0\.5, 0\.5\] lies outside/);
  });

  it('the source must count its images as an integer >= 0', () => {
    const s = stats('minmax');
    for (const images of ['3', -1, 2.5]) {
      const text = serializeStats({ ...s, source: { ...s.source, images: images as number } });
      expect(refused(() => parseStats(text, 'src.json'))).toMatch(/source must have description, images and listSha256/);
    }
  });

  it('the same list with another image count is another source (a hand-edited count)', () => {
    const s = stats('minmax');
    expect(refused(() => statsFor(s, 's.json', { modelSha256: MODEL, source: { images: 4, listSha256: hashImageList(images) } }))).toMatch(/calibration photos differ/);
  });

  it('a file of which exactly half the tensors are in the graph is not taken for another model\'s', () => {
    const s = stats('minmax');
    const four = { ...s, tensors: Object.fromEntries(Object.entries(s.tensors).slice(0, 4)) };
    const names = Object.keys(four.tensors);
    expect(() => checkStatsModel(four, 's.json', names.slice(0, 2))).not.toThrow();
    expect(refused(() => checkStatsModel(four, 's.json', names.slice(0, 1)))).toMatch(/3 of its 4 tensors are not in this one/);
  });

  it('keeps the tool version the file names (informative), "unknown" when it names none', () => {
    const s = stats('minmax');
    expect(parseStats(serializeStats({ ...s, tool: '0.0.1-old' }), 's.json').tool).toBe('0.0.1-old');
    const { tool: _tool, ...noTool } = JSON.parse(serializeStats(s)) as Record<string, unknown>;
    expect(parseStats(JSON.stringify(noTool), 's.json').tool).toBe('unknown');
  });

  it('a histogram method is refused on minmax stats where only some tensors hold a histogram', () => {
    const s = stats('minmax');
    const withOne = { ...s, tensors: { ...s.tensors, unit: { ...s.tensors.unit!, histogram: stats('entropy').tensors.unit!.histogram } } };
    const parsed = parseStats(serializeStats(withOne), 'mixed.json');
    expect(refused(() => statsFor(parsed, 'mixed.json', { method: 'entropy' }))).toMatch(/minmax stats without histograms, and entropy needs them/);
  });
});
