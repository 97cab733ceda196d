/**
 * Test helper: run one faceopt command in this process — its module's `register` on a fresh program,
 * then `runCli` as main.ts does — capturing the exit code, stdout and stderr. Much faster than spawning
 * the built CLI, for checks that end before any model loads. `env` entries are set for the run only
 * (undefined: unset), and process.exitCode is put back afterwards.
 */
import { Command } from 'commander';
import { vi } from 'vitest';
import type { RegisterCommand } from '../../pipeline/cli/commands.js';
import { runCli } from '../../pipeline/cli/run.js';

export interface InProcessResult { code: number; out: string; err: string }

export async function runInProcess(register: RegisterCommand, args: string[], env: Record<string, string | undefined> = {}): Promise<InProcessResult> {
  let out = '';
  let err = '';
  const program = new Command('faceopt').configureOutput({ writeErr: (s) => { err += s; }, writeOut: (s) => { out += s; } });
  register(program);
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const savedExit = process.exitCode;
  const setEnv = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  };
  setEnv(env);
  process.exitCode = undefined;
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  try {
    const code = await runCli(program, ['node', 'faceopt', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
    setEnv(saved);
    process.exitCode = savedExit;
  }
}
