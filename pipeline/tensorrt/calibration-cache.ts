/**
 * TensorRT's legacy (implicit INT8) calibration cache: writer and parser. TensorRT 8.6 and 10 accept
 * it through `trtexec --calib=FILE` and onnxruntime's TensorRT EP through
 * `trt_int8_calibration_table_name` + `trt_int8_use_native_calibration_table`; TensorRT 11 removed
 * implicit calibration, so there only the Q/DQ graph counts.
 *
 * Format (text, '\n' line ends):
 *   TRT-<version>-<algorithm>          e.g. TRT-8601-EntropyCalibration2 for TensorRT 8.6.1
 *   <tensor name>: <hex>               one line per tensor
 * `<version>` is NV_TENSORRT_VERSION: major*1000 + minor*100 + patch up to TensorRT 9 (8601), and
 * major*10000 + minor*100 + patch from TensorRT 10 (10.3.0 -> 100300). TensorRT 10 refuses a cache
 * whose header names another version, so build scripts rewrite the header to the local version
 * (`withCacheVersion`). `<hex>` is the IEEE-754 float32 bit pattern of the scale amax/127 written as
 * one big-endian 32-bit number (most significant digit first), 8 lower-case digits here; the parser
 * also accepts upper case and unpadded values (as strtoul does). A tensor name is everything before
 * the line's last ':' (onnxruntime's reader splits at the first ':' instead, so names containing ':'
 * only round-trip through this parser).
 */
import { readFile } from 'node:fs/promises';
import { FaceoptError } from '../errors.js';
import { requireFile, writeFileAtomic } from '../fsutil.js';
import { symmetricInt8FromAmax } from '../quantize/qparams.js';

/** Calibrator names TensorRT writes in the header; faceopt writes EntropyCalibration2 (trtexec's). */
export const CALIBRATION_ALGORITHMS = ['EntropyCalibration2', 'EntropyCalibration', 'MinMaxCalibration', 'LegacyCalibration'] as const;
export type CalibrationAlgorithm = (typeof CALIBRATION_ALGORITHMS)[number];

export interface TrtVersion { major: number; minor: number; patch: number }

/** One cache line: the tensor, its float32 scale, and the exact 32-bit pattern it was read from. */
export interface CacheEntry { name: string; scale: number; bits: number }

export interface CalibrationCache {
  /** Encoded NV_TENSORRT_VERSION, e.g. 8601 or 100300. */
  version: number;
  algorithm: CalibrationAlgorithm;
  /** In file order. */
  entries: CacheEntry[];
}

function bad(name: string, expected: string, received: unknown): never {
  throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name, expected, received: String(received) });
}

/**
 * Encode a TensorRT version as NV_TENSORRT_VERSION (the header number): '8.6.1' -> 8601,
 * '10.3.0' -> 100300. Accepts 'major.minor[.patch[.build]]' or an object.
 */
export function trtVersionNumber(version: string | TrtVersion): number {
  let v: TrtVersion;
  if (typeof version === 'string') {
    const m = /^(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)?$/.exec(version.trim());
    if (!m) bad('TensorRT version', 'major.minor[.patch], e.g. 8.6.1', version);
    v = { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
  } else {
    v = version;
  }
  const { major, minor, patch } = v;
  const ok = [major, minor, patch].every((x) => Number.isInteger(x) && x >= 0) && major >= 1 && patch <= 99
    && minor <= (major >= 10 ? 99 : 9);
  if (!ok) bad('TensorRT version', 'major >= 1, minor <= 9 (<= 99 from 10), patch <= 99', `${major}.${minor}.${patch}`);
  return major >= 10 ? major * 10000 + minor * 100 + patch : major * 1000 + minor * 100 + patch;
}

/** Decode a header version number: 8601 -> 8.6.1, 100300 -> 10.3.0. */
export function decodeTrtVersionNumber(n: number): TrtVersion {
  if (!Number.isInteger(n) || n < 1000) bad('TensorRT version number', 'an integer >= 1000', n);
  return n < 10000
    ? { major: Math.floor(n / 1000), minor: Math.floor((n % 1000) / 100), patch: n % 100 }
    : { major: Math.floor(n / 10000), minor: Math.floor((n % 10000) / 100), patch: n % 100 };
}

const view = new DataView(new ArrayBuffer(4));

/** The float32 bit pattern of `scale` as 8 lower-case hex digits (big-endian, as TensorRT writes). */
export function scaleToHex(scale: number): string {
  view.setFloat32(0, scale, false);
  return view.getUint32(0, false).toString(16).padStart(8, '0');
}

/** The float32 whose bit pattern is `bits` (an unsigned 32-bit integer). */
export function bitsToScale(bits: number): number {
  view.setUint32(0, bits >>> 0, false);
  return view.getFloat32(0, false);
}

/** The cache scale for an absolute maximum: float32(amax / 127), 1 for amax 0 (never 0). */
export function cacheScaleFromAmax(amax: number): number {
  return symmetricInt8FromAmax(amax).scale;
}

/** Cache scales from chosen ranges (calibration stats): amax = max(|lo|, |hi|) per tensor. */
export function scalesFromRanges(ranges: Record<string, readonly [number, number]>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, [lo, hi]] of Object.entries(ranges)) out.set(name, cacheScaleFromAmax(Math.max(Math.abs(lo), Math.abs(hi))));
  return out;
}

