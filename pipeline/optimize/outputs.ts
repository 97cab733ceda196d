/**
 * The checks `--int8` and `--tensorrt` make on their outputs before any long work (a model file, a bundle
 * folder, a report folder), and the way both hold their output locks until a run ends, however it ends.
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import { leavesDir } from '../paths.js';
import { checkWritableDir, specialFileKind } from '../fsutil.js';
import { externalDataFiles } from '../onnx/model.js';

/** Run `fn` with a list it pushes release functions to (output locks); every one runs when `fn` ends. */
export async function withReleases<T>(fn: (release: (() => void)[]) => Promise<T>): Promise<T> {
  const release: (() => void)[] = [];
  try {
    return await fn(release);
  } finally {
    for (const r of release) r();
  }
}

/**
 * Fail before the long work where the outputs cannot be written: `--out` naming an existing folder
 * without a trailing slash, a folder (the model's, the report's, a new --stats file's) that cannot be
 * made or written to (checkWritableDir: nothing is made yet).
 */
export function checkOutputs(outPath: string, reportDir: string, statsFile?: string, source?: string): void {
  if (existsSync(outPath) && statSync(outPath).isDirectory()) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a model file path (DIR/NAME.int8.onnx), or a folder ending in /', name: '--out', received: `${outPath}, a folder` });
  }
  // a device, pipe or socket (`--out /dev/null`): replacing it by rename would put the model in its place
  const kind = specialFileKind(outPath);
  if (kind) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a model file path (DIR/NAME.int8.onnx), or a folder ending in /', name: '--out', received: `${outPath}, ${kind}` });
  // --out naming the source model (or a link to it, or its external data): saveModel refuses it, but only
  // after calibration and the search (minutes), leaving a new report folder with stats.json behind
  if (source) checkNotSource(outPath, source);
  // the report folder (and the stats.json saved in it) at the model's path, or a --stats file there:
  // one was made where the other was then written, failing after all the work (or the stats replaced)
  const inOut = path.relative(path.resolve(outPath), path.resolve(reportDir));
  if (inOut === '' || !leavesDir(inOut)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a report folder other than the --out model file', name: '--report-dir', received: reportDir });
  }
  if (statsFile && path.resolve(statsFile) === path.resolve(outPath)) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a stats file other than the --out model file', name: '--stats', received: statsFile });
  }
  checkWritableDir(path.dirname(outPath));
  checkWritableDir(reportDir);
  // a --stats file still to be written: its folder too (it failed after calibration)
  if (statsFile && !existsSync(statsFile)) checkWritableDir(path.dirname(path.resolve(statsFile)));
}

/**
 * FACEOPT_ERR_OVERWRITE_SOURCE when the existing file `out` is model `source` itself (by real path, so a
 * link to it too) or one of the files holding its external data, as saveModel refuses at the end.
 */
export function checkNotSource(out: string, source: string): void {
  if (!existsSync(out) || !existsSync(source)) return;
  const real = realpathSync(out);
  if (realpathSync(source) === real) throw new FaceoptError('FACEOPT_ERR_OVERWRITE_SOURCE', { what: 'model ', path: out });
  if (externalDataFiles(source).some((d) => realpathSync(d) === real)) {
    throw new FaceoptError('FACEOPT_ERR_OVERWRITE_SOURCE', { what: 'model\'s external data ', path: out });
  }
}

/**
 * Refuse, before any work, an --out the bundle cannot replace: an existing file (the bundle is swapped in
 * by renames, which put a folder where the file was and deleted the file: `--out` naming the source
 * model deleted it, exit 0), a folder holding the source model (it was deleted with the old bundle), or
 * a non-empty folder that is not an earlier bundle (refused too, but only after calibration).
 */
export function checkBundleOut(outDir: string, source: string): void {
  const st = statSync(outDir, { throwIfNoEntry: false });
  if (!st) return;
  checkNotSource(outDir, source);
  const expected = 'a new or empty folder, or an earlier TensorRT bundle (with plan.json)';
  if (!st.isDirectory()) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: '--out', expected, received: `${outDir}, a file` });
  const inside = path.relative(realpathSync(outDir), realpathSync(source));
  if (!leavesDir(inside)) {
    throw new FaceoptError('FACEOPT_ERR_OVERWRITE_SOURCE', { what: `model ${source} by replacing its folder `, path: outDir });
  }
  const entries = readdirSync(outDir);
  if (entries.length > 0 && !entries.includes('plan.json')) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: '--out', expected, received: outDir });
}
