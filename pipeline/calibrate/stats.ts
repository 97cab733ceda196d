/**
 * The calibration stats artifact: the only contract between calibration and quantization
 * (DESIGN.md). It records which model (sha256) and which images (count + hash of the list) produced
 * it, the method and every collector setting, and per tensor min, max, histogram and chosen range.
 * Saved atomically as JSON with sorted keys (byte-identical for identical content), loaded with
 * validation that refuses, with FACEOPT_ERR_STATS and a reason, a file that is not JSON, has another
 * schema version, was made for another model, or holds inconsistent numbers.
 */
import { readFile } from 'node:fs/promises';
import { FaceoptError, isFaceoptError } from '../errors.js';
import { looksBinary, requireFile, sha256, writeFileAtomic } from '../fsutil.js';
import { TOOL_VERSION } from '../version.js';
import {
  COLLECTORS, type CalibrationMethod, type CollectorSettings, type TensorStats, resolveSettings, rethreshold,
} from './collectors.js';
import { checkHistogramData } from './histogram.js';

/** Bump when the layout changes incompatibly; older files are then refused with a reason. */
export const STATS_SCHEMA_VERSION = 1;

/** Where the calibration data came from. */
export interface CalibrationSource {
  /** Human-readable: folder or list file, and how images were turned into tensors. */
  description: string;
  /** Number of images (or faces) actually fed. */
  images: number;
  /**
   * Faces actually fed, where it differs from `images` by design (a recognizer calibrates on the faces
   * found in its photos; photos without one are left out). A recognizer with a fixed batch is fed
   * repeats of its faces to fill the last batch: they are not counted (before 2026-12-07 they were).
   * Absent in files that did not record it.
   */
  faces?: number;
  /** `hashImageList` of the ordered list of images fed. */
  listSha256: string;
}

export interface CalibrationStats {
  schemaVersion: number;
  /** faceopt version that wrote it (informative; not part of `statsHash`). */
  tool: string;
  /** sha256 of the float model file the activations came from. */
  modelSha256: string;
  method: CalibrationMethod;
  settings: CollectorSettings;
  source: CalibrationSource;
  tensors: Record<string, TensorStats>;
}

/** What a caller expects of a loaded artifact; mismatches are refused with a reason. */
export interface StatsExpectation {
  modelSha256?: string;
  method?: CalibrationMethod;
  /**
   * The calibration source of the current run (image count and `hashImageList` of the images): a file
   * made from other photos is refused (its ranges are not from the photos the report names; and the
   * prepared graph depends on them: cross-layer equalization reads their channel ranges).
   */
  source?: { images: number; listSha256: string };
  /**
   * Every tensor the graph calibrates (`activationTensors` of the prepared graph): a file made for this
   * graph that lacks some (edited or cut short) is refused here, not at quantization.
   */
  tensors?: readonly string[];
}

/**
 * Hash of an ordered image list: sha256 of the paths joined by '\n' (plus a final '\n'). Paths only,
 * not file contents: cheap, and enough to tell two calibration subsets apart; use paths relative to
 * the faces folder so the hash does not depend on where the folder is mounted.
 */
export function hashImageList(paths: readonly string[]): string {
  return sha256(paths.map((p) => `${p}\n`).join(''));
}

/** Assemble an artifact from collector results, stamping the schema and tool versions. */
export function createStats(args: {
  modelSha256: string; method: CalibrationMethod; settings: CollectorSettings;
  source: CalibrationSource; tensors: Record<string, TensorStats>;
}): CalibrationStats {
  return { schemaVersion: STATS_SCHEMA_VERSION, tool: TOOL_VERSION, ...args };
}

/** JSON with object keys sorted at every level (arrays keep their order): one text per content. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Stable content hash of an artifact: sha256 of its canonical JSON without the `tool` field, so the
 * same model + images + settings give the same hash across faceopt versions and key orders. Reports
 * and derived files (calibration cache, quantized model metadata) cite it.
 */
export function statsHash(stats: CalibrationStats): string {
  const { tool: _tool, ...content } = stats;
  return sha256(canonicalJson(content));
}

/**
 * The file text: sorted keys at every level with `tensors` last, one tensor per line so diffs and
 * `grep` stay readable. Identical content gives identical bytes.
 */
export function serializeStats(stats: CalibrationStats): string {
  const { tensors, ...head } = stats;
  const names = Object.keys(tensors).sort();
  const body = names.map((n) => `  ${JSON.stringify(n)}:${canonicalJson(tensors[n])}`).join(',\n');
  const headJson = canonicalJson(head);
  return `${headJson.slice(0, -1)},"tensors":{\n${body}\n}}\n`;
}

/** Save atomically (temp file + rename). */
export async function saveStats(file: string, stats: CalibrationStats): Promise<void> {
  await writeFileAtomic(file, serializeStats(stats));
}

