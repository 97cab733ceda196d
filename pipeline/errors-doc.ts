/**
 * Renders docs/errors.md from the error table, so the doc and the code cannot drift: a test compares the
 * committed file with this rendering, and `npm run docs:errors` rewrites it.
 */
import { fileURLToPath } from 'node:url';
import { ERRORS } from './errors.js';
import { writeFileAtomic } from './fsutil.js';

/** The Markdown document listing every error code. */
export function renderErrorsDoc(): string {
  const rows = Object.entries(ERRORS).map(([code, spec]) =>
    `| \`${code}\` | ${spec.exit} | ${spec.http} | ${spec.message.replace(/\|/g, '\\|')} |`);
  return [
    '# faceopt error codes',
    '',
    'Every failure a user can meet carries one of these codes. The CLI prints `faceopt: CODE: message` on one',
    'line and exits with the exit code; the server answers with the HTTP status and a JSON body',
    '`{ "error": { "code", "message" } }`. With `FACEOPT_DEBUG=1` the CLI also prints the stack trace (of',
    'the cause, for a coded error); clients of the server never get one. Generated from `pipeline/errors.ts`',
    'by `npm run docs:errors`; a test fails when this file and the table differ.',
    '',
    '| code | exit | HTTP | message |',
    '|---|---:|---:|---|',
    ...rows,
    '',
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeFileAtomic(process.argv[2] ?? 'docs/errors.md', renderErrorsDoc());
}
