/**
 * Test access to the shared data folder (real models and face photos). Suites that need it use
 * `describeShared`; where the folder is missing they are skipped with a printed reason. CI always has it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe } from 'vitest';
import { sharedDir } from '../../pipeline/paths.js';

export const SHARED = sharedDir();
export const HAS_SHARED = existsSync(path.join(SHARED, 'models')) && existsSync(path.join(SHARED, 'faces'));

/** Path inside the shared folder. */
export function shared(...parts: string[]): string {
  return path.join(SHARED, ...parts);
}

let warned = false;
/** `describe` for suites on shared data; skipped (with a reason printed once) when it is absent. */
export const describeShared: typeof describe = (HAS_SHARED ? describe : (name: string, ...rest: unknown[]) => {
  if (!warned) {
    warned = true;
    console.warn(`[faceopt tests] skipping suites on real models/photos: ${SHARED} not found (set FACEOPT_SHARED)`);
  }
  return (describe.skip as (n: string, ...r: unknown[]) => void)(name, ...rest);
}) as typeof describe;
