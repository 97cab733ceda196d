/**
 * Builds the CLI once before the suites run, so tests that spawn `bin/faceopt.js` exercise the current
 * sources (tsc is incremental; a no-op build takes a second or two).
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
