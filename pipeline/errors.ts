/**
 * The one coded error table. Every failure a user can meet has a code here, a message template that
 * says what went wrong and what to do next, a CLI exit code and an HTTP status. `docs/errors.md` lists
 * the same table; a test keeps the two in sync.
 *
 * Templates use `{name}` placeholders filled from the `params` of a FaceoptError.
 */

export interface ErrorSpec {
  /** Message template; `{param}` placeholders are replaced from the error's params. */
  readonly message: string;
  /** Process exit code when the CLI stops on this error (sysexits.h style where one fits). */
  readonly exit: number;
  /** HTTP status when the server answers with this error. */
  readonly http: number;
}

export const ERRORS = {
  // --- the command line ---------------------------------------------------------------------------
  FACEOPT_ERR_USAGE: { message: '{reason}. Run `{command} --help` for its arguments and options.', exit: 64, http: 400 },
  // --- files and models -------------------------------------------------------------------------
  FACEOPT_ERR_FILE_NOT_FOUND: { message: 'File not found: {path}. Check the path{hint?}.', exit: 66, http: 404 },
  FACEOPT_ERR_NOT_ONNX: { message: '{path} is not an ONNX model ({reason}). Pass a .onnx file exported by PyTorch/Paddle/InsightFace.', exit: 65, http: 400 },
  FACEOPT_ERR_MODEL_TRUNCATED: { message: '{path} is truncated or corrupt ({reason}). Download it again (`faceopt models fetch PACK`) and check with `faceopt models verify`.', exit: 65, http: 400 },
  FACEOPT_ERR_EXTERNAL_DATA: { message: 'External tensor data for {tensor} could not be read from {path} ({reason}). Keep the .onnx file next to its data files.', exit: 66, http: 500 },
  FACEOPT_ERR_OVERWRITE_SOURCE: { message: 'Refusing to overwrite the source {what?}{path}. Choose another output path.', exit: 73, http: 500 },
  FACEOPT_ERR_WRITE_FAILED: { message: 'Could not write {path} ({reason}). {remedy}', exit: 73, http: 500 },
  FACEOPT_ERR_UNSUPPORTED_TENSOR: { message: 'Tensor {tensor} has data type {dtype}, which faceopt cannot read or write as a typed array.', exit: 65, http: 500 },
  FACEOPT_ERR_GRAPH: { message: 'Graph error: {reason}.', exit: 65, http: 500 },
  FACEOPT_ERR_OPSET_UPGRADE: { message: 'Cannot upgrade {node} ({op}) from opset {from} to {to}: {reason}. Export the model at opset {to} or later (or convert it with `onnx.version_converter.convert_version(model, {to})` and check its outputs), then run this again.', exit: 65, http: 500 },
  FACEOPT_ERR_ALREADY_QUANTIZED: { message: '{path} is already quantized (it has {ops}). Pass the float model it was made from instead.', exit: 65, http: 400 },
  FACEOPT_ERR_MODEL_ROLE: { message: '{path} is not a {expected} model (recognised as {actual}). Pass a {expected} model{hint?}.', exit: 64, http: 400 },
  FACEOPT_ERR_TENSOR_NAME: { message: 'Input name {name} cannot be written into {target}: {reason}. Rename the input in the model to letters, digits, ".", "_" and "-" only (for example with onnx-graphsurgeon: `graph = gs.import_onnx(model); graph.inputs[0].name = "input"; onnx.save(gs.export_onnx(graph), path)`), then run this again.', exit: 65, http: 400 },
  // --- model zoo --------------------------------------------------------------------------------
  FACEOPT_ERR_UNKNOWN_PACK: { message: 'Unknown model pack "{pack}". Known packs: {known}. Run `faceopt models list`.', exit: 64, http: 404 },
  FACEOPT_ERR_UNKNOWN_MODEL_FILE: { message: 'Pack {pack} has no file "{file}". It has: {known}.', exit: 64, http: 404 },
  FACEOPT_ERR_DOWNLOAD: { message: 'Could not download {url} ({reason}). Offline? Download it by hand and unpack it into {dir} (see models/README.md).', exit: 69, http: 502 },
  FACEOPT_ERR_CHECKSUM: { message: '{path} has sha256 {actual}, expected {expected}. {remedy}', exit: 65, http: 500 },
  FACEOPT_ERR_MODEL_MISSING: { message: 'Model file {path} is missing. Run `faceopt models fetch {pack}` or copy the file there by hand.', exit: 66, http: 503 },
  FACEOPT_ERR_ZOO_INVALID: { message: 'Model zoo manifest {path} is invalid: {reason}. Restore models/zoo.json from the faceopt package or fix that field.', exit: 65, http: 500 },
  // --- arguments ----------------------------------------------------------------------------------
  FACEOPT_ERR_BAD_ARGUMENT: { message: 'Expected {expected} for {name} but received {received}.', exit: 64, http: 400 },
  // --- images and faces ---------------------------------------------------------------------------
  FACEOPT_ERR_BAD_IMAGE: { message: 'Could not decode image {source}: {reason}. Send a JPEG, PNG or WebP file.', exit: 65, http: 400 },
  FACEOPT_ERR_IMAGE_TOO_LARGE: { message: 'Image {source} has {pixels} pixels, over the limit of {limit}. Resize it, or raise the pixel limit.', exit: 65, http: 413 },
  FACEOPT_ERR_UNSUPPORTED_MEDIA: { message: 'Unsupported content type {type}. Send image/jpeg, image/png or image/webp.', exit: 65, http: 415 },
  FACEOPT_ERR_UNSUPPORTED_ENCODING: { message: 'Unsupported Content-Encoding {encoding}. Send the body uncompressed.', exit: 65, http: 415 },
  FACEOPT_ERR_NO_FACE: { message: 'No face found in {source} (score threshold {threshold}{minSize?}). Try a lower detection threshold (--threshold, --det-threshold in compare, threshold= over HTTP) or a larger photo of the face; an aligned face crop embeds without detection (embed --aligned, embed_only=true over HTTP).', exit: 1, http: 422 },
  FACEOPT_ERR_PROVIDER_UNAVAILABLE: { message: 'Execution provider {provider} is not available here ({reason}). Available: {available}.', exit: 69, http: 500 },
  FACEOPT_ERR_INFERENCE: { message: 'Inference failed in {model}: {reason}.', exit: 70, http: 500 },
  // --- calibration, quantization, evaluation --------------------------------------------------------
  FACEOPT_ERR_NO_CALIBRATION_DATA: { message: 'No calibration images found in {source}. Pass --faces DIR with photos, or --calibration-list FILE.', exit: 66, http: 400 },
  FACEOPT_ERR_STATS: { message: 'Calibration stats {path} cannot be used: {reason}. --stats reuses a stats.json that `faceopt optimize` wrote for this model; to calibrate again, name a new file or delete an outdated one.', exit: 65, http: 400 },
  FACEOPT_ERR_CALIBRATION_CACHE: { message: 'TensorRT calibration cache {path} cannot be used: {reason}. Regenerate it with `faceopt optimize --tensorrt`.', exit: 65, http: 400 },
  FACEOPT_ERR_QUANTIZE: { message: 'Quantization failed at {node}: {reason}.', exit: 70, http: 500 },
  FACEOPT_ERR_GATE_FAILED: { message: 'Accuracy gates failed: {reasons} Read the report at {report}.', exit: 3, http: 500 },
  FACEOPT_ERR_REPORT: { message: 'Report {path} cannot be read: {reason}.', exit: 65, http: 500 },
  FACEOPT_ERR_MANIFEST: { message: 'Serving manifest {path} cannot be read: {reason}. Pass a manifest `faceopt promote` wrote (or a new file name to start one), or promote again into a fresh one.', exit: 65, http: 500 },
  // --- serving ------------------------------------------------------------------------------------
  FACEOPT_ERR_UNAUTHORIZED: { message: 'Missing or wrong API key. Send `Authorization: Bearer <key>`.', exit: 77, http: 401 },
  FACEOPT_ERR_PAYLOAD_TOO_LARGE: { message: 'Request body over {limit} bytes. Send a smaller image.', exit: 65, http: 413 },
  FACEOPT_ERR_OVERLOADED: { message: 'Server busy (queue of {depth} is full). Retry after {retryAfter} s.', exit: 75, http: 503 },
  FACEOPT_ERR_TIMEOUT: { message: 'Request took longer than {ms} ms and was cancelled.', exit: 75, http: 503 },
  FACEOPT_ERR_NOT_READY: { message: 'Not ready: {reason}. Retry shortly.', exit: 75, http: 503 },
  FACEOPT_ERR_SHUTTING_DOWN: { message: 'Server is shutting down. Retry on another instance, or shortly here once it has restarted.', exit: 75, http: 503 },
  FACEOPT_ERR_REQUEST_TIMEOUT: { message: 'Request not received in time (headers within {headersMs} ms, the whole request within {requestMs} ms). Send the whole request at once.', exit: 75, http: 408 },
  FACEOPT_ERR_VARIANT_FAILED_GATES: { message: 'Variant {variant} ({file}) failed its accuracy gates ({failed}; {report}). {remedy}', exit: 3, http: 500 },
  FACEOPT_ERR_ROUTE_NOT_FOUND: { message: 'No endpoint {method} {url}. See docs/server.md for the endpoints.', exit: 64, http: 404 },
  FACEOPT_ERR_METHOD_NOT_ALLOWED: { message: '{url} does not take {method}. Use {allowed}.', exit: 64, http: 405 },
  FACEOPT_ERR_BAD_HTTP: { message: 'Malformed HTTP request ({reason}). Send a standard HTTP/1.1 request.', exit: 64, http: 400 },
  FACEOPT_ERR_HEADERS_TOO_LARGE: { message: 'Request headers over {limit} bytes. Send fewer or shorter headers (cookies, URL).', exit: 64, http: 431 },
  // --- internal -----------------------------------------------------------------------------------
  FACEOPT_ERR_INTERNAL: { message: 'Internal error: {reason}. Please report it with the command you ran.', exit: 70, http: 500 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * Fill `{name}` placeholders of a template from params; unknown placeholders stay visible. `{name?}` is
 * optional: empty when params has no `name` (a model's missing file adds where to find packs, a photo's
 * does not).
 */
export function formatMessage(template: string, params: Record<string, unknown>): string {
  return template.replace(/\{(\w+)(\?)?\}/g, (whole, key: string, optional: string | undefined) =>
    key in params ? String(params[key]) : optional ? '' : whole,
  );
}

/** The FACEOPT_ERR_FILE_NOT_FOUND hint for a model argument. */
export const MODEL_FILE_HINT = ', or run `faceopt models list` to see known packs (a model may also be named PACK/FILE)';

/**
 * An error a user can act on: it carries a code from ERRORS, the params that fill its template, and
 * derives its message, CLI exit code and HTTP status from the table.
 */
export class FaceoptError extends Error {
  readonly code: ErrorCode;
  readonly params: Record<string, unknown>;

  constructor(code: ErrorCode, params: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(formatMessage(ERRORS[code].message, params), options);
    this.name = 'FaceoptError';
    this.code = code;
    this.params = params;
  }

  get exitCode(): number {
    return ERRORS[this.code].exit;
  }

  get httpStatus(): number {
    return ERRORS[this.code].http;
  }
}

/** True when `e` is a FaceoptError (optionally with the given code). */
export function isFaceoptError(e: unknown, code?: ErrorCode): e is FaceoptError {
  return e instanceof FaceoptError && (code === undefined || e.code === code);
}

/** Decimal number text (what numeric flags take: not 0x1, 0b1 or Infinity). */
export const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * Validate a numeric argument at the call, sharp-style: the error names the parameter and the range.
 */
export function checkNumber(
  name: string,
  value: unknown,
  opts: { min?: number; max?: number; integer?: boolean } = {},
): number {
  // decimal text only: Number() would also take '0x1', '0b1' and 'Infinity'
  const n = typeof value === 'string' ? (DECIMAL_NUMBER.test(value.trim()) ? Number(value) : NaN) : value;
  const { min = -Infinity, max = Infinity, integer = false } = opts;
  const ok = typeof n === 'number' && Number.isFinite(n) && n >= min && n <= max && (!integer || Number.isInteger(n));
  if (!ok) {
    const kind = integer ? 'integer' : 'number';
    const range = Number.isFinite(min) && Number.isFinite(max) ? ` between ${min} and ${max}`
      : Number.isFinite(min) ? ` >= ${min}` : Number.isFinite(max) ? ` <= ${max}` : '';
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `${kind}${range}`, name, received: String(value) });
  }
  return n as number;
}

/**
 * FACEOPT_ERR_WRITE_FAILED for `file`, its remedy chosen by the cause: a full disk (ENOSPC, EDQUOT) or a
 * read-only file system (EROFS) says so (they read "Check the folder exists and is writable", which both
 * are); anything else asks for a writable folder.
 */
export function writeFailed(file: string, cause: unknown): FaceoptError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = typeof cause === 'string' ? cause : String((cause as Error)?.message ?? cause).split('\n')[0];
  const remedy = code === 'ENOSPC' || code === 'EDQUOT'
    ? 'The disk is full: free space on it or choose an output path on another disk.'
    : code === 'EROFS' ? 'That file system is read-only: choose an output path on a writable one.'
      : 'Check the folder exists and is writable.';
  return new FaceoptError('FACEOPT_ERR_WRITE_FAILED', { path: file, reason, remedy }, typeof cause === 'string' ? undefined : { cause });
}

