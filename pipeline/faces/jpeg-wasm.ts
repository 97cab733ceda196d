/**
 * Small JPEGs decoded on the calling thread by mozjpeg compiled to WebAssembly (`@jsquash/jpeg`, the
 * Squoosh build), instead of a sharp pipeline.
 *
 * Why: a sharp call has a fixed cost that dwarfs the decoding of a face crop. A 112x112 crop took
 * about 0.8 ms of CPU through sharp (libvips' pipeline set-up, 0.1-0.4 ms of it on the event loop, the
 * rest on a libuv thread that competes with inference) and about 0.2-0.3 ms here. sharp's libvips links
 * mozjpeg too, so the pixels are the same: every chip, LFW and group photo of the shared data set
 * decodes byte for byte alike both ways (test/faces/jpeg-wasm.test.ts).
 *
 * Only files on which the two decoders are known to agree take this path (`wasmJpegEligible`):
 * baseline, extended or progressive Huffman JPEGs with 8-bit YCbCr (3 components) or grayscale,
 * no embedded ICC profile (sharp converts those to sRGB), no Adobe marker, no EXIF rotation (one EXIF
 * block at most, before the frame header, its orientation entry absent or a SHORT 1), ending
 * with the EOI marker (sharp refuses a file cut short; libjpeg would fill it with grey), and at most
 * WASM_JPEG_MAX_PIXELS pixels, so the event loop is never held for long. Anything libjpeg warns about
 * (corrupt data) or refuses sends the file back to sharp, which decides: its errors and its pixels stay
 * the only ones a caller sees for a damaged file. A decoder is replaced by a fresh instance after 8 of
 * libjpeg's error exits, or when its heap has grown (each exit leaves its allocations behind; an
 * instance aborted after 50-100 of them, or hung once its heap had grown).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { ascii, be16, isSof, jpegMarkers, tiffOrientationTag } from './image-header.js';
import type { RgbImage } from './types.js';

/**
 * Largest image (width x height) decoded here; larger ones go to sharp on a libuv thread. Crops and
 * LFW photos hold the calling thread 0.2-0.4 ms, the largest eligible files (256x256) 1.7-4.3 ms.
 */
export const WASM_JPEG_MAX_PIXELS = 65_536;

