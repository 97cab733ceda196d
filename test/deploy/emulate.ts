/**
 * Run a Dockerfile's stages outside Docker (no engine on the development machines): each stage gets a
 * folder standing in for its root filesystem; WORKDIR, ENV and COPY (with --from and .dockerignore) are
 * applied to it and RUN lines run with `sh -c` in it, container paths rewritten to the folder. A test
 * may replace a RUN line it cannot run here (e.g. a full `npm ci` it links instead); it must say so.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { copyParts, envPairs, inContext, ROOT, type Stage } from './dockerfile.js';

export interface StageResult {
  /** Host folder standing in for the stage's `/`. */
  root: string;
  /** Final WORKDIR (container path). */
  workdir: string;
  /** ENV of the stage (values as written, container paths). */
  env: Record<string, string>;
  /** Each RUN as written and what ran instead (null when it ran as written). */
  runs: { command: string; replacedBy: string | null }[];
}

export interface EmulateOptions {
  /** Folder of every stage's root (stage name -> host folder). */
  roots: Record<string, string>;
  /** Return a replacement shell command (or a function to call) for a RUN line, or null to run it as written. */
  replace?: (command: string, cwd: string) => string | (() => void) | null;
  /** Extra environment for RUN lines (PATH etc.). */
  env?: Record<string, string>;
}

const CONTAINER_DIRS = ['tmp', 'src', 'app', 'models', 'usr/local/bin'];

/** Rewrite absolute container paths (/app/..., /tmp/...) in a shell line to the stage's host folder. */
export function hostPaths(command: string, root: string): string {
  const re = new RegExp(`(^|[\\s"'=])(/(?:${CONTAINER_DIRS.join('|')})(?=[/\\s"']|$)[^\\s"']*)`, 'g');
  return command.replace(re, (_, lead: string, p: string) => `${lead}${path.join(root, p)}`);
}

function copyInto(src: string, dest: string, filter: (abs: string) => boolean): void {
  if (statSync(src).isDirectory()) {
    cpSync(src, dest, { recursive: true, verbatimSymlinks: true, filter: (s) => filter(s) });
  } else {
    mkdirSync(path.dirname(dest), { recursive: true });
    cpSync(src, dest, { verbatimSymlinks: true });
  }
}

/** Apply one stage; throws with the command's output when a RUN fails. */
export function emulateStage(s: Stage, opts: EmulateOptions): StageResult {
  const name = s.name ?? 'final';
  const root = opts.roots[name];
  if (!root) throw new Error(`no root folder for stage ${name}`);
  mkdirSync(root, { recursive: true });
  const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8');
  const result: StageResult = { root, workdir: '/', env: {}, runs: [] };
  const host = (p: string) => path.join(root, path.posix.resolve(result.workdir, p));
  for (const ins of s.instructions) {
    if (ins.keyword === 'WORKDIR') {
      result.workdir = path.posix.resolve(result.workdir, ins.args);
      mkdirSync(host('.'), { recursive: true });
    } else if (ins.keyword === 'ENV') {
      Object.assign(result.env, envPairs(ins.args));
    } else if (ins.keyword === 'COPY') {
      const { from, sources, dest } = copyParts(ins);
      const intoDir = dest.endsWith('/') || sources.length > 1;
      for (const src of sources) {
        const fromRoot = from ? opts.roots[from] : null;
        if (from && !fromRoot) throw new Error(`COPY --from=${from}: stage not emulated`);
        const abs = fromRoot ? path.join(fromRoot, src) : path.join(ROOT, src);
        if (!existsSync(abs)) throw new Error(`line ${ins.line}: COPY source ${src} does not exist`);
        const target = intoDir && !statSync(abs).isDirectory() ? path.join(host(dest), path.basename(src)) : host(dest);
        const filter = fromRoot ? () => true : (f: string) => inContext(ignore, path.relative(ROOT, f).split(path.sep).join('/'));
        if (!fromRoot && !filter(abs)) throw new Error(`line ${ins.line}: COPY ${src} is outside the build context (.dockerignore)`);
        copyInto(abs, target, filter);
      }
    } else if (ins.keyword === 'RUN') {
      const cwd = host('.');
      const replacement = opts.replace?.(ins.args, cwd) ?? null;
      if (typeof replacement === 'function') {
        replacement();
        result.runs.push({ command: ins.args, replacedBy: '(function)' });
        continue;
      }
      const line = hostPaths(replacement ?? ins.args, root);
      const r = spawnSync('sh', ['-c', line], {
        cwd, encoding: 'utf8', env: { ...process.env, ...opts.env, ...result.env }, timeout: 240_000, maxBuffer: 64 << 20,
      });
      if (r.status !== 0) throw new Error(`RUN failed (line ${ins.line}, exit ${r.status}): ${line}\n${r.stdout}\n${r.stderr}`.slice(0, 4000));
      result.runs.push({ command: ins.args, replacedBy: replacement });
    }
  }
  return result;
}
