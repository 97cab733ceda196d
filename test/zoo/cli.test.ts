import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkError, listModelsJson, listModelsText, verifyModels } from '../../pipeline/cli/models.js';
import { faceopt, type CliResult } from '../helpers/cli.js';
import { buildZip, closedPort, sendBytes, serve, tempDir, testZoo, testZooJson, type TestServer } from './helpers.js';

const det = Buffer.from('detector '.repeat(1000));
const rec = Buffer.from('recognizer '.repeat(2000));
const zip = buildZip([{ name: 'det.onnx', data: det }, { name: 'rec.onnx', data: rec }]);
const files = [{ name: 'det.onnx', data: det, role: 'detector' }, { name: 'rec.onnx', data: rec }];

/** Run the built CLI without blocking this process (the test's HTTP server must keep answering). */
function faceoptAsync(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('bin/faceopt.js'), ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('models command functions', () => {
  const zoo = testZoo({ url: 'http://127.0.0.1:1/tinypack.zip', zip, files });

  it('list shows each file with role, input, embedding, size and local presence', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'tinypack'));
    writeFileSync(path.join(dir, 'tinypack', 'rec.onnx'), rec);
    const text = await listModelsText({ modelsDir: dir, zoo });
    const lines = text.split('\n');
    expect(lines[0]).toBe(`Models folder: ${dir}`);
    expect(lines[1]).toMatch(/^PACK\s+ZIP\s+FILE\s+ROLE\s+INPUT\s+EMB\s+SIZE\s+LOCAL$/);
    expect(lines[2]).toMatch(/^tinypack\s+0\.0 MB\s+det\.onnx\s+detector\s+112x112\s+-\s+0\.0 MB\s+no$/);
    expect(lines[3]).toMatch(/^\s+rec\.onnx\s+recognizer\s+112x112\s+512\s+0\.0 MB\s+yes$/);
    expect(text).toContain('Downloaded: tinypack (1/2)');
    const json = (await listModelsJson({ modelsDir: dir, zoo })) as { packs: { files: { name: string; local: string }[] }[] };
    expect(json.packs[0]!.files.map((f) => [f.name, f.local])).toEqual([['det.onnx', 'missing'], ['rec.onnx', 'size-ok']]);
  });

  it('list marks a file of the wrong size', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'tinypack'));
    writeFileSync(path.join(dir, 'tinypack', 'det.onnx'), 'short');
    expect(await listModelsText({ modelsDir: dir, zoo })).toMatch(/det\.onnx\s.*WRONG SIZE/);
  });

  it('verify reports per-file status and the first failure as a coded error', async () => {
    const dir = tempDir();
    expect((await verifyModels(undefined, { modelsDir: dir, zoo })).text).toContain('No model packs in');
    // a models folder that is not there, or is a file, is an error, not "nothing to verify"
    await expect(verifyModels(undefined, { modelsDir: path.join(dir, 'typo'), zoo })).rejects.toMatchObject({ code: 'FACEOPT_ERR_FILE_NOT_FOUND' });
    writeFileSync(path.join(dir, 'file.json'), '{}');
    await expect(verifyModels(undefined, { modelsDir: path.join(dir, 'file.json'), zoo })).rejects.toMatchObject({ code: 'FACEOPT_ERR_BAD_ARGUMENT' });
    mkdirSync(path.join(dir, 'tinypack'));
    writeFileSync(path.join(dir, 'tinypack', 'det.onnx'), det);
    writeFileSync(path.join(dir, 'tinypack', 'rec.onnx'), Buffer.from(rec).fill(0x41, 0, 4));
    const r = await verifyModels('tinypack', { modelsDir: dir, zoo });
    expect(r.text).toMatch(/tinypack\s+det\.onnx\s+ok\s+sha256 [0-9a-f]{12}… matches/);
    expect(r.text).toMatch(/tinypack\s+rec\.onnx\s+WRONG SHA256/);
    expect(r.firstBad?.file).toBe('rec.onnx');
    const err = checkError(r.firstBad!);
    expect([err.code, err.exitCode]).toEqual(['FACEOPT_ERR_CHECKSUM', 65]);
  });
});

