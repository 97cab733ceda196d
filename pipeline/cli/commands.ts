/**
 * The command registry: one line per command module. Keep it sorted; each module exports
 * `register(program: Command): void`.
 */
import type { Command } from 'commander';
import { register as compare } from './compare.js';
import { register as detect } from './detect.js';
import { register as embed } from './embed.js';
import { register as inspect } from './inspect.js';
import { register as models } from './models.js';
import { register as optimize } from './optimize.js';
import { register as optimizeTensorrt } from './optimize-tensorrt.js';
import { register as promote } from './promote.js';
import { register as report } from './report.js';
import { register as serve } from './serve.js';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  compare,
  detect,
  embed,
  inspect,
  models,
  optimize,
  optimizeTensorrt,
  promote,
  report,
  serve,
];
