/**
 * Test helper: run the built CLI (`bin/faceopt.js`) as a subprocess and capture its exit code and output.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export interface CliResult { code: number; stdout: string; stderr: string }

const BIN = path.resolve('bin/faceopt.js');

/** Run `faceopt ...args` synchronously. */
export function faceopt(args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    input: opts.input,
    timeout: opts.timeoutMs ?? 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
