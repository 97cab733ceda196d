/**
 * A small zip reader for the model packs, built on node:zlib's raw inflate.
 *
 * Why not a package: the packs are plain zip files (stored or deflated entries, no encryption, one disk),
 * which is a few dozen lines of format to read. Writing it here keeps the dependency list as the product
 * card names it, streams every entry from disk (antelopev2.zip is 361 MB; adm-zip would hold it in memory),
 * and lets us check what a model installer must check: CRC-32 and size of every entry, and names that try
 * to leave the target folder (`../`, absolute paths, symlinks). yauzl would also do, but it is callback
 * based and adds two packages for what this file does.
 *
 * Format reference: PKWARE APPNOTE.TXT (end of central directory, zip64 locator, central directory file
 * headers, local file headers).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { ensureDir } from '../fsutil.js';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { FaceoptError } from '../errors.js';

export interface ZipEntry {
  /** Name as stored, with `\` turned into `/`. */
  readonly name: string;
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
}

export interface ExtractedFile {
  /** Path relative to the destination folder, `/`-separated, after any stripped top folder. */
  readonly name: string;
  readonly path: string;
  readonly size: number;
}

export interface ExtractOptions {
  /** Drop a single folder that holds every file (antelopev2.zip has `antelopev2/`). Default true. */
  readonly stripTopFolder?: boolean;
  /** Refuse archives that would unpack to more than this many bytes. Default 16 GiB. */
  readonly maxTotalBytes?: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

function corrupt(file: string, reason: string): FaceoptError {
  return new FaceoptError('FACEOPT_ERR_MODEL_TRUNCATED', { path: file, reason });
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 (zip/PNG polynomial) of `data`, continuing from `crc`; zlib's native one where Node has it. */
export function crc32(data: Uint8Array, crc = 0): number {
  if (nativeCrc32) return nativeCrc32(data, crc) >>> 0;
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

async function readAt(fh: import('node:fs/promises').FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

/** Read the central directory of `file`: every entry with its sizes, CRC and where its data starts. */
export async function readZipEntries(file: string): Promise<ZipEntry[]> {
  const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: file }, { cause: e });
  });
  try {
    const { size } = await fh.stat();
    if (size < 22) throw corrupt(file, `only ${size} bytes, too short for a zip`);
    const tailLen = Math.min(size, 22 + 0xffff);
    const tail = await readAt(fh, size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) === tail.length) { eocd = i; break; }
    }
    if (eocd < 0) throw corrupt(file, 'no end-of-central-directory record (not a zip, or cut short)');
    if (tail.readUInt16LE(eocd + 4) !== 0 || tail.readUInt16LE(eocd + 6) !== 0) throw corrupt(file, 'multi-disk zips are not supported');
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locPos = size - tailLen + eocd - 20;
      const loc = locPos >= 0 ? await readAt(fh, locPos, 20) : Buffer.alloc(0);
      if (loc.length < 20 || loc.readUInt32LE(0) !== SIG_ZIP64_LOCATOR) throw corrupt(file, 'zip64 locator missing');
      const rec = await readAt(fh, Number(loc.readBigUInt64LE(8)), 56);
      if (rec.length < 56 || rec.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw corrupt(file, 'zip64 end record missing');
      count = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    if (cdOffset + cdSize > size || cdSize > 256 * 1024 * 1024) throw corrupt(file, 'central directory lies outside the file');
    const cd = await readAt(fh, cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw corrupt(file, `central directory entry ${i} is damaged`);
      const madeBy = cd.readUInt16LE(p + 4);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc = cd.readUInt32LE(p + 16);
      let csize = cd.readUInt32LE(p + 20);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const extAttr = cd.readUInt32LE(p + 38);
      let offset = cd.readUInt32LE(p + 42);
      const name = cd.subarray(p + 46, p + 46 + nameLen).toString(flags & 0x800 ? 'utf8' : 'latin1').replace(/\\/g, '/');
      const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
      for (let e = 0; e + 4 <= extra.length;) {
        const id = extra.readUInt16LE(e);
        const len = extra.readUInt16LE(e + 2);
        if (id === 0x0001) {
          // the zip64 field holds, in this order, each value its 32-bit slot marks 0xffffffff; a field too
          // short for them (or one running past the extra data) is a damaged entry
          const end = Math.min(e + 4 + len, extra.length);
          let q = e + 4;
          const next = (): number => {
            if (q + 8 > end) throw corrupt(file, `central directory entry ${i} (${name}) has a zip64 field too short for its sizes`);
            const v = Number(extra.readBigUInt64LE(q));
            q += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = next();
          if (csize === 0xffffffff) csize = next();
          if (offset === 0xffffffff) offset = next();
        }
        e += 4 + len;
      }
      const unixMode = madeBy >> 8 === 3 ? extAttr >>> 16 : 0;
      entries.push({
        name, method, flags, crc32: crc, compressedSize: csize, size: usize, localHeaderOffset: offset,
        isDirectory: name.endsWith('/'), isSymlink: (unixMode & 0o170000) === 0o120000,
      });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return entries;
  } finally {
    await fh.close();
  }
}

/** Split an entry name into safe path segments, or say why it is unsafe. */
function safeSegments(name: string): string[] | string {
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'absolute path';
  const segs = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segs.some((s) => s === '..')) return 'parent-folder (..) path';
  if (segs.some((s) => s.includes('\0'))) return 'NUL in name';
  return segs;
}

