/**
 * One HTTP(S) download to a file, with what a model installer needs and nothing more: redirects
 * (GitHub release assets answer 302 to a storage host), a short deadline for the connection and
 * response headers so an offline machine fails in seconds instead of hanging, an idle deadline while
 * the body streams, the sha256 computed on the way to disk, and a length check against Content-Length.
 *
 * node:http/https rather than global fetch: fetch (undici) hides the socket, so a connect deadline and
 * an idle deadline need AbortSignal juggling, and its errors arrive as "fetch failed" with the real
 * cause nested; here ENOTFOUND / ECONNREFUSED are seen directly and turned into one clear reason.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FaceoptError } from '../errors.js';
import { TOOL_VERSION } from '../version.js';

export interface DownloadOptions {
  /** Deadline for DNS + connect + TLS + response headers, per request (redirect hop). Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Longest pause without a byte while the body streams. Default 30 s. */
  readonly idleTimeoutMs?: number;
  /** Redirect hops followed before giving up. Default 5. */
  readonly maxRedirects?: number;
  /** Called as bytes arrive: (received, total or null). */
  readonly onProgress?: (received: number, total: number | null) => void;
  /** Folder named in the offline message as the place to put the files by hand. */
  readonly manualDir?: string;
  /**
   * Most bytes the body may have (a pack's published zip size): a Content-Length over it fails before
   * the body is read, and a longer body (a wrong --url, a server without Content-Length) stops as soon as
   * it passes it, instead of filling the disk before the size check.
   */
  readonly maxBytes?: number;
}

export interface DownloadResult {
  readonly bytes: number;
  readonly sha256: string;
  /** The URL that finally answered 200 (after redirects). */
  readonly finalUrl: string;
  /** Content-Length of the final response, if it sent one. */
  readonly contentLength: number | null;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Turn a socket/DNS error into a short reason a person can act on. */
export function describeNetError(e: unknown, host: string): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOTFOUND': return `host ${host} not found (DNS); no network?`;
    case 'EAI_AGAIN': return `DNS lookup for ${host} failed (EAI_AGAIN); no network?`;
    case 'ECONNREFUSED': return `connection to ${host} refused`;
    case 'ECONNRESET': return `connection to ${host} reset`;
    case 'EHOSTUNREACH': case 'ENETUNREACH': return `network unreachable for ${host}`;
    case 'ETIMEDOUT': return `connection to ${host} timed out`;
    case 'CERT_HAS_EXPIRED': case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE': case 'SELF_SIGNED_CERT_IN_CHAIN':
      return `TLS certificate problem with ${host} (${err.code})`;
    default: return err?.message ? err.message : String(e);
  }
}

/**
 * One GET; resolves with the response once headers arrive, within the connect deadline, and `idle`: the
 * idle deadline's error once it has fired (the body stream then fails with a reset of its own, whose
 * message would blame the server for what was our deadline).
 */
function get(url: URL, connectTimeoutMs: number, idleTimeoutMs: number): Promise<{ res: IncomingMessage; idle: () => Error | null }> {
  let idleError: Error | null = null;
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, {
      method: 'GET',
      headers: { 'user-agent': `faceopt/${TOOL_VERSION}`, accept: 'application/octet-stream, */*' },
    });
    const timer = setTimeout(() => {
      req.destroy(Object.assign(new Error(`no answer from ${url.host} within ${connectTimeoutMs / 1000} s; offline?`), { code: 'FACEOPT_CONNECT_TIMEOUT' }));
    }, connectTimeoutMs);
    req.setTimeout(idleTimeoutMs, () => {
      idleError = Object.assign(new Error(`${url.host} sent nothing for ${idleTimeoutMs / 1000} s`), { code: 'FACEOPT_IDLE_TIMEOUT' });
      req.destroy(idleError);
    });
    req.on('response', (res) => { clearTimeout(timer); resolve({ res, idle: () => idleError }); });
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end();
  });
}

const TOO_LONG = 'FACEOPT_TOO_LONG';

/** True for downloadToFile's error when the body was (or announced itself) longer than `maxBytes`. */
export function bodyTooLong(e: unknown): boolean {
  return (e as { cause?: { code?: unknown } } | null)?.cause?.code === TOO_LONG;
}

/** Hashes and counts bytes on their way to disk, and reports progress. */
class Meter extends Transform {
  bytes = 0;
  readonly hash = createHash('sha256');
  constructor(private readonly total: number | null, private readonly onProgress?: (r: number, t: number | null) => void, private readonly maxBytes?: number) { super(); }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.maxBytes !== undefined && this.bytes > this.maxBytes) {
      cb(Object.assign(new Error(`the body is longer than the ${this.maxBytes} bytes expected`), { code: TOO_LONG }));
      return;
    }
    this.hash.update(chunk);
    this.onProgress?.(this.bytes, this.total);
    cb(null, chunk);
  }
}

/**
 * Download `url` to `dest` (a temporary path the caller later renames), following redirects. Every
 * failure (DNS, refused connection, deadline, HTTP status, short body) removes `dest` and throws
 * FACEOPT_ERR_DOWNLOAD whose message tells where to put the files by hand (`manualDir`).
 */
export async function downloadToFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const { connectTimeoutMs = 10_000, idleTimeoutMs = 30_000, maxRedirects = 5, onProgress, maxBytes } = opts;
  const dir = opts.manualDir ?? path.dirname(path.resolve(dest));
  const fail = (reason: string, cause?: unknown): FaceoptError =>
    new FaceoptError('FACEOPT_ERR_DOWNLOAD', { url, reason, dir }, { cause });

  let current: URL;
  try {
    current = new URL(url);
  } catch (e) {
    throw fail('not a valid URL', e);
  }
  for (let hop = 0; ; hop++) {
    if (current.protocol !== 'https:' && current.protocol !== 'http:') throw fail(`unsupported protocol ${current.protocol}`);
    let res: IncomingMessage;
    let idle: () => Error | null;
    try {
      ({ res, idle } = await get(current, connectTimeoutMs, idleTimeoutMs));
    } catch (e) {
      throw fail(describeNetError(e, current.host), e);
    }
    const status = res.statusCode ?? 0;
    if (REDIRECTS.has(status) && res.headers.location) {
      res.resume();
      if (hop >= maxRedirects) throw fail(`more than ${maxRedirects} redirects`);
      current = new URL(res.headers.location, current);
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw fail(`HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''} from ${current.host}`);
    }
    const lengthHeader = res.headers['content-length'];
    const total = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
    if (maxBytes !== undefined && total !== null && total > maxBytes) {
      res.destroy();
      const reason = `${current.host} announced ${total} bytes where ${maxBytes} are expected (nothing was read)`;
      throw fail(reason, Object.assign(new Error(reason), { code: TOO_LONG }));
    }
    const meter = new Meter(total, onProgress, maxBytes);
    try {
      await pipeline(res, meter, createWriteStream(dest));
    } catch (e) {
      await rm(dest, { force: true });
      const got = `${meter.bytes}${total !== null ? ` of ${total}` : ''} bytes`;
      const cause = idle() ?? e; // our idle deadline, not the reset it caused
      const reason = (cause as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE'
        ? `connection closed after ${got}` : `stopped after ${got}: ${describeNetError(cause, current.host)}`;
      throw fail(reason, cause);
    }
    if (total !== null && meter.bytes !== total) {
      await rm(dest, { force: true });
      throw fail(`connection closed after ${meter.bytes} of ${total} bytes`);
    }
    return { bytes: meter.bytes, sha256: meter.hash.digest('hex'), finalUrl: current.href, contentLength: total };
  }
}