/** Load and validate a stats file; see `parseStats`. FACEOPT_ERR_FILE_NOT_FOUND when absent. */
export async function loadStats(file: string, expect: StatsExpectation = {}): Promise<CalibrationStats> {
  requireFile(file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === 'EISDIR' ? 'it is a folder, not a stats file (name the stats.json inside it)'
      : `it cannot be read (${code ?? String((e as Error)?.message ?? e)})`;
    throw new FaceoptError('FACEOPT_ERR_STATS', { path: file, reason }, { cause: e });
  }
  return parseStats(text, file, expect);
}

const isFiniteNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;

/** Why one tensor entry is unusable, or null. */
function tensorProblem(t: unknown, method: CalibrationMethod): string | null {
  if (typeof t !== 'object' || t === null) return 'not an object';
  const s = t as Partial<TensorStats>;
  if (s.method !== method) return `method ${String(s.method)} differs from the file's ${method}`;
  if (!isFiniteNumber(s.min) || !isFiniteNumber(s.max) || s.min > s.max) return 'min/max must be finite with min <= max';
  if (!isCount(s.count) || !isCount(s.nonFinite)) return 'count/nonFinite must be integers >= 0';
  const r = s.range;
  if (!Array.isArray(r) || r.length !== 2 || !isFiniteNumber(r[0]) || !isFiniteNumber(r[1]) || r[0] > r[1]) {
    return 'range must be two finite numbers [lo, hi] with lo <= hi';
  }
  // every method chooses its range inside the observed [min, max] (clipped to it; [min, max] itself for a
  // constant tensor), so a range outside it was edited by hand; a hair of slack for rounding
  const slack = 1e-6 * Math.max(Math.abs(s.min), Math.abs(s.max), 1e-30);
  if (r[0] < s.min - slack || r[1] > s.max + slack) {
    return `range [${r[0]}, ${r[1]}] lies outside the observed [${s.min}, ${s.max}] (the methods choose ranges inside it; calibrate again rather than edit ranges)`;
  }
  if (!(r[1] > r[0]) && s.max > s.min) {
    return `range [${r[0]}, ${r[1]}] has zero width while the tensor spans [${s.min}, ${s.max}] (only a constant tensor gets one)`;
  }
  if (s.histogram !== undefined) {
    const h = checkHistogramData(s.histogram);
    if (h) return `histogram: ${h}`;
  } else if (COLLECTORS[method].needsHistogram) {
    return `${method} needs a histogram`;
  }
  return null;
}

/**
 * Parse and validate artifact text. `where` names the file in errors. Every refusal is
 * FACEOPT_ERR_STATS with a reason: not JSON, another schema version, another model (when
 * `expect.modelSha256` is given), another method (when `expect.method` is given), bad settings, or a
 * tensor entry with inconsistent numbers (named).
 */
export function parseStats(text: string, where: string, expect: StatsExpectation = {}): CalibrationStats {
  const refuse = (reason: string): never => {
    throw new FaceoptError('FACEOPT_ERR_STATS', { path: where, reason });
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return refuse(notJson(text, e));
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return refuse('not a JSON object');
  const s = raw as Partial<CalibrationStats>;
  if (s.schemaVersion !== STATS_SCHEMA_VERSION) {
    return refuse(`schema version ${String(s.schemaVersion)}, this faceopt reads version ${STATS_SCHEMA_VERSION}`);
  }
  if (typeof s.modelSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.modelSha256)) return refuse('modelSha256 is missing or not a sha256');
  if (typeof s.method !== 'string' || !Object.hasOwn(COLLECTORS, s.method)) return refuse(`unknown method ${String(s.method)}`);
  const method = s.method as CalibrationMethod;
  let settings: CollectorSettings;
  try {
    settings = resolveSettings((s.settings ?? {}) as Partial<CollectorSettings>);
  } catch (e) {
    return refuse(isFaceoptError(e) ? `bad settings: ${e.message}` : 'bad settings');
  }
  const src = s.source as Partial<CalibrationSource> | undefined;
  if (!src || typeof src.description !== 'string' || !isCount(src.images) || typeof src.listSha256 !== 'string') {
    return refuse('source must have description, images and listSha256');
  }
  if (src.faces !== undefined && !isCount(src.faces)) return refuse('source.faces must be an integer >= 0 when present');
  if (typeof s.tensors !== 'object' || s.tensors === null || Array.isArray(s.tensors)) return refuse('tensors must be an object');
  const names = Object.keys(s.tensors);
  if (names.length === 0) return refuse('it holds no tensors');
  for (const name of names) {
    const problem = tensorProblem((s.tensors as Record<string, unknown>)[name], method);
    if (problem) return refuse(`tensor ${name}: ${problem}`);
  }
  return statsFor({
    schemaVersion: STATS_SCHEMA_VERSION, tool: typeof s.tool === 'string' ? s.tool : 'unknown',
    modelSha256: s.modelSha256, method, settings,
    source: { description: src.description, images: src.images, ...(src.faces !== undefined ? { faces: src.faces } : {}), listSha256: src.listSha256 },
    tensors: s.tensors as Record<string, TensorStats>,
  }, where, expect);
}