describe('faceopt models (built CLI, subprocess)', () => {
  let server: TestServer;
  let zooFile: string;

  beforeAll(async () => {
    server = await serve({ '/tinypack.zip': sendBytes(zip) });
    zooFile = path.join(tempDir(), 'zoo.json');
    writeFileSync(zooFile, JSON.stringify(testZooJson({ url: `${server.url}/tinypack.zip`, zip, files })));
  });
  afterAll(async () => server.close());

  it('`models list` prints the shipped zoo, exit 0', () => {
    const r = faceopt(['models', 'list', '--models-dir', tempDir()]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const p of ['buffalo_l', 'buffalo_m', 'buffalo_s', 'buffalo_sc', 'antelopev2']) expect(r.stdout).toMatch(new RegExp(`^${p}\\s`, 'm'));
    expect(r.stdout).toMatch(/^buffalo_sc\s+15\.0 MB\s+det_500m\.onnx\s+detector\s+640x640\s+-\s+2\.5 MB\s+no$/m);
    expect(r.stdout).toMatch(/^\s+glintr100\.onnx\s+recognizer\s+112x112\s+512\s+260\.7 MB\s+no$/m);
    expect(r.stdout).toContain('Downloaded: none');
  });

  it('`models list --json` is machine-readable', () => {
    const r = faceopt(['models', 'list', '--json', '--models-dir', tempDir()]);
    const doc = JSON.parse(r.stdout);
    expect(doc.packs.map((p: { name: string }) => p.name)).toEqual(['buffalo_l', 'buffalo_m', 'buffalo_s', 'buffalo_sc', 'antelopev2']);
  });

  it('an unknown pack is one line on stderr and exit 64', () => {
    const r = faceopt(['models', 'fetch', 'buffalo_xl']);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe('faceopt: FACEOPT_ERR_UNKNOWN_PACK: Unknown model pack "buffalo_xl". Known packs: buffalo_l, buffalo_m, buffalo_s, buffalo_sc, antelopev2. Run `faceopt models list`.\n');
  });

  it('offline fetch fails fast with exit 69 and says where to put the files', async () => {
    const dir = tempDir();
    const port = await closedPort();
    const t0 = Date.now();
    const r = faceopt(['models', 'fetch', 'buffalo_sc', '--models-dir', dir, '--url', `http://127.0.0.1:${port}/buffalo_sc.zip`]);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain('FACEOPT_ERR_DOWNLOAD');
    expect(r.stderr).toContain(`unpack it into ${path.join(dir, 'buffalo_sc')}`);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('`models verify PACK` of a pack not downloaded exits 66 (model missing)', () => {
    const r = faceopt(['models', 'verify', 'buffalo_sc', '--models-dir', tempDir()]);
    expect(r.code).toBe(66);
    expect(r.stdout).toMatch(/buffalo_sc\s+-\s+not downloaded/);
    expect(r.stderr).toContain('faceopt models fetch buffalo_sc');
  });

  it('fetch -> verify -> damage -> verify, end to end over HTTP', async () => {
    const dir = tempDir();
    const env = { FACEOPT_ZOO: zooFile, FACEOPT_MODELS: dir };
    const fetched = await faceoptAsync(['models', 'fetch', 'tinypack'], env);
    expect(fetched.code).toBe(0);
    expect(fetched.stderr).toMatch(/^tinypack\.zip: 100% \(0\.0 MB in \d+\.\d s\)$/m); // plain lines: stderr is a pipe
    expect(fetched.stdout).toContain(`tinypack: fetched 0.0 MB from ${server.url}/tinypack.zip into ${path.join(dir, 'tinypack')}`);
    expect(fetched.stdout).toMatch(/tinypack\s+rec\.onnx\s+ok/);

    const ok = await faceoptAsync(['models', 'verify'], env);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout.match(/ ok /g)).toHaveLength(2);

    writeFileSync(path.join(dir, 'tinypack', 'rec.onnx'), Buffer.from(rec).fill(0x42, 10, 20));
    const bad = await faceoptAsync(['models', 'verify', 'tinypack'], env);
    expect(bad.code).toBe(65);
    expect(bad.stdout).toMatch(/tinypack\s+rec\.onnx\s+WRONG SHA256/);
    expect(bad.stderr).toMatch(/^faceopt: FACEOPT_ERR_CHECKSUM: .*rec\.onnx has sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\./);

    const again = await faceoptAsync(['models', 'fetch', 'tinypack'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('tinypack: fetched'); // damaged copy is replaced without --force
    expect((await faceoptAsync(['models', 'verify', 'tinypack'], env)).code).toBe(0);
  });
});
