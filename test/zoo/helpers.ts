/**
 * Test helpers for the model zoo: a minimal zip writer (stored or deflated entries, written per
 * PKWARE APPNOTE, independent of the reader under test), a builder for small test manifests whose
 * checksums are computed from the bytes the test serves, and a throwaway HTTP server on 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { afterAll } from 'vitest';
import { parseZoo, type Zoo } from '../../pipeline/zoo/zoo.js';

export interface ZipInput {
  name: string;
  data?: Buffer | string;
  /** 0 = stored, 8 = deflate (default). */
  method?: 0 | 8;
  /** Overwrite the stored CRC (to fake damage). */
  crc?: number;
  /** Mark as a unix symlink. */
  symlink?: boolean;
}

function crc32(buf: Buffer): number {
  let c = ~0 >>> 0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

/** Build a zip archive in memory. Names ending in `/` become folder entries. */
export function buildZip(entries: ZipInput[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const raw = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '', 'utf8');
    const isDir = e.name.endsWith('/');
    const method = isDir ? 0 : e.method ?? 8;
    const body = method === 8 ? deflateRawSync(raw) : raw;
    const crc = e.crc ?? crc32(raw);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(name.length, 28);
    const mode = e.symlink ? 0o120777 : isDir ? 0o40755 : 0o100644;
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

const made: string[] = [];
// Each test file runs in its own process, so this removes that file's folders when it finishes.
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

/** A fresh temporary folder, removed after the test file. */
export function tempDir(prefix = 'faceopt-zoo-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export interface TestFile {
  name: string;
  data: Buffer;
  role?: string;
  /** Publish size/sha256 in the manifest (default true). */
  publish?: boolean;
}

/**
 * A one-pack test manifest whose zip facts describe `zip` and whose file facts describe `files`,
 * each fact sourced from the single source "test".
 */
export function testZooJson(opts: { pack?: string; url: string; zip: Buffer | null; files: TestFile[] }): Record<string, unknown> {
  const pack = opts.pack ?? 'tinypack';
  const zipFacts = opts.zip ? { size: opts.zip.length, sha256: sha256(opts.zip) } : { size: null, sha256: null };
  return {
    version: 1,
    sources: { test: { title: 'built by the test', url: null } },
    packs: [{
      name: pack,
      description: 'test pack',
      license: 'test',
      url: opts.url,
      zip: { ...zipFacts, layout: null, sources: opts.zip ? { size: ['test'], sha256: ['test'] } : {} },
      files: opts.files.map((f) => {
        const publish = f.publish ?? true;
        const role = f.role ?? 'recognizer';
        return {
          name: f.name, role, inputSize: [112, 112], embeddingSize: role === 'recognizer' ? 512 : null, outputSize: null,
          size: publish ? f.data.length : null, sha256: publish ? sha256(f.data) : null,
          sources: publish
            ? { inputSize: ['test'], ...(role === 'recognizer' ? { embeddingSize: ['test'] } : {}), size: ['test'], sha256: ['test'] }
            : { inputSize: ['test'], ...(role === 'recognizer' ? { embeddingSize: ['test'] } : {}) },
          note: null,
        };
      }),
    }],
  };
}

/** testZooJson parsed and validated. */
export function testZoo(opts: Parameters<typeof testZooJson>[0]): Zoo {
  return parseZoo(JSON.stringify(testZooJson(opts)), 'test-zoo.json');
}

export interface TestServer {
  url: string;
  port: number;
  hits: string[];
  close(): Promise<void>;
}

/** Serve `routes` (path -> handler) on 127.0.0.1 at a free port. */
export async function serve(routes: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void>): Promise<TestServer> {
  const hits: string[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    const handler = routes[req.url ?? ''];
    if (handler) handler(req, res);
    else { res.statusCode = 404; res.end('not found'); }
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A port on 127.0.0.1 with nothing listening (bound once, then released). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Reply with `body` as application/zip. */
export function sendBytes(body: Buffer): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length });
    res.end(body);
  };
}
