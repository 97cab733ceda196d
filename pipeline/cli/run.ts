/**
 * One execution point for every command: parse, run, and map any failure to a single stderr line and an
 * exit code. A FaceoptError carries its own exit code; anything else is an internal error (70) whose stack
 * is printed only with FACEOPT_DEBUG=1, so users never see a stack trace for bad input.
 */
import { Command, CommanderError } from 'commander';
import { FaceoptError, ERRORS } from '../errors.js';

export async function runCli(program: Command, argv: string[]): Promise<number> {
  // every (sub)command throws instead of calling process.exit, so usage errors get our exit code; their
  // message is not printed by commander but reported as FACEOPT_ERR_USAGE naming the command (help,
  // shown for a bare `faceopt` or --help, is printed as before)
  let usageOf: string | null = null;
  const override = (c: Command) => {
    c.exitOverride();
    c.configureOutput({ ...c.configureOutput(), outputError: () => { usageOf = commandPath(c); } });
    c.commands.forEach(override);
  };
  override(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError && usageOf !== null && e.exitCode !== 0) {
      return reportError(new FaceoptError('FACEOPT_ERR_USAGE', { reason: capitalize(e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').replace(/\.$/, '')), command: usageOf }));
    }
    return reportError(e);
  }
}

const capitalize = (t: string) => t.charAt(0).toUpperCase() + t.slice(1);

/** `faceopt optimize` for the optimize command: the words a user types to reach `c`. */
function commandPath(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/** Print one line for an error and return the exit code to use. */
export function reportError(e: unknown): number {
  if (e instanceof CommanderError) {
    // commander already printed its message (usage errors, --help, --version)
    return e.exitCode === 0 ? 0 : 64;
  }
  if (e instanceof FaceoptError) {
    process.stderr.write(`faceopt: ${e.code}: ${e.message}\n`);
    if (process.env.FACEOPT_DEBUG === '1' && e.cause) process.stderr.write(`${String((e.cause as Error).stack ?? e.cause)}\n`);
    return e.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`faceopt: FACEOPT_ERR_INTERNAL: ${msg.split('\n')[0]}\n`);
  if (process.env.FACEOPT_DEBUG === '1' && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  else process.stderr.write('(set FACEOPT_DEBUG=1 for the stack trace)\n');
  return ERRORS.FACEOPT_ERR_INTERNAL.exit;
}
