/**
 * `faceopt promote REPORT_DIR...`: choose what `faceopt serve` serves. Each report folder names a
 * detector or recognizer variant; its report must have passed its accuracy gates (or --allow-failed),
 * and the model file must still be the one the report evaluated (sha256). The serving manifest
 * (models/manifest.json) is updated atomically; roles not promoted keep their entries. The promoted
 * reports' warnings (e.g. a variant that is not faster than its reference) are printed with the result. `--detector` /
 * `--recognizer FILE` fill a role from a plain file (recorded as unverified).
 */
import type { Command } from 'commander';
import { FaceoptError } from '../errors.js';
import { resolveModelArg } from '../zoo/resolve.js';
import { readGraphSummary } from '../faces/graph-summary.js';
import { detectProfile } from '../faces/profile.js';
import { defaultManifestPath, entryFromFile, entryFromReport, recognizerAlignment, writeManifest, type ManifestEntry, type ServedRole } from '../../server/manifest.js';

interface PromoteFlags { manifest?: string; allowFailed?: boolean; detector?: string; recognizer?: string }

function describe(role: ServedRole, e: ManifestEntry | null): string {
  if (!e) return `  ${role.padEnd(10)}  (none: pass --${role} FILE to serve, or promote a ${role} report)`;
  const verdict = e.verdict === null ? 'unverified (no report)' : e.verdict.pass ? 'gates PASS' : `gates FAIL (${e.verdict.reasons.length} reason(s) in ${e.report})`;
  return `  ${role.padEnd(10)}  ${e.variant.padEnd(13)}  ${e.path}  sha256 ${e.sha256.slice(0, 12)}  ${verdict}`;
}

export function register(program: Command): void {
  program
    .command('promote')
    .description('Choose the variant `faceopt serve` serves: record report-checked models in models/manifest.json')
    .argument('[reports...]', 'report folders (reports/<model>.<variant>) of a detector and/or a recognizer')
    .option('--manifest <file>', 'manifest to update (default: $FACEOPT_MODELS/manifest.json, models/manifest.json where unset)')
    .option('--allow-failed', 'promote a variant whose report failed its accuracy gates')
    .option('--detector <model>', 'serve this detector file (no report: recorded as unverified)')
    .option('--recognizer <model>', 'serve this recognizer file (no report: recorded as unverified)')
    .action(async (reports: string[], f: PromoteFlags) => {
      if (reports.length === 0 && !f.detector && !f.recognizer) {
        throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a report folder (or --detector/--recognizer FILE)', name: 'REPORT_DIR', received: 'nothing' });
      }
      const manifest = f.manifest ?? defaultManifestPath();
      const update: Partial<Record<ServedRole, ManifestEntry>> = {};
      const warnings: string[] = [];
      for (const dir of reports) {
        const { role, entry, warnings: said } = await entryFromReport(manifest, dir, f.allowFailed === true);
        warnings.push(...said.map((w) => `  warning (${role} report): ${w}`));
        if (update[role]) {
          throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `one ${role} report`, name: 'REPORT_DIR', received: `two (${update[role]?.report} and ${entry.report})` });
        }
        update[role] = entry;
      }
      for (const role of ['detector', 'recognizer'] as const) {
        const file = f[role];
        if (!file) continue;
        if (update[role]) {
          throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `either a ${role} report or --${role}`, name: `--${role}`, received: 'both' });
        }
        const model = resolveModelArg(file, { flag: `--${role}` });
        // a file that is not ONNX, is cut short or is the other role fails here, not when serve loads it
        detectProfile(await readGraphSummary(model), {}, role, model);
        update[role] = await entryFromFile(manifest, model);
      }
      const written = await writeManifest(manifest, update);
      // the recognizer's numbers (and its match threshold) were measured on faces another detector found
      const alignedBy = await recognizerAlignment(manifest, written.recognizer);
      if (alignedBy && written.detector && written.detector.sha256 !== alignedBy.sha256) {
        warnings.push(`  warning: the recognizer's report measured faces found by ${alignedBy.detector}, not the promoted detector ${written.detector.path}: its cosine, LFW numbers and match threshold hold for that detector's crops`);
      }
      process.stdout.write(`faceopt promote: wrote ${manifest}\n${describe('detector', written.detector)}\n${describe('recognizer', written.recognizer)}\n${warnings.map((w) => `${w}\n`).join('')}`);
    });
}
