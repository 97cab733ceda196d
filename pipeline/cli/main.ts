/**
 * The faceopt command line: argv -> commander -> one command module -> exit code. Each command lives in
 * its own file under pipeline/cli/ and exports `register(program)`; this file only wires them and turns
 * errors into one readable line and the exit code from the error table.
 */
import { Command } from 'commander';
import { runCli } from './run.js';
import { registerCommands } from './commands.js';
import { TOOL_VERSION } from '../version.js';

const program = new Command('faceopt')
  .description('Make InsightFace face models cheap to run (INT8, TensorRT) and prove what it costs in accuracy.')
  .version(TOOL_VERSION)
  .showSuggestionAfterError();

await registerCommands(program, process.argv);

process.exitCode = await runCli(program, process.argv);
