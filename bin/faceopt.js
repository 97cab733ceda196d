#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled TypeScript (npm install runs the build via `prepare`).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/pipeline/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('faceopt: the compiled CLI is missing (dist/). Run `npm run build` in the faceopt folder.\n');
  process.exit(70);
}

// `optimize` creates hundreds of short-lived onnxruntime sessions (the mixed-precision search). With
// glibc's defaults each session's buffers come from fresh mmap'd pages that are faulted in and handed
// back; keeping freed memory in the heap kept the search at 18-20 s on mobileface where it took 20-51 s
// (kernel time 7 s -> 2 s). glibc reads these settings only at start, so the command runs again with
// them. Skipped when the environment already chooses an allocator, or with FACEOPT_MALLOC=default.
const GLIBC_TUNING = { MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '4294967296' };
const command = process.argv.slice(2).find((a) => !a.startsWith('-'));
const chosen = Object.keys(process.env).some((k) => k.startsWith('MALLOC_') || k === 'LD_PRELOAD');
if (command === 'optimize' && process.platform === 'linux' && !chosen && process.env.FACEOPT_MALLOC !== 'default') {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit', env: { ...process.env, ...GLIBC_TUNING, FACEOPT_LAUNCHER_PID: String(process.pid) },
  });
  const forward = (signal) => child.kill(signal);
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, forward);
  child.on('error', (e) => { process.stderr.write(`faceopt: could not start: ${e.message}\n`); process.exit(70); });
  child.on('exit', (code, signal) => {
    if (signal) {
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.off(s, forward);
      process.kill(process.pid, signal);
    } else {
      process.exit(code ?? 70);
    }
  });
} else {
  // run by the launcher above: a launcher killed with SIGKILL forwards nothing, and this process went on
  // writing --out and holding its lock with no one to answer to; it stops as on SIGTERM once orphaned
  const launcher = Number(process.env.FACEOPT_LAUNCHER_PID);
  if (launcher > 0) {
    delete process.env.FACEOPT_LAUNCHER_PID;
    setInterval(() => { if (process.ppid !== launcher) process.kill(process.pid, 'SIGTERM'); }, 1000).unref();
  }
  await import(entry.href);
}
