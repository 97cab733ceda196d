/**
 * `faceopt report [DIR]`: show a report. Without options it prints the verdict, every gate sentence and
 * the key numbers of DIR (default: the newest report under reports/). `--format md|html|json` prints that
 * rendering of the report instead (rendered from the validated report.json, the single source);
 * `--compare A B` prints two reports' key numbers side by side.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadStats, statsHash } from '../calibrate/stats.js';
import { FaceoptError } from '../errors.js';
import { findNewestReport, loadReport, reportInconsistency, stringifyReport } from '../report/io.js';
import type { Report } from '../report/types.js';
import { terminalCompare, terminalSummary } from '../report/summary.js';

interface ReportOptions {
  compare?: string[];
  format?: 'md' | 'html' | 'json';
}

/** Run the command: returns the text to print (exported for tests). */
export async function reportCommand(dir: string | undefined, opts: ReportOptions): Promise<string> {
  if (opts.compare) {
    if (opts.compare.length !== 2) {
      throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'exactly two report folders', name: '--compare', received: `${opts.compare.length} (${opts.compare.join(' ')})` });
    }
    if (dir !== undefined) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'no DIR argument together with --compare A B', name: 'DIR', received: dir });
    if (opts.format) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'no --format with --compare (a comparison prints as a table)', name: '--format', received: opts.format });
    const [a, b] = opts.compare as [string, string];
    const [ra, rb] = await Promise.all([loadReport(a), loadReport(b)]);
    return terminalCompare({ report: ra, dir: a }, { report: rb, dir: b });
  }
  const folder = dir ?? (await findNewestReport());
  const report = await loadReport(folder);
  switch (opts.format) {
    case 'json': return stringifyReport(report);
    case 'md': return (await import('../report/markdown.js')).renderMarkdown(report);
    case 'html': return (await import('../report/html.js')).renderHtml(report);
    default: {
      const note = await statsNote(report, folder);
      // a hand-edited report printed "FAIL: 0 of 3 accuracy gates failed" as if nothing were wrong
      const inconsistent = reportInconsistency(report);
      const warning = inconsistent ? `warning: this report contradicts itself (${inconsistent}): its verdict cannot be trusted, and promote refuses it; evaluate the variant again (\`faceopt evaluate\`)\n` : '';
      return warning + terminalSummary(report, folder) + (note ? `  note: ${note}\n` : '');
    }
  }
}

/**
 * Whether the stats file a report names (its --stats, else the stats.json a run saves beside its report)
 * still holds the calibration the report records: a later run into the same folder saves its stats
 * first, and one stopped before its own report leaves them beside the earlier report.
 */
export async function statsNote(report: Report, folder: string): Promise<string | null> {
  const c = report.provenance.calibration;
  if (!c) return null;
  const file = c.statsPath ?? path.join(folder, 'stats.json');
  if (!existsSync(file)) return null;
  let sha: string;
  try {
    sha = statsHash(await loadStats(file));
  } catch {
    return `${file} is not a readable stats file now; this report used calibration stats ${c.statsSha256.slice(0, 12)}`;
  }
  if (sha === c.statsSha256) return null;
  return `${file} holds other calibration stats (${sha.slice(0, 12)}) than this report used (${c.statsSha256.slice(0, 12)}): a later run wrote them and stopped before its report`;
}

/** Register `faceopt report` on the program. */
export function register(program: Command): void {
  program
    .command('report')
    .description('Show an accuracy report: verdict and key numbers, a full rendering, or two reports side by side')
    .argument('[dir]', 'report folder (default: the newest under reports/)')
    .option('--compare <dirs...>', 'two report folders, A B, side by side')
    .addOption(new Option('--format <format>', 'print the report as md, html or json').choices(['md', 'html', 'json']))
    // usage errors (a bad --format) reach runCli as a CommanderError (exit 64) instead of process.exit(1)
    .exitOverride()
    .action(async (dir: string | undefined, opts: ReportOptions) => {
      process.stdout.write(await reportCommand(dir, opts));
    });
}