/**
 * The cache text for `scales` (kept in the given order). Scales are rounded to float32; each must be
 * a finite number > 0 (TensorRT derives the dynamic range scale*127 from it); names must be non-empty
 * and one line.
 */
export function writeCalibrationCache(
  scales: Map<string, number> | Record<string, number>,
  version: number | string | TrtVersion,
  algorithm: CalibrationAlgorithm = 'EntropyCalibration2',
): string {
  const v = typeof version === 'number' ? version : trtVersionNumber(version);
  decodeTrtVersionNumber(v); // validates
  if (!CALIBRATION_ALGORITHMS.includes(algorithm)) bad('calibration algorithm', CALIBRATION_ALGORITHMS.join(' | '), algorithm);
  const lines = [`TRT-${v}-${algorithm}`];
  const entries = scales instanceof Map ? [...scales] : Object.entries(scales);
  for (const [name, scale] of entries) {
    if (name === '' || /[\r\n]/.test(name)) bad('calibration cache tensor name', 'a non-empty single-line name', JSON.stringify(name));
    const f = Math.fround(scale);
    if (!(f > 0) || !Number.isFinite(f)) bad(`calibration cache scale of ${name}`, 'a finite float32 > 0', scale);
    lines.push(`${name}: ${scaleToHex(f)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Write a cache file atomically; returns the text written. */
export async function saveCalibrationCache(
  file: string, scales: Map<string, number> | Record<string, number>, version: number | string | TrtVersion,
  algorithm: CalibrationAlgorithm = 'EntropyCalibration2',
): Promise<string> {
  const text = writeCalibrationCache(scales, version, algorithm);
  await writeFileAtomic(file, text);
  return text;
}

const HEADER = /^TRT-(\d+)-([A-Za-z0-9_]+)$/;
const ENTRY = /^(.*):[ \t]*([0-9a-fA-F]{1,8})[ \t]*$/;

/**
 * Parse cache text. Every problem is FACEOPT_ERR_CALIBRATION_CACHE naming the line: missing or
 * malformed header, unknown algorithm, a line that is not `name: hex`, an empty name, a duplicate
 * tensor, a scale that is negative, NaN or infinite, or a blank line before the last entry. CRLF line
 * ends are accepted. A zero scale is accepted (TensorRT may write one), though faceopt never does.
 */
export function parseCalibrationCache(text: string, where = 'calibration cache'): CalibrationCache {
  function refuse(line: number, reason: string): never {
    throw new FaceoptError('FACEOPT_ERR_CALIBRATION_CACHE', { path: where, reason: `line ${line}: ${reason}` });
  }
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) refuse(1, 'the file is empty; expected a TRT-<version>-<algorithm> header');
  const head = HEADER.exec(lines[0]);
  if (!head) refuse(1, `expected a header like TRT-8601-EntropyCalibration2, found ${JSON.stringify(lines[0].slice(0, 80))}`);
  const version = Number(head[1]);
  if (version < 1000) refuse(1, `version number ${head[1]} is not a TensorRT version (e.g. 8601, 100300)`);
  if (!(CALIBRATION_ALGORITHMS as readonly string[]).includes(head[2])) {
    refuse(1, `unknown calibration algorithm ${head[2]} (known: ${CALIBRATION_ALGORITHMS.join(', ')})`);
  }
  const entries: CacheEntry[] = [];
  const seen = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const m = ENTRY.exec(lines[i]);
    if (!m) refuse(i + 1, `expected "tensor: 8 hex digits", found ${JSON.stringify(lines[i].slice(0, 80))}`);
    const name = m[1];
    if (name.trim() === '') refuse(i + 1, 'empty tensor name');
    if (seen.has(name)) refuse(i + 1, `tensor ${name} appears twice`);
    seen.add(name);
    const bits = Number.parseInt(m[2], 16) >>> 0;
    const scale = bitsToScale(bits);
    if (!Number.isFinite(scale) || bits >>> 31 === 1) refuse(i + 1, `scale ${m[2]} of ${name} is ${scale} (negative, NaN or infinite)`);
    entries.push({ name, scale, bits });
  }
  return { version, algorithm: head[2] as CalibrationAlgorithm, entries };
}

/** Read and parse a cache file (FACEOPT_ERR_FILE_NOT_FOUND when absent). */
export async function loadCalibrationCache(file: string): Promise<CalibrationCache> {
  requireFile(file);
  return parseCalibrationCache(await readFile(file, 'utf8'), file);
}

/** Scales by tensor name, from a parsed cache. */
export function cacheScales(cache: CalibrationCache): Map<string, number> {
  return new Map(cache.entries.map((e) => [e.name, e.scale]));
}

/**
 * The same cache with its header naming another TensorRT version (TensorRT 10 refuses a cache
 * written for a different version; the scales stay bit-identical).
 */
export function withCacheVersion(text: string, version: number | string | TrtVersion): string {
  const cache = parseCalibrationCache(text);
  const v = typeof version === 'number' ? version : trtVersionNumber(version);
  decodeTrtVersionNumber(v);
  const nl = text.indexOf('\n');
  return `TRT-${v}-${cache.algorithm}${nl < 0 ? '\n' : text.slice(text[nl - 1] === '\r' ? nl - 1 : nl)}`;
}

