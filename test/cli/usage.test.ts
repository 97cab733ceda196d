/**
 * Usage errors (an unknown command or option, a missing argument or required option, a value outside an
 * option's choices) are coded like every other error: one line, FACEOPT_ERR_USAGE naming the command whose
 * --help to read, exit 64. commander printed its own uncoded `error: ...` line before.
 */
import { describe, expect, it } from 'vitest';
import { faceopt } from '../helpers/cli.js';

describe('usage errors', () => {
  it.each([
    [['foo'], "Unknown command 'foo'", 'faceopt'],
    [['optimize', '--int8', '--model', 'x.onnx', '--bogus-flag'], "Unknown option '--bogus-flag'", 'faceopt optimize'],
    [['inspect'], "Missing required argument 'model'", 'faceopt inspect'],
    [['optimize', '--int8'], "Required option '--model <model>' not specified", 'faceopt optimize'],
    [['report', '.', '--format', 'xml'], "Option '--format <format>' argument 'xml' is invalid. Allowed choices are md, html, json", 'faceopt report'],
    [['models', 'fetch'], "Missing required argument 'pack'", 'faceopt models fetch'],
    // commander's suggestion came on a second line
    [['serve', '--prot', '5'], "Unknown option '--prot' (Did you mean --port?)", 'faceopt serve'],
    [['optimze'], "Unknown command 'optimze' (Did you mean optimize?)", 'faceopt'],
  ])('faceopt %j: one coded line, exit 64', (args, reason, command) => {
    const r = faceopt(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe(`faceopt: FACEOPT_ERR_USAGE: ${reason}. Run \`${command} --help\` for its arguments and options.\n`);
  });

  it('help is still help: --help exits 0 on stdout, a bare `faceopt` shows it on stderr with exit 64', () => {
    const help = faceopt(['optimize', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: faceopt optimize/);
    const bare = faceopt([]);
    expect(bare.code).toBe(64);
    expect(bare.stderr).toMatch(/^Usage: faceopt/);
  });
});
