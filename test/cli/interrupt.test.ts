/**
 * What an interrupted command leaves on disk: Ctrl-C (SIGINT) or SIGTERM while a temporary file exists
 * removes it, and the process still dies of that signal (exit 130/143 in a shell).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = path.resolve('bin/faceopt.js');
const work = mkdtempSync(path.join(tmpdir(), 'faceopt-interrupt-'));

/** A server that announces 10 MB and then sends 10 kB every 50 ms, for as long as it is asked. */
let server: http.Server;
let url = '';
beforeAll(async () => {
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-length': String(10_000_000) });
    const t = setInterval(() => res.write(Buffer.alloc(10_000)), 50);
    req.on('close', () => clearInterval(t));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pack.zip`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

/** Files under `dir` (names only). */
const entries = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };

describe('models fetch interrupted by a signal', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during the download leaves no piece of the zip in the models folder`, async () => {
      const models = path.join(work, `models-${signal}`);
      const child = spawn(process.execPath, [BIN, 'models', 'fetch', 'buffalo_s', '--models-dir', models, '--url', url, '--no-progress'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c) => { stderr += String(c); });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));
      // wait until the download has written bytes to its temporary file (the body never ends by itself)
      const deadline = Date.now() + 60_000;
      for (;;) {
        const tmp = entries(models).find((f) => f.endsWith('.tmp'));
        if (tmp && statSync(path.join(models, tmp), { throwIfNoEntry: false })?.size) break;
        if (Date.now() > deadline) throw new Error(`no download started: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill(signal);
      const end = await exited;
      expect(end.signal).toBe(signal);
      expect(entries(models)).toEqual([]);
    });
  }
});

describe('models fetch that fails (offline)', () => {
  it('leaves no models folder it made', () => {
    const root = path.join(work, 'offline');
    const models = path.join(root, 'new', 'models');
    const r = spawnSync(process.execPath, [BIN, 'models', 'fetch', 'buffalo_s', '--models-dir', models, '--url', 'http://127.0.0.1:1/pack.zip', '--timeout', '5', '--no-progress'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(69);
    expect(r.stderr).toMatch(/^faceopt: FACEOPT_ERR_DOWNLOAD: .*Offline\?/);
    expect(existsSync(root)).toBe(false);
  });
});
