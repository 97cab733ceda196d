/**
 * Test helpers for the deployment files: a small Dockerfile reader (stages, instructions, flags, exec-form
 * JSON arrays, ENV pairs) and a .dockerignore matcher with Docker's rules (a pattern excludes a path when
 * it matches the path or one of its parent folders; `!` re-includes; the last matching pattern wins).
 * The tests read the image's start and health-check commands from the Dockerfile text through these, so
 * a change to the Dockerfile changes what the tests run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  keyword: string;
  /** Everything after the keyword and its `--flag=value` options, continuation lines joined. */
  args: string;
  /** `--name=value` options (COPY --from, HEALTHCHECK --interval, ...). */
  flags: Record<string, string>;
  /** 1-based line of the keyword. */
  line: number;
}

export interface Stage {
  /** `AS name`, or null. */
  name: string | null;
  /** The FROM image expression, ARGs not substituted. */
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** Global ARG defaults (before the first FROM). */
  args: Record<string, string>;
  stages: Stage[];
}

/** Split Dockerfile text into instructions: comments dropped, `\` continuations joined (comment lines inside them skipped). */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  let buf = '';
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmed = raw.trim();
    if (buf === '' && (trimmed === '' || trimmed.startsWith('#'))) continue;
    if (buf !== '' && trimmed.startsWith('#')) continue;
    if (buf === '') start = i + 1;
    if (trimmed.endsWith('\\')) {
      buf += `${trimmed.slice(0, -1)} `;
      continue;
    }
    buf += trimmed;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(buf.trim());
    if (m) {
      let rest = m[2];
      const flags: Record<string, string> = {};
      for (;;) {
        const f = /^--([a-z-]+)=(\S+)\s*/.exec(rest);
        if (!f) break;
        flags[f[1]] = f[2];
        rest = rest.slice(f[0].length);
      }
      out.push({ keyword: m[1].toUpperCase(), args: rest.replace(/\s+/g, ' ').trim(), flags, line: start });
    }
    buf = '';
  }
  return out;
}

/** Read a Dockerfile (path relative to the repository root) into global ARGs and stages. */
export function readDockerfile(file: string): Dockerfile {
  const all = instructions(readFileSync(path.join(ROOT, file), 'utf8'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of all) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`${file}:${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ name: m[2] ?? null, from: m[1], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [k, v = ''] = ins.args.split('=');
        args[k] = v;
      }
    } else {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return { args, stages };
}

/** The stage called `name` (or the last stage for 'final'); throws when absent. */
export function stage(df: Dockerfile, name: string): Stage {
  const s = name === 'final' ? df.stages[df.stages.length - 1] : df.stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
}

/** The FROM image of a stage with global ARG defaults substituted. */
export function baseImage(df: Dockerfile, s: Stage): string {
  return s.from.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => df.args[a ?? b ?? ''] ?? '');
}

/** The last instruction with this keyword in a stage, or null. */
export function last(s: Stage, keyword: string): Instruction | null {
  const hits = s.instructions.filter((i) => i.keyword === keyword);
  return hits.length ? hits[hits.length - 1] : null;
}

/** An exec-form argument list (`["a", "b"]`); throws on shell form, which the tests do not accept. */
export function execForm(args: string): string[] {
  if (!args.startsWith('[')) throw new Error(`expected exec form (JSON array), got: ${args}`);
  const v = JSON.parse(args) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`not a JSON string array: ${args}`);
  return v;
}

/** ENV instruction pairs (`K=V K2=V2`, values without spaces or in double quotes). */
export function envPairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) out[m[1]] = m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2];
  return out;
}

/** HEALTHCHECK: its options (interval, timeout, start-period, retries) and exec-form command. */
export function healthcheck(s: Stage): { flags: Record<string, string>; command: string[] } {
  const h = last(s, 'HEALTHCHECK');
  if (!h) throw new Error('no HEALTHCHECK');
  const m = /^CMD\s+([\s\S]+)$/.exec(h.args);
  if (!m) throw new Error(`HEALTHCHECK without CMD: ${h.args}`);
  return { flags: h.flags, command: execForm(m[1]) };
}

/** COPY sources and destination: `COPY [--from=x] a b dest`. */
export function copyParts(ins: Instruction): { from: string | null; sources: string[]; dest: string } {
  const parts = ins.args.split(' ');
  return { from: ins.flags.from ?? null, sources: parts.slice(0, -1), dest: parts[parts.length - 1] };
}

function patternRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Whether a .dockerignore (its text) keeps `file` (a path relative to the context, `/`-separated) in the build context. */
export function inContext(dockerignore: string, file: string): boolean {
  const rules = dockerignore.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const negate = l.startsWith('!');
    const p = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/+$/, '');
    return { negate, re: patternRegex(p) };
  });
  const prefixes = file.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const r of rules) {
    if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
  }
  return !excluded;
}