/**
 * A parsed artifact checked for one use (`where` names its file in errors): made for the graph whose
 * sha256 is `expect.modelSha256`, and holding histograms when `expect.method` needs them. Returns the
 * stats; FACEOPT_ERR_STATS otherwise. `optimize` parses a --stats file before the long work and checks
 * it here once the graph it prepares is known.
 */
export function statsFor(stats: CalibrationStats, where: string, expect: StatsExpectation): CalibrationStats {
  const refuse = (reason: string): never => {
    throw new FaceoptError('FACEOPT_ERR_STATS', { path: where, reason });
  };
  if (expect.tensors) checkStatsModel(stats, where, expect.tensors);
  const was = stats.source;
  const now = expect.source;
  if (now && (now.listSha256 !== was.listSha256 || now.images !== was.images)) {
    // refused even when the prepared graph is the same (no equalization): its ranges would come from
    // photos the report does not name, and which the held-apart evaluation may then contain
    const graph = expect.modelSha256 !== undefined && stats.modelSha256 !== expect.modelSha256
      ? `, and the prepared graph depends on them (equalization reads their ranges: prepared graph sha256 ${stats.modelSha256.slice(0, 12)}…, now ${expect.modelSha256.slice(0, 12)}…)`
      : ': its ranges would come from photos this run\'s report does not name, and its held-apart evaluation could contain them';
    return refuse(`the calibration photos differ: it was made from ${was.images} images (list sha256 ${was.listSha256.slice(0, 12)}…), this run calibrates on ${now.images} (list sha256 ${now.listSha256.slice(0, 12)}…)${graph}. Pass the --faces/--calibration-list/--calibration-size it was made with`);
  }
  if (expect.modelSha256 !== undefined && stats.modelSha256 !== expect.modelSha256) {
    return refuse(`it was made for another model, or for this one as another faceopt version or other rewrite options prepared it (prepared graph sha256 ${stats.modelSha256.slice(0, 12)}…, now ${expect.modelSha256.slice(0, 12)}…)`);
  }
  if (expect.tensors) {
    const missing = expect.tensors.filter((t) => !Object.hasOwn(stats.tensors, t));
    if (missing.length) {
      return refuse(`it has no range for ${missing.length} of the graph's ${expect.tensors.length} calibrated tensors (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}): the file was edited or cut short`);
    }
  }
  if (expect.method !== undefined && stats.method !== expect.method && COLLECTORS[expect.method].needsHistogram && !Object.values(stats.tensors).every((t) => 'histogram' in t)) {
    return refuse(`it holds ${stats.method} stats without histograms, and ${expect.method} needs them`);
  }
  return stats;
}

/**
 * FACEOPT_ERR_STATS when most of the stats' tensors are not tensors of this graph: the file was made for
 * another model. Checked first (and by `optimize --int8` before it reads any photo): a stats file of
 * another model was refused for its calibration photos, and the advice to pass the same photos led to a
 * second refusal for the model.
 */
export function checkStatsModel(stats: CalibrationStats, where: string, tensors: readonly string[]): void {
  const names = Object.keys(stats.tensors);
  const here = new Set(tensors);
  const absent = names.filter((t) => !here.has(t));
  if (names.length === 0 || absent.length * 2 <= names.length) return;
  throw new FaceoptError('FACEOPT_ERR_STATS', {
    path: where,
    reason: `it was made for another model: ${absent.length} of its ${names.length} tensors are not in this one (${absent.slice(0, 3).join(', ')}${absent.length > 3 ? ', ...' : ''})`,
  });
}

/** Why text is not JSON, without echoing the bytes of a binary file (an image or a model passed by mistake). */
function notJson(text: string, e: unknown): string {
  if (looksBinary(text)) return 'not JSON: a binary file (an image or a model?), not a stats.json';
  return `not JSON (${String((e as Error)?.message ?? e).replace(/\s+/g, ' ').slice(0, 160)})`;
}

/**
 * The same stats with every range chosen again by `method` from the histograms collected (`--method` or
 * `--percentile` asked of a reused file; statsFor has checked the histograms are there).
 */
export function rechooseRanges(stats: CalibrationStats, method: CalibrationMethod, settings: CollectorSettings = stats.settings): CalibrationStats {
  return { ...stats, method, settings, tensors: Object.fromEntries(Object.entries(stats.tensors).map(([k, t]) => [k, rethreshold(t, method, settings)])) };
}
