/**
 * Hand-made image bytes for header and decoder tests: JPEG segments spliced into a real JPEG, TIFF
 * (EXIF) structures, PNG chunks with their CRCs and WebP (RIFF) containers rebuilt from chunks.
 */
import { crc32 } from 'node:zlib';

/** A JPEG marker segment: FF <marker> <length> <payload> (length counts itself). */
export function segment(marker: number, payload: Uint8Array | number[] = []): Buffer {
  const p = Buffer.from(payload);
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(p.length + 2, 2);
  return Buffer.concat([head, p]);
}

/** The segments of a JPEG between SOI and its first SOS, and the rest (SOS onwards). */
export function jpegSegments(b: Buffer): { segments: Buffer[]; rest: Buffer } {
  const segments: Buffer[] = [];
  let i = 2;
  while (b[i] === 0xff && b[i + 1] !== 0xda) {
    const end = i + 2 + b.readUInt16BE(i + 2);
    segments.push(b.subarray(i, end));
    i = end;
  }
  return { segments, rest: b.subarray(i) };
}

/** A JPEG rebuilt from SOI, the given segments (in order) and the rest. */
export function jpegFrom(segments: readonly Uint8Array[], rest: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xd8]), ...segments, rest]);
}

/** The JPEG with `extra` (raw bytes) placed right before its frame header (SOF0/1/2). */
export function beforeSof(b: Buffer, ...extra: Uint8Array[]): Buffer {
  const { segments, rest } = jpegSegments(b);
  const k = segments.findIndex((s) => s[1]! >= 0xc0 && s[1]! <= 0xc2);
  if (k < 0) throw new Error('no frame header');
  return jpegFrom([...segments.slice(0, k), ...extra, ...segments.slice(k)], rest);
}

/** The JPEG without its APP segments (JFIF, EXIF, ICC): a plain stream to add chosen segments to. */
export function withoutApp(b: Buffer): Buffer {
  const { segments, rest } = jpegSegments(b);
  return jpegFrom(segments.filter((s) => s[1]! < 0xe0 || s[1]! > 0xef), rest);
}

/** Byte offset of the frame header (FF C0-C2) in a JPEG made by sharp. */
export function sofAt(b: Buffer): number {
  const { segments } = jpegSegments(b);
  let at = 2;
  for (const s of segments) {
    if (s[1]! >= 0xc0 && s[1]! <= 0xc2) return at;
    at += s.length;
  }
  throw new Error('no frame header');
}

/** A TIFF structure with one IFD holding `entries` ([tag, type, value] with count 1; value in the entry). */
export function tiff(little: boolean, entries: readonly [number, number, number][], opts: { magic?: number; order?: string; nextIfd?: boolean } = {}): Buffer {
  const b = Buffer.alloc(8 + 2 + entries.length * 12 + (opts.nextIfd === false ? 0 : 4));
  b.write(opts.order ?? (little ? 'II' : 'MM'), 0, 'latin1');
  const w16 = (v: number, at: number) => (little ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const w32 = (v: number, at: number) => (little ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  w16(opts.magic ?? 42, 2);
  w32(8, 4);
  w16(entries.length, 8);
  entries.forEach(([tag, type, value], k) => {
    const e = 10 + k * 12;
    w16(tag, e); w16(type, e + 2); w32(1, e + 4);
    if (type === 3) w16(value, e + 8); else w32(value, e + 8);
  });
  return b;
}

/** An APP1 EXIF segment around a TIFF structure. */
export const exifApp1 = (t: Uint8Array): Buffer => segment(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), t]));

/** A PNG chunk with its length and CRC. */
export function pngChunk(type: string, data: Uint8Array = new Uint8Array(0)): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** The chunks of a PNG after its signature. */
export function pngChunks(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 8; i + 12 <= b.length;) {
    const end = i + 12 + b.readUInt32BE(i);
    out.push(b.subarray(i, end));
    i = end;
  }
  return out;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A RIFF chunk (fourcc, little-endian size, payload, pad byte when odd). */
export function riffChunk(fourcc: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.write(fourcc, 0, 'latin1');
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, Buffer.alloc(data.length & 1)]);
}

/** The chunks of a WebP file (each with its header and padding). */
export function webpChunks(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 12; i + 8 <= b.length;) {
    const len = b.readUInt32LE(i + 4);
    const end = i + 8 + len + (len & 1);
    out.push(b.subarray(i, end));
    i = end;
  }
  return out;
}

/** A WebP file from chunks, with the RIFF size set. */
export function webpFrom(chunks: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), ...chunks]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}