interface MozJpegModule {
  decode(data: Uint8Array, preserveOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
  /** The instance's heap (emscripten keeps this view current when the memory grows). */
  HEAP8: Int8Array;
}
type ModuleFactory = (opts: Record<string, unknown>) => Promise<MozJpegModule>;

const require = createRequire(import.meta.url);
let compiled: Promise<WebAssembly.Module | null> | null = null;
let instance: Promise<Decoder | null> | null = null;
/** Messages libjpeg printed (warnings, errors) during the current decode. */
let messages = 0;
/** libjpeg error exits an instance takes before it is replaced (see decodeJpegWasm). */
const ERROR_EXITS_PER_INSTANCE = 8;
/** One decoder instance with its heap size when made and the error exits it has taken. */
interface Decoder {
  readonly module: MozJpegModule;
  readonly heapAtStart: number;
  errorExits: number;
}

/** The compiled decoder, once per thread; null when the package cannot be loaded (sharp then decodes everything). */
function compile(): Promise<WebAssembly.Module | null> {
  compiled ??= readFile(require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm'))
    .then((bytes) => WebAssembly.compile(bytes))
    .catch(() => null);
  return compiled;
}

async function instantiate(): Promise<MozJpegModule | null> {
  const wasm = await compile();
  if (!wasm) return null;
  try {
    const factory = (await import('@jsquash/jpeg/codec/dec/mozjpeg_dec.js' as string)).default as ModuleFactory;
    return await factory({
      noInitialRun: true,
      instantiateWasm: (imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) => {
        const inst = new WebAssembly.Instance(wasm, imports);
        done(inst);
        return inst.exports;
      },
      // libjpeg's warnings and errors: counted, never printed (a warning sends the file to sharp)
      print: () => {},
      printErr: () => { messages++; },
    });
  } catch {
    return null;
  }
}

/** The thread's decoder instance (made on first use); null when unavailable. */
export function wasmJpegDecoder(): Promise<Decoder | null> {
  instance ??= instantiate().then((module) => (module ? { module, heapAtStart: module.HEAP8.length, errorExits: 0 } : null));
  return instance;
}

/**
 * Whether the wasm decoder may take these bytes (see the module comment): the markers up to the first
 * scan (jpegMarkers, bounds-checked); anything unexpected answers false.
 */
export function wasmJpegEligible(b: Uint8Array): boolean {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return false;
  if (b[b.length - 2] !== 0xff || b[b.length - 1] !== 0xd9) return false;
  let frame = false;
  let exif = 0;
  for (const { marker: m, at: i, length: len } of jpegMarkers(b)) {
    if (m === 0xda) return frame; // start of scan: everything that matters has been seen
    // malformed, or a marker without a segment (TEM, RSTn, EOI) or a second SOI before a scan
    if (m < 0 || len === 0 || m === 0xd8) return false;
    if (m === 0xe2 && len >= 14 && ascii(b, i + 4, 'ICC_PROFILE\0')) return false;
    if (m === 0xee && len >= 7 && ascii(b, i + 4, 'Adobe')) return false;
    // one EXIF block, before the frame header, whose orientation entry (if any) is a SHORT 1: anything
    // else could make libvips rotate what this path would not
    if (m === 0xe1 && len >= 8 && ascii(b, i + 4, 'Exif\0\0')) {
      if (frame || ++exif > 1) return false;
      const orientation = tiffOrientationTag(b, i + 10, i + 2 + len);
      if (orientation !== null && orientation !== 1) return false;
    }
    if (isSof(m)) {
      // SOF0 baseline, SOF1 extended, SOF2 progressive (Huffman); one frame
      if (frame || m > 0xc2 || len < 8) return false;
      const precision = b[i + 4];
      const height = be16(b, i + 5);
      const width = be16(b, i + 7);
      const components = b[i + 9];
      if (precision !== 8 || (components !== 3 && components !== 1) || len !== 8 + 3 * components) return false;
      if (width === 0 || height === 0 || width * height > WASM_JPEG_MAX_PIXELS) return false;
      frame = true;
    }
  }
  return false;
}

/**
 * Decode with the wasm decoder: the RGB image, or null when the file is not eligible (a rotated one
 * included), the decoder is unavailable, or libjpeg warned or failed (the caller then uses sharp).
 */
export async function decodeJpegWasm(bytes: Uint8Array): Promise<RgbImage | null> {
  if (!wasmJpegEligible(bytes)) return null;
  const current = wasmJpegDecoder();
  const dec = await current;
  if (!dec) return null;
  messages = 0;
  let out: ReturnType<MozJpegModule['decode']>;
  try {
    out = dec.module.decode(bytes, false);
  } catch {
    dec.errorExits++;
    return null;
  } finally {
    // libjpeg's error exit (a throw here) leaves its allocations behind. One instance took 50-100 of
    // them and then aborted, or, once its heap had grown, spun forever in the next decode (measured,
    // 2026-12-05: a 256x256 progressive JPEG broken in its third scan, 71st error exit). So an instance
    // is replaced after ERROR_EXITS_PER_INSTANCE of them, and at once when its heap has grown (a clean
    // decode of the largest eligible file does not grow it). Not after every one: making an instance
    // costs ~1.5 ms of the event loop, so a stream of broken files would cost 5x sharp's refusal.
    if ((dec.errorExits >= ERROR_EXITS_PER_INSTANCE || dec.module.HEAP8.length > dec.heapAtStart) && instance === current) instance = null;
  }
  if (messages > 0 || !out) return null;
  const { width, height } = out;
  const rgba = out.data;
  const n = width * height;
  if (rgba.length !== n * 4) return null;
  return { width, height, data: rgbaToRgb(rgba, n) };
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Drop the alpha byte of n RGBA pixels: four pixels per step as 32-bit words where the layout allows. */
export function rgbaToRgb(rgba: Uint8Array | Uint8ClampedArray, n: number): Uint8Array {
  const out = new ArrayBuffer(Math.ceil((n * 3) / 4) * 4);
  const data = new Uint8Array(out, 0, n * 3);
  let done = 0;
  if (littleEndian && rgba.byteOffset % 4 === 0) {
    const src = new Uint32Array(rgba.buffer, rgba.byteOffset, n);
    const dst = new Uint32Array(out);
    const quads = n >> 2;
    for (let k = 0, p = 0, q = 0; k < quads; k++, p += 4, q += 3) {
      const a = src[p]!, b = src[p + 1]!, c = src[p + 2]!, d = src[p + 3]!;
      dst[q] = (a & 0xffffff) | (b << 24);
      dst[q + 1] = ((b >>> 8) & 0xffff) | (c << 16);
      dst[q + 2] = ((c >>> 16) & 0xff) | (d << 8);
    }
    done = quads * 4;
  }
  for (let i = done; i < n; i++) {
    data[i * 3] = rgba[i * 4]!;
    data[i * 3 + 1] = rgba[i * 4 + 1]!;
    data[i * 3 + 2] = rgba[i * 4 + 2]!;
  }
  return data;
}
