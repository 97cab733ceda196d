/**
 * Deterministic pseudo-random data for calibration tests (mulberry32 + Box-Muller), so every run
 * sees the same numbers.
 */

import { mulberry32 } from '../../pipeline/evaluate/stats.js';

export { mulberry32 };

/** `n` float32 samples of N(mean, sigma^2). */
export function gaussian(n: number, sigma = 1, seed = 1, mean = 0): Float32Array {
  const u = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const th = 2 * Math.PI * u();
    out[i] = mean + sigma * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = mean + sigma * r * Math.sin(th);
  }
  return out;
}

/** Split `data` into consecutive batches of the given sizes (the last takes the rest). */
export function batches(data: Float32Array, sizes: number[]): Float32Array[] {
  const out: Float32Array[] = [];
  let at = 0;
  for (const s of sizes) {
    if (at >= data.length) break;
    out.push(data.subarray(at, Math.min(at + s, data.length)));
    at += s;
  }
  if (at < data.length) out.push(data.subarray(at));
  return out;
}
