/**
 * The command registry: command name -> loader of its module (one file per command, exporting
 * `register(program: Command): void`). Modules load lazily: `faceopt serve` does not pay for the report
 * renderer's chart library, and `faceopt inspect` does not load Fastify. Keep it sorted.
 */
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;
type Loader = () => Promise<{ register: RegisterCommand }>;

export const COMMAND_LOADERS: Record<string, Loader> = {
  compare: () => import('./compare.js'),
  detect: () => import('./detect.js'),
  embed: () => import('./embed.js'),
  evaluate: () => import('./evaluate.js'),
  inspect: () => import('./inspect.js'),
  models: () => import('./models.js'),
  optimize: () => import('./optimize.js'),
  promote: () => import('./promote.js'),
  report: () => import('./report.js'),
  serve: () => import('./serve.js'),
};

/**
 * Register the command named in argv (only that module is loaded), or every command when argv names
 * none of them (help, version, a typo that commander should suggest a fix for).
 */
export async function registerCommands(program: Command, argv: readonly string[]): Promise<void> {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  const names = first && COMMAND_LOADERS[first] ? [first] : Object.keys(COMMAND_LOADERS);
  for (const name of names) (await COMMAND_LOADERS[name]!()).register(program);
}
