/**
 * The bench scripts' command lines: node's parseArgs plus what a user of a CLI expects. `--help` prints
 * the usage (each flag with its value name, default and one line) and exits 0; an unknown flag, a flag
 * without its value or a stray argument is FACEOPT_ERR_BAD_ARGUMENT naming the known flags (one line on
 * stderr, exit 64) instead of parseArgs' stack trace; and from then on any failure of the script (a bad
 * flag value, a missing file) ends it with the same one line and exit code as the faceopt CLI.
 */
import { parseArgs } from 'node:util';
import { reportError } from '../pipeline/cli/run.js';
import { FaceoptError } from '../pipeline/errors.js';

/** One flag: a value flag names its value (`N`, `FILE`); a switch has no value. */
export type Flag = { value: string; help: string; default?: string } | { value?: undefined; help: string };
export type Flags = Record<string, Flag>;

/** Parsed values: strings for value flags (their default when given), true or undefined for switches. */
export type FlagValues<F extends Flags> = { [K in keyof F]: F[K] extends { value: string } ? (F[K] extends { default: string } ? string : string | undefined) : boolean | undefined };

/** `node dist/bench/NAME.js [flags]`, the summary, then one line per flag. */
export function benchUsage(bench: string, summary: string, flags: Flags): string {
  const lines = Object.entries(flags).map(([name, f]) => {
    const left = f.value !== undefined ? `--${name} ${f.value}` : `--${name}`;
    const def = f.value !== undefined && f.default !== undefined ? ` (default ${f.default})` : '';
    return `  ${left.padEnd(24)} ${f.help}${def}`;
  });
  return `usage: npm run bench:${bench} -- [flags]   (or: node dist/bench/${bench}.js [flags])\n\n${summary}\n\nflags:\n${lines.join('\n')}\n  ${'--help'.padEnd(24)} this text\n`;
}

/** Parse `argv`: the values, or 'help' when --help or -h is among them. FACEOPT_ERR_BAD_ARGUMENT for anything else parseArgs refuses. */
export function parseBenchArgs<F extends Flags>(bench: string, flags: F, argv: string[]): FlagValues<F> | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const options = Object.fromEntries(Object.entries(flags).map(([name, f]) => [name, f.value !== undefined
    ? { type: 'string' as const, ...(f.default !== undefined ? { default: f.default } : {}) }
    : { type: 'boolean' as const }]));
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as FlagValues<F>;
  } catch (e) {
    const known = Object.entries(flags).map(([n, f]) => (f.value !== undefined ? `--${n} ${f.value}` : `--${n}`)).join(', ');
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/\s*To specify an option argument.*$/, '').replace(/\.+$/, ''); // the message template ends the sentence
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `flags among ${known} (see --help)`, name: `bench:${bench}`, received: `${argv.join(' ')}: ${why}` });
  }
}

/**
 * parseBenchArgs for a script's own command line: prints the usage and exits 0 on --help. Also makes every
 * later uncaught failure of the script end as the CLI's do: one `faceopt: CODE: message` line on stderr
 * (the stack only with FACEOPT_DEBUG=1) and the error's exit code.
 */
export function benchArgs<F extends Flags>(bench: string, summary: string, flags: F): FlagValues<F> {
  const fail = (e: unknown): never => process.exit(reportError(e));
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  const v = parseBenchArgs(bench, flags, process.argv.slice(2));
  if (v === 'help') {
    process.stdout.write(benchUsage(bench, summary, flags));
    process.exit(0);
  }
  return v;
}
