/** The tool version recorded in reports and printed by `faceopt --version`. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'faceopt' && pkg.version) return pkg.version;
    } catch { /* try the next location (source vs dist layout) */ }
  }
  return '0.0.0';
}

export const TOOL_VERSION = readVersion();
