/**
 * Mutation-audit test of fetchPack's swap into place (pipeline/zoo/fetch.ts swapIntoPlace): when the new
 * pack folder cannot be renamed into place, the previous copy, already moved aside, is put back. The
 * rename failure is injected (rename of the unpacked folder onto the pack folder fails once with EXDEV); everything else is
 * real files and a real HTTP server.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const inject = vi.hoisted(() => ({ failRenameTo: '' }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const rename = async (from: import('node:fs').PathLike, to: import('node:fs').PathLike): Promise<void> => {
    if (inject.failRenameTo && String(to) === inject.failRenameTo && String(from).includes('.unpack.')) {
      inject.failRenameTo = '';
      throw Object.assign(new Error(`EXDEV: cross-device link not permitted, rename '${String(from)}'`), { code: 'EXDEV' });
    }
    return real.rename(from, to);
  };
  return { ...real, rename, default: { ...real, rename } };
});

const { isFaceoptError } = await import('../../pipeline/errors.js');
const { fetchPack } = await import('../../pipeline/zoo/fetch.js');
const { buildZip, serve, tempDir, testZoo } = await import('./helpers.js');

describe('fetchPack swap into place', () => {
  const det = Buffer.from('detector '.repeat(500));
  const rec = Buffer.from('recognizer '.repeat(500));
  const zip = buildZip([{ name: 'det.onnx', data: det }, { name: 'rec.onnx', data: rec }]);
  const files = [{ name: 'det.onnx', data: det, role: 'detector' }, { name: 'rec.onnx', data: rec }];
  let server: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => { server = await serve({ '/p.zip': (_q, s) => { s.writeHead(200, { 'content-length': zip.length }); s.end(zip); } }); });
  afterAll(async () => server.close());

  it('a failed rename of the new copy puts the previous copy back', async () => {
    const modelsDir = tempDir();
    const zoo = testZoo({ url: `${server.url}/p.zip`, zip, files });
    await fetchPack('tinypack', { modelsDir, zoo, progress: null });
    inject.failRenameTo = path.join(modelsDir, 'tinypack'); // the unpacked folder's rename into place
    const e = await fetchPack('tinypack', { modelsDir, zoo, progress: null, force: true }).then(() => null, (err: unknown) => err);
    expect(inject.failRenameTo).toBe(''); // the injected failure happened
    expect(isFaceoptError(e, 'FACEOPT_ERR_WRITE_FAILED')).toBe(true);
    expect(readdirSync(modelsDir)).toEqual(['tinypack']);
    expect(readFileSync(path.join(modelsDir, 'tinypack', 'rec.onnx')).equals(rec)).toBe(true);
  });
});
