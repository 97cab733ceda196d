/**
 * Number formatting shared by every rendering (Markdown, HTML, terminal), so one value reads the same
 * everywhere and tests can parse it back and compare it with report.json at a known precision. Null (not
 * measured) prints as "n/a".
 */

export const NA = 'n/a';

/** Decimal places per kind of number; tests read these to know how far a rendering rounds. */
export const DIGITS = { cosine: 5, percent: 2, pp: 2, threshold: 4, ms: 2, ratio: 2, iou: 4, keypoint: 4, score: 4, mib: 2, sensitivity: 5 } as const;

/** `x` with `digits` decimals, or n/a. */
export function fixed(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined ? NA : x.toFixed(digits);
}

/** A fraction as a percentage: 0.99533 -> "99.53%". */
export function percent(x: number | null | undefined, digits: number = DIGITS.percent): string {
  return x === null || x === undefined ? NA : `${(x * 100).toFixed(digits)}%`;
}

/** A fraction difference in signed percentage points: -0.0035 -> "-0.35 pp". */
export function pp(x: number | null | undefined, digits: number = DIGITS.pp): string {
  if (x === null || x === undefined) return NA;
  let v = (x * 100).toFixed(digits);
  if (Number(v) === 0) v = (0).toFixed(digits); // never "-0.00"
  else if (!v.startsWith('-')) v = `+${v}`;
  return `${v} pp`;
}

/** Milliseconds: "12.34 ms". */
export function ms(x: number | null | undefined): string {
  return x === null || x === undefined ? NA : `${x.toFixed(DIGITS.ms)} ms`;
}

/** A ratio such as a speed-up: "3.12x". */
export function ratio(x: number | null | undefined): string {
  return x === null || x === undefined ? NA : `${x.toFixed(DIGITS.ratio)}x`;
}

/** The spread of several ratios: "1.52x-2.31x" (one value: "2.27x"; none: n/a). */
export function ratioRange(xs: readonly number[] | null | undefined): string {
  if (!xs || xs.length === 0) return NA;
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return ratio(lo) === ratio(hi) ? ratio(lo) : `${ratio(lo)}-${ratio(hi)}`;
}

/** Bytes in MiB: "23.45 MiB". */
export function mib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? NA : `${(bytes / 1048576).toFixed(DIGITS.mib)} MiB`;
}

/** A FAR target in short scientific form: 0.001 -> "1e-3". */
export function farLabel(far: number): string {
  const [m, e] = far.toExponential().split('e');
  return `${m}e${Number(e)}`;
}

/** First 12 hex digits of a sha256, enough to tell files apart in a table. */
export function shortHash(sha: string): string {
  return sha.slice(0, 12);
}
