#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled TypeScript (npm install runs the build via `prepare`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/pipeline/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('faceopt: the compiled CLI is missing (dist/). Run `npm run build` in the faceopt folder.\n');
  process.exit(70);
}
await import(entry.href);