function isJunk(segs: string[]): boolean {
  return segs[0] === '__MACOSX' || segs[segs.length - 1] === '.DS_Store';
}

/** Counts bytes and CRC of what passes, and stops an entry that inflates past its declared size. */
class EntryCheck extends Transform {
  bytes = 0;
  crc = 0;
  constructor(private readonly limit: number, private readonly label: string) { super(); }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) { cb(new Error(`${this.label} inflates past its declared ${this.limit} bytes`)); return; }
    this.crc = crc32(chunk, this.crc);
    cb(null, chunk);
  }
}

async function extractEntry(file: string, entry: ZipEntry, dest: string): Promise<void> {
  const fh = await open(file, 'r');
  let dataStart: number;
  try {
    const lh = await readAt(fh, entry.localHeaderOffset, 30);
    if (lh.length < 30 || lh.readUInt32LE(0) !== SIG_LOCAL) throw corrupt(file, `local header of ${entry.name} is damaged`);
    dataStart = entry.localHeaderOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
  } finally {
    await fh.close();
  }
  const check = new EntryCheck(entry.size, entry.name);
  const sink = createWriteStream(dest, { flags: 'wx' }); // 'wx': never write through a file or link already there
  try {
    if (entry.compressedSize === 0) {
      await pipeline(Readable.from([]), check, sink);
    } else {
      const source = createReadStream(file, { start: dataStart, end: dataStart + entry.compressedSize - 1 });
      if (entry.method === 8) await pipeline(source, zlib.createInflateRaw(), check, sink);
      else await pipeline(source, check, sink);
    }
  } catch (e) {
    if (e instanceof FaceoptError) throw e;
    throw corrupt(file, `${entry.name}: ${(e as Error).message}`);
  }
  if (check.bytes !== entry.size) throw corrupt(file, `${entry.name} has ${check.bytes} bytes, the directory says ${entry.size}`);
  if (check.crc !== entry.crc32) throw corrupt(file, `${entry.name} fails its CRC-32 check`);
}

/**
 * Unpack every file of `zipFile` into `destDir` (created if needed), verifying each entry's size and
 * CRC-32. Refuses encrypted entries, unknown compression, symlinks and names that would land outside
 * `destDir`; skips macOS `__MACOSX/` and `.DS_Store` litter. With `stripTopFolder` (default), a single
 * folder that contains every file is dropped, so `antelopev2/x.onnx` lands at `destDir/x.onnx`.
 * Damage throws FACEOPT_ERR_MODEL_TRUNCATED naming the zip; files already written stay, so callers
 * unpack into a temporary folder.
 */
export async function extractZip(zipFile: string, destDir: string, opts: ExtractOptions = {}): Promise<ExtractedFile[]> {
  const { stripTopFolder = true, maxTotalBytes = 16 * 1024 ** 3 } = opts;
  const entries = await readZipEntries(zipFile);
  const plan: { entry: ZipEntry; segs: string[] }[] = [];
  let total = 0;
  for (const entry of entries) {
    const segs = safeSegments(entry.name);
    if (typeof segs === 'string') throw corrupt(zipFile, `entry "${entry.name}" has an unsafe ${segs}`);
    if (entry.isDirectory || segs.length === 0 || isJunk(segs)) continue;
    if (entry.isSymlink) throw corrupt(zipFile, `entry "${entry.name}" is a symbolic link`);
    if (entry.flags & 0x1) throw corrupt(zipFile, `entry "${entry.name}" is encrypted`);
    if (entry.method !== 0 && entry.method !== 8) throw corrupt(zipFile, `entry "${entry.name}" uses compression method ${entry.method} (only stored and deflate are read)`);
    total += entry.size;
    plan.push({ entry, segs });
  }
  if (total > maxTotalBytes) throw corrupt(zipFile, `it would unpack to ${total} bytes, over the ${maxTotalBytes}-byte limit`);
  const top = plan[0]?.segs[0];
  const strip = stripTopFolder && plan.length > 0 && plan.every((p) => p.segs.length >= 2 && p.segs[0] === top);
  const root = path.resolve(destDir);
  ensureDir(root);
  const out: ExtractedFile[] = [];
  const written = new Set<string>();
  for (const { entry, segs } of plan) {
    const rel = strip ? segs.slice(1) : segs;
    const dest = path.join(root, ...rel);
    if (!dest.startsWith(root + path.sep)) throw corrupt(zipFile, `entry "${entry.name}" would land outside ${root}`);
    if (written.has(dest)) throw corrupt(zipFile, `entry "${entry.name}" appears twice`);
    written.add(dest);
    ensureDir(path.dirname(dest));
    await extractEntry(zipFile, entry, dest);
    out.push({ name: rel.join('/'), path: dest, size: entry.size });
  }
  return out;
}
