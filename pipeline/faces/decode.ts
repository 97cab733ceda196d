/**
 * Photo decoding with sharp (small plain JPEGs in WebAssembly, same pixels: jpeg-wasm.ts): any JPEG (baseline or progressive), PNG or WebP, grayscale, with alpha or
 * 16 bits per channel, becomes an 8-bit RGB HWC buffer with its EXIF orientation applied (as
 * OpenCV's imread does, which InsightFace uses). Decoding runs on libuv worker threads (sharp is
 * asynchronous), so a server can decode the next photo while the previous one is being inferred.
 *
 * Alpha is dropped, not composited, again like imread(IMREAD_COLOR). A pixel limit, checked from the
 * header before any pixel is decoded, guards against decompression bombs. The header is read in
 * JavaScript (image-header.ts; sharp's own reader only when that fails), so a photo costs one sharp
 * pipeline, not two. Decoder warnings (e.g. extra
 * bytes after a JPEG) are tolerated, as OpenCV tolerates them; errors — not an image, a broken header,
 * a file cut short — are refused with FACEOPT_ERR_BAD_IMAGE.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { OutputInfo } from 'sharp';
import { FaceoptError, checkNumber, isFaceoptError } from '../errors.js';
import { specialFileKind } from '../fsutil.js';
import { readImageHeader, type ImageHeader } from './image-header.js';
import { decodeJpegWasm } from './jpeg-wasm.js';
import type { RgbImage } from './types.js';

/** Default pixel limit: 40 megapixels (a 7,700 x 5,200 photo), far above any camera a face pipeline sees. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

// sharp loads on the first decode (~100 ms): the inference thread and commands that never decode skip it
let sharpLoading: Promise<typeof import('sharp')> | null = null;
const sharpModule = async () => (await (sharpLoading ??= import('sharp'))).default;

/** Container formats accepted; anything else sharp can read (SVG, TIFF, GIF, ...) is refused. */
export const SUPPORTED_FORMATS = ['jpeg', 'png', 'webp'] as const;
const isSupported = (f: string): f is (typeof SUPPORTED_FORMATS)[number] => (SUPPORTED_FORMATS as readonly string[]).includes(f);

export interface DecodeOptions {
  /** Largest width x height accepted (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** Name used in error messages (default: the path, or "<buffer>"). */
  source?: string;
  /**
   * 'auto' (default): small plain JPEGs are decoded in WebAssembly on this thread (jpeg-wasm.ts, the
   * same pixels as sharp), everything else by sharp; 'sharp': sharp only.
   */
  decoder?: 'auto' | 'sharp';
}

/** A decoded photo plus what the header said about it. */
export interface DecodedImage extends RgbImage {
  /** Container format (jpeg, png, webp). */
  readonly format: string;
  /** EXIF orientation tag that was applied (1 = none). */
  readonly orientation: number;
}

function badImage(source: string, reason: string, cause?: unknown): FaceoptError {
  return new FaceoptError('FACEOPT_ERR_BAD_IMAGE', { source, reason }, { cause });
}

/**
 * Decode a photo (file path or encoded bytes) to 8-bit RGB, EXIF orientation applied.
 * Errors: FACEOPT_ERR_FILE_NOT_FOUND, FACEOPT_ERR_BAD_IMAGE (corrupt, empty or unsupported format),
 * FACEOPT_ERR_IMAGE_TOO_LARGE (over maxPixels, decided from the header alone).
 */
export async function decodeImage(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const maxPixels = checkNumber('maxPixels', opts.maxPixels ?? DEFAULT_MAX_PIXELS, { min: 1, integer: true });
  const source = opts.source ?? (typeof input === 'string' ? input : '<buffer>');
  if (typeof input === 'string') {
    if (!existsSync(input)) throw new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: input });
    // a named pipe or device would be read until it ends: detect/embed/compare waited forever on a FIFO
    const kind = specialFileKind(input);
    if (kind && kind !== 'a folder') throw badImage(source, `it is ${kind}, not a regular file; pass an image file`);
  } else if (input.length === 0) {
    throw badImage(source, 'it is empty');
  }

  let bytes: Uint8Array;
  try {
    bytes = typeof input === 'string' ? await readFile(input) : input;
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'EISDIR' ? 'it is a folder; pass the image files in it' : (e as Error).message.split('\n')[0];
    throw badImage(source, reason, e);
  }
  const header = readImageHeader(bytes) ?? await sharpHeader(bytes, source);
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw new FaceoptError('FACEOPT_ERR_IMAGE_TOO_LARGE', { source, pixels, limit: maxPixels });
  }

  if (header.format === 'jpeg' && header.orientation === 1 && opts.decoder !== 'sharp') {
    const img = await decodeJpegWasm(bytes);
    if (img) return { ...img, format: 'jpeg', orientation: 1 };
  }

  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await (await sharpModule())(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate() // EXIF orientation
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    const reason = (e as Error).message.split('\n')[0];
    // the header read here and sharp's disagreed on the size: sharp's limit is the last word
    if (/pixel limit/i.test(reason)) {
      const real = await sharpHeader(bytes, source).catch(() => null);
      throw new FaceoptError('FACEOPT_ERR_IMAGE_TOO_LARGE', { source, pixels: real ? real.width * real.height : pixels, limit: maxPixels });
    }
    throw badImage(source, reason, e);
  }
  const { width, height, channels } = out.info;
  const data = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  return {
    width,
    height,
    data: channels === 3 ? data : toRgb(data, width * height, channels),
    format: header.format,
    orientation: header.orientation,
  };
}

