/**
 * The bench scripts' command lines (bench/args.ts): values and defaults, --help, and a coded one-line
 * error instead of parseArgs' stack trace for an unknown flag, a flag without its value or a stray
 * argument; checked in-process and on a built script.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { benchUsage, parseBenchArgs } from '../../bench/args.js';
import { FaceoptError } from '../../pipeline/errors.js';

const flags = {
  runs: { value: 'N', help: 'timed runs', default: '30' },
  model: { value: 'FILE', help: 'the model' },
  quick: { help: 'skip the slow row' },
};

function refusal(argv: string[]): FaceoptError {
  try {
    parseBenchArgs('demo', flags, argv);
  } catch (e) {
    return e as FaceoptError;
  }
  throw new Error(`accepted ${argv.join(' ')}`);
}

describe('bench flags', () => {
  it('parses values, applies defaults and reads switches', () => {
    expect(parseBenchArgs('demo', flags, [])).toEqual({ runs: '30' });
    expect(parseBenchArgs('demo', flags, ['--runs', '5', '--model=a.onnx', '--quick'])).toEqual({ runs: '5', model: 'a.onnx', quick: true });
  });

  it('answers help for --help or -h anywhere, even beside a bad flag', () => {
    expect(parseBenchArgs('demo', flags, ['--help'])).toBe('help');
    expect(parseBenchArgs('demo', flags, ['--bogus', '-h'])).toBe('help');
  });

  it('refuses an unknown flag, a missing value and a stray argument with FACEOPT_ERR_BAD_ARGUMENT naming the known flags', () => {
    const unknown = refusal(['--runz', '5']);
    expect(unknown.code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
    expect(unknown.exitCode).toBe(64);
    expect(unknown.message).toContain("Unknown option '--runz'");
    expect(unknown.message).toContain('--runs N, --model FILE, --quick (see --help)');
    expect(refusal(['--model']).message).toContain("Option '--model <value>' argument missing");
    expect(refusal(['extra']).message).toContain("Unexpected argument 'extra'");
    expect(refusal(['--quick=yes']).code).toBe('FACEOPT_ERR_BAD_ARGUMENT');
  });

  it('prints every flag with its value name and default in the usage', () => {
    const u = benchUsage('demo', 'What it measures.', flags);
    expect(u).toContain('npm run bench:demo -- [flags]');
    expect(u).toContain('What it measures.');
    expect(u).toMatch(/--runs N\s+timed runs \(default 30\)/);
    expect(u).toMatch(/--model FILE\s+the model\n/);
    expect(u).toMatch(/--quick\s+skip the slow row\n/);
    expect(u).toMatch(/--help\s+this text/);
  });

  it('a built bench script exits 64 with one coded line for a bad flag or value, and 0 with the usage for --help', () => {
    const run = (args: string[]) => spawnSync(process.execPath, ['dist/bench/transpose.js', ...args], { encoding: 'utf8', timeout: 60_000 });
    const bad = run(['--bogus']);
    expect(bad.status).toBe(64);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^faceopt: FACEOPT_ERR_BAD_ARGUMENT: .*Unknown option '--bogus'/)]);
    const value = run(['--runs', '3']);
    expect(value.status).toBe(64);
    expect(value.stderr.trim()).toBe('faceopt: FACEOPT_ERR_BAD_ARGUMENT: Expected integer between 10 and 10000 for --runs but received 3.');
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--threads A,B\s+intra-op thread counts \(default 1,2\)/);
    const dashed = run(['--runs', '-1']);
    expect(dashed.stderr.trim()).toMatch(/argument is ambiguous\.$/); // one period: the template ends the sentence
  });

  it('a server bench without its models exits 66 with one coded line before doing anything', () => {
    const r = spawnSync(process.execPath, ['dist/bench/hostile.js', '--detector', '/nonexistent/det.onnx'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(66);
    expect(r.stderr.trim().split('\n')).toEqual(['faceopt: FACEOPT_ERR_FILE_NOT_FOUND: File not found: /nonexistent/det.onnx. Check the path (bench:hostile: check the model flags).']);
  });
});
