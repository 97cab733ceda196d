/**
 * Builds the CLI once before the suites run, so tests that spawn `bin/faceopt.js` exercise the current
 * sources (tsc is incremental; a no-op build takes a second or two).
 */
import { execFileSync } from 'node:child_process';

/**
 * Settings a developer's shell may carry that change what faceopt does (an API key turns requests into
 * 401s, REDIS_URL or FACEOPT_MODELS change the cache or the served models, NODE_OPTIONS the runtime):
 * the suites run without them, as CI's clean environment does. FACEOPT_SHARED (where the data is),
 * FACEOPT_FIXTURE_CACHE (where built fixtures are kept) and FACEOPT_TEST_INT8_DOT (the int8 multiply
 * instructions the tests assume, test/helpers/int8-exact.ts) stay. Test workers and the processes they
 * start inherit this environment.
 */
export const KEPT_SETTINGS = ['FACEOPT_SHARED', 'FACEOPT_FIXTURE_CACHE', 'FACEOPT_TEST_INT8_DOT'];
export function scrubEnvironment(env: NodeJS.ProcessEnv): string[] {
  const removed = Object.keys(env).filter((k) => (k.startsWith('FACEOPT_') && !KEPT_SETTINGS.includes(k)) || k === 'REDIS_URL' || k === 'NODE_OPTIONS' || k === 'ORT_DISABLE_TELEMETRY');
  for (const k of removed) delete env[k];
  return removed;
}

export default function setup(): void {
  const removed = scrubEnvironment(process.env);
  if (removed.length) console.warn(`[faceopt tests] running without ${removed.join(', ')} from the environment`);
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
