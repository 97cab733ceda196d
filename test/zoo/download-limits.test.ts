/**
 * Downloads and zips that went wrong quietly or loudly before (found by the mutation audit of
 * pipeline/zoo; each failed before its fix): a stalled body blamed on the server, a short zip64 field
 * crashing the reader, and a body read to its end however far past the published size.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFaceoptError } from '../../pipeline/errors.js';
import { downloadToFile } from '../../pipeline/zoo/download.js';
import { fetchPack } from '../../pipeline/zoo/fetch.js';
import { readZipEntries } from '../../pipeline/zoo/unpack.js';
import { buildZip, serve, tempDir, testZoo, type TestServer } from './helpers.js';

describe('zoo: stalls, damaged zip64 fields, bodies past the published size', () => {
  let server: TestServer;
  let sent = 0;
  const det = Buffer.from('detector '.repeat(1000));
  const rec = Buffer.from('recognizer '.repeat(1000));
  const zip = buildZip([{ name: 'det.onnx', data: det }, { name: 'rec.onnx', data: rec }]);
  const files = [{ name: 'det.onnx', data: det, role: 'detector' }, { name: 'rec.onnx', data: rec }];

  beforeAll(async () => {
    server = await serve({
      '/announced-big': (_q, s) => { s.writeHead(200, { 'content-length': 10_000_000 }); s.write(Buffer.alloc(10)); },
      '/stall-body': (_q, s) => { s.writeHead(200, { 'content-length': 1000 }); s.write(Buffer.alloc(10)); },
      // a mirror that streams without end (no Content-Length): 64 MiB in 1 MiB pieces, counting what was written
      '/endless.zip': (_q, s) => {
        s.writeHead(200, { 'content-type': 'application/zip' });
        const piece = Buffer.alloc(1024 * 1024, 0x5a);
        let left = 64;
        const more = (): void => {
          while (left > 0) {
            left--;
            sent += piece.length;
            if (!s.write(piece)) { s.once('drain', more); return; }
          }
          s.end();
        };
        s.on('close', () => { left = 0; });
        more();
      },
    });
  });
  afterAll(async () => server.close());

  // the idle deadline destroys the request with the reason "HOST sent nothing for N s"; once the response
  // has started the body stream fails with a reset of its own, which the message must not blame on the server
  it('a body that stalls is reported as the idle deadline, not as a reset connection', { timeout: 10_000 }, async () => {
    const e = await downloadToFile(`${server.url}/stall-body`, path.join(tempDir(), 'x.tmp'), { idleTimeoutMs: 200 }).then(() => null, (err: unknown) => err);
    expect(isFaceoptError(e, 'FACEOPT_ERR_DOWNLOAD')).toBe(true);
    expect((e as Error).message).toContain('sent nothing for 0.2 s');
  });

  it('refuses a Content-Length over maxBytes before reading the body, and leaves no file', async () => {
    const dest = path.join(tempDir(), 'big.tmp');
    const e = await downloadToFile(`${server.url}/announced-big`, dest, { maxBytes: 1000 }).then(() => null, (err: unknown) => err);
    expect(isFaceoptError(e, 'FACEOPT_ERR_DOWNLOAD')).toBe(true);
    expect((e as Error).message).toContain('announced 10000000 bytes where 1000 are expected');
    expect(existsSync(dest)).toBe(false);
  });

  // a central directory entry that says "size in the zip64 field" (0xffffffff) with a short 0x0001 field
  // threw a bare RangeError (ERR_OUT_OF_RANGE)
  it('a zip64 extra field too short for the sizes it should hold is a damaged zip (coded error)', async () => {
    const plain = buildZip([{ name: 'a.onnx', data: 'x', method: 0 }]);
    const eocd = plain.length - 22;
    const cdOffset = plain.readUInt32LE(eocd + 16);
    const nameLen = plain.readUInt16LE(cdOffset + 28);
    const extra = Buffer.from([0x01, 0x00, 0x00, 0x00]); // zip64 extended information, 0 bytes of data
    const z = Buffer.concat([plain.subarray(0, cdOffset + 46 + nameLen), extra, plain.subarray(cdOffset + 46 + nameLen)]);
    z.writeUInt16LE(extra.length, cdOffset + 30);
    z.writeUInt32LE(0xffffffff, cdOffset + 24); // uncompressed size: see the zip64 field
    z.writeUInt32LE(z.readUInt32LE(z.length - 22 + 12) + extra.length, z.length - 22 + 12);
    const file = path.join(tempDir(), 'short-zip64.zip');
    writeFileSync(file, z);
    const e = await readZipEntries(file).then(() => null, (err: unknown) => err);
    expect(isFaceoptError(e, 'FACEOPT_ERR_MODEL_TRUNCATED')).toBe(true);
  });

  // a mirror (--url) or a server without Content-Length could fill the models folder's disk before the
  // size check refused the body: it stops once the body is longer than the published size
  it('stops a download that runs past the published zip size', async () => {
    sent = 0;
    const zoo = testZoo({ url: `${server.url}/endless.zip`, zip, files });
    const e = await fetchPack('tinypack', { modelsDir: tempDir(), zoo, progress: null }).then(() => null, (err: unknown) => err);
    expect(isFaceoptError(e, 'FACEOPT_ERR_CHECKSUM') || isFaceoptError(e, 'FACEOPT_ERR_DOWNLOAD')).toBe(true);
    expect(sent).toBeLessThan(16 * 1024 * 1024); // the pack is about 20 kB; 64 MiB were on offer
  });
});
