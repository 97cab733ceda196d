/**
 * Mutation-audit tests of the command line wiring (pipeline/cli/main.ts, commands.ts) and of
 * `faceopt promote`'s argument rules (pipeline/cli/promote.ts), through the built CLI as a subprocess.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_LOADERS } from '../../pipeline/cli/commands.js';
import { sha256 } from '../../pipeline/fsutil.js';
import type { Report } from '../../pipeline/report/types.js';
import { fixtureBytes } from '../fixtures/index.js';
import { faceopt } from '../helpers/cli.js';
import { exampleRecognizerReport } from '../report/example.js';

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'faceopt-cli-audit-')); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

describe('command registry', () => {
  it('`faceopt --help` lists every registered command', () => {
    const r = faceopt(['--help']);
    expect(r.code).toBe(0);
    for (const name of Object.keys(COMMAND_LOADERS)) expect(r.stdout).toMatch(new RegExp(`^\\s+${name}\\b`, 'm'));
  });

  it('a typo of the first command in the registry is suggested too', () => {
    const r = faceopt(['comapre']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("Unknown command 'comapre' (Did you mean compare?)");
  });

  it('an option before the command does not hide the command', () => {
    const r = faceopt(['-h', 'models']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: faceopt/);
  });
});

describe('faceopt promote argument rules', () => {
  async function reportDir(name: string, bytes: string): Promise<string> {
    const dir = path.join(tmp, 'reports', name);
    const model = path.join(tmp, 'models', `${name}.onnx`);
    await mkdir(dir, { recursive: true });
    await mkdir(path.dirname(model), { recursive: true });
    await writeFile(model, bytes);
    const base = exampleRecognizerReport();
    const r: Report = { ...base, variant: { ...base.variant, path: model, sha256: sha256(bytes), sizeBytes: bytes.length } };
    await writeFile(path.join(dir, 'report.json'), JSON.stringify(r, null, 2));
    return dir;
  }

  it('--recognizer FILE alone is enough (no report folder needed)', async () => {
    const rec = path.join(tmp, 'models', 'plain-rec.onnx');
    await mkdir(path.dirname(rec), { recursive: true });
    await writeFile(rec, await fixtureBytes('mobilefacenet512'));
    const manifest = path.join(tmp, 'only-rec', 'manifest.json');
    const r = faceopt(['promote', '--recognizer', rec, '--manifest', manifest]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = JSON.parse(await readFile(manifest, 'utf8'));
    expect(m.recognizer).toMatchObject({ variant: 'unverified', verdict: null });
  });

  it('two reports of one role are refused, and nothing is written', async () => {
    const a = await reportDir('rec-a.int8', 'bytes-a');
    const b = await reportDir('rec-b.int8', 'bytes-b');
    const manifest = path.join(tmp, 'two', 'manifest.json');
    const r = faceopt(['promote', a, b, '--manifest', manifest]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('Expected one recognizer report');
    expect(existsSync(manifest)).toBe(false);
  });

  it('a report and --recognizer for the same role are refused, and nothing is written', async () => {
    const a = await reportDir('rec-c.int8', 'bytes-c');
    const manifest = path.join(tmp, 'both', 'manifest.json');
    const r = faceopt(['promote', a, '--recognizer', path.join(tmp, 'models', 'rec-c.int8.onnx'), '--manifest', manifest]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('either a recognizer report or --recognizer');
    expect(existsSync(manifest)).toBe(false);
  });
});
