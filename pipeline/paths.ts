/**
 * Where faceopt finds things: the models folder (FACEOPT_MODELS, default `models/` in the working
 * directory), the reports folder (FACEOPT_REPORTS, default `reports/`), and the shared data folder used by
 * tests and benchmarks (FACEOPT_SHARED, default `../shared`).
 */
import path from 'node:path';

/** Folder holding downloaded model packs and the manifest. */
export function modelsDir(): string {
  return path.resolve(process.env.FACEOPT_MODELS ?? 'models');
}

/** Folder holding generated reports. */
export function reportsDir(): string {
  return path.resolve(process.env.FACEOPT_REPORTS ?? 'reports');
}

/** The shared data folder (models + face photos) used by tests and benchmarks. */
export function sharedDir(): string {
  return path.resolve(process.env.FACEOPT_SHARED ?? '../shared');
}

/**
 * Whether a path that `path.relative(dir, x)` gave leaves `dir`: '..' itself, a '../' prefix, or another
 * root (Windows drives). A name that merely starts with two dots ('..w.bin', '..x/a.jpg') is inside;
 * `rel.startsWith('..')`, used before, took it for outside.
 */
export function leavesDir(rel: string): boolean {
  return rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
}

/**
 * Where a model variant is written: `out` as given, or `fileName` inside it when `out` ends with a
 * slash (a folder, made when needed); `fileName` in models/ without `out`.
 */
export function modelOutPath(out: string | undefined, fileName: string): string {
  if (out === undefined) return path.join(modelsDir(), fileName);
  return path.resolve(out.endsWith('/') || out.endsWith(path.sep) ? path.join(out, fileName) : out);
}