/** The header as sharp reads it, for what readImageHeader declines; FACEOPT_ERR_BAD_IMAGE with sharp's reason or the format. */
async function sharpHeader(bytes: Uint8Array, source: string): Promise<ImageHeader> {
  let meta;
  try {
    meta = await (await sharpModule())(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw badImage(source, (e as Error).message.split('\n')[0], e);
  }
  const format = meta.format ?? 'unknown';
  if (!isSupported(format)) throw badImage(source, `${format} is not a supported format`);
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width * height <= 0) throw badImage(source, 'it has no pixels');
  return { format, width, height, orientation: meta.orientation ?? 1 };
}

/** Expand 1-, 2- or 4-channel pixels to RGB (safety net; sharp normally returns 3 channels here). */
function toRgb(src: Uint8Array, pixels: number, channels: number): Uint8Array {
  const dst = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const s = i * channels;
    const gray = channels < 3;
    dst[i * 3] = src[s];
    dst[i * 3 + 1] = gray ? src[s] : src[s + 1];
    dst[i * 3 + 2] = gray ? src[s] : src[s + 2];
  }
  return dst;
}

/** Told once per photo that could not be read, with the decoder's reason. */
export type OnUnreadable = (image: string, reason: string) => void;

/**
 * `read()` (a decode), or null after telling `onUnreadable` when the photo is not a readable image
 * (FACEOPT_ERR_BAD_IMAGE, FACEOPT_ERR_IMAGE_TOO_LARGE): for batch jobs over folders of photos, where one
 * bad file should be left out and reported rather than end the job. Without `onUnreadable`, and for any
 * other failure (a missing file, an internal error), it throws.
 */
export async function skipUnreadable<T>(read: () => Promise<T>, image: string, onUnreadable: OnUnreadable | undefined): Promise<T | null> {
  try {
    return await read();
  } catch (e) {
    if (!onUnreadable || !(isFaceoptError(e, 'FACEOPT_ERR_BAD_IMAGE') || isFaceoptError(e, 'FACEOPT_ERR_IMAGE_TOO_LARGE'))) throw e;
    onUnreadable(image, String(e.params.reason ?? e.message));
    return null;
  }
}

/** `N [of T] <kind> photo(s) could not be read and were left out: a.jpg (reason), ...`, the first three named. */
export function unreadableWarning(unreadable: ReadonlyMap<string, string>, kind: string, total?: number): string {
  const n = unreadable.size;
  const named = [...unreadable].slice(0, 3).map(([image, reason]) => `${image} (${reason})`).join(', ');
  const more = n > 3 ? ` and ${n - 3} more` : '';
  return `${n}${total !== undefined ? ` of ${total}` : ''} ${kind} photo${n === 1 && total === undefined ? '' : 's'} could not be read and ${n === 1 ? 'was' : 'were'} left out: ${named}${more}`;
}

/**
 * The unreadable photos of one job, each told once (the first reason kept; `name` turns a path into what
 * the warning shows): `onUnreadable` goes to skipUnreadable's callers, `warning` sums them up.
 */
export class UnreadablePhotos {
  readonly photos = new Map<string, string>();

  constructor(private readonly name: (image: string) => string = (image) => image) {}

  readonly onUnreadable: OnUnreadable = (image, reason) => {
    const key = this.name(image);
    if (!this.photos.has(key)) this.photos.set(key, reason);
  };

  /** unreadableWarning for what was told, or null when nothing was. */
  warning(kind: string, total?: number): string | null {
    return this.photos.size ? unreadableWarning(this.photos, kind, total) : null;
  }
}
