/**
 * Processes by parent or by command line, read from /proc (what `pgrep -P` and `pgrep -f` print),
 * so the suites need no procps on the host (Debian slim images have none).
 */
import { readdirSync, readFileSync } from 'node:fs';

function pids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null; // the process ended meanwhile
  }
}

/** Live children of `parent` (`pgrep -P parent`). */
export function childPids(parent: number): number[] {
  return pids().filter((pid) => {
    const stat = read(`/proc/${pid}/stat`);
    if (!stat) return false;
    // fields after the command name (in parentheses, which may hold spaces): state, ppid, ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] !== 'Z' && Number(fields[1]) === parent;
  });
}

/** Live processes other than this one whose command line contains `text` (`pgrep -f text`). */
export function pidsWithCommandLine(text: string): number[] {
  return pids().filter((pid) => {
    if (pid === process.pid) return false;
    const cmd = read(`/proc/${pid}/cmdline`);
    if (!cmd || !cmd.split('\0').join(' ').includes(text)) return false;
    const stat = read(`/proc/${pid}/stat`);
    return !!stat && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  });
}
