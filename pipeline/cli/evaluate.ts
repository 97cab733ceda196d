/**
 * `faceopt evaluate --model VARIANT --reference FP32 [--faces DIR] [--pairs FILE] [--boxes XML...]`:
 * argv -> options -> `evaluateModels` -> report folder, terminal summary and exit code. The variant may
 * be a model file, PACK/FILE, or a TensorRT bundle folder (`models/<name>.trt`, its deploy graph from
 * ort-tensorrt.json). Evaluation photos are never calibration photos (`--calibration-list`, or the
 * held-apart split optimize makes from `--faces`); gates failing exits with FACEOPT_ERR_GATE_FAILED.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { FaceoptError, checkNumber } from '../errors.js';
import { evaluateModels } from '../evaluate/evaluate-models.js';
import { SPEED_BLOCK, SPEED_RUNS } from '../evaluate/speed.js';
import { addEvaluationSetOptions, addGateOptions, gateThresholdsFromOptions, roleFlagsGiven } from '../evaluate/gate-options.js';
import { stringifyReport, terminalSummary, type Report } from '../report/index.js';
import { PROVIDERS, type Provider } from '../runtime.js';
import { loadTensorrtProviderOptions, requireTensorrtProvider } from '../tensorrt/ort-options.js';
import { engineNote } from '../tensorrt/report.js';
import { resolveModelArg } from '../zoo/resolve.js';

const FORMATS = ['text', 'md', 'html', 'json'] as const;
type Format = (typeof FORMATS)[number];

interface EvaluateFlags {
  model: string; reference: string; name?: string; role?: string;
  faces?: string; pairs?: string; boxes?: string[]; faceFree?: string[]; detector?: string;
  calibrationList?: string; calibrationSize?: string;
  provider?: string; threads?: string; detSize?: string; maxImages?: string; speedRuns?: string;
  reportDir?: string; format?: string;
  [gate: string]: unknown;
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: allowed.join(' | '), name, received: value });
  return value as T;
}

/**
 * The variant argument: a TensorRT bundle folder gives its deploy graph (validated through
 * loadTensorrtProviderOptions, which also checks the provider options) and a `tensorrt-<precision>`
 * label; anything else resolves like every model argument.
 */
async function resolveVariant(arg: string): Promise<{ file: string; label?: string; note?: string; bundleDir?: string }> {
  const asPath = path.resolve(arg);
  if (existsSync(asPath) && statSync(asPath).isDirectory() && existsSync(path.join(asPath, 'ort-tensorrt.json'))) {
    const loaded = await loadTensorrtProviderOptions(asPath);
    return {
      file: loaded.modelPath,
      label: `tensorrt-${loaded.precision}`,
      note: `variant is ${path.basename(loaded.modelPath)} of the TensorRT bundle ${asPath} (ort-tensorrt.json, ${Object.keys(loaded.providerOptions).length} provider options; onnxruntime-node applies only device_id of them)`,
      bundleDir: asPath,
    };
  }
  return { file: resolveModelArg(arg, { flag: '--model' }) };
}

/** Run `faceopt evaluate` from parsed flags; returns the report, its folder and the text to print. */
export async function evaluateCommand(f: EvaluateFlags): Promise<{ report: Report; reportDir: string; text: string }> {
  const provider = oneOf<Provider>('--provider', f.provider, PROVIDERS);
  // the TensorRT EP check comes first: nothing is decoded or loaded on a machine without it
  if (provider === 'tensorrt') requireTensorrtProvider();
  const format: Format = oneOf('--format', f.format, FORMATS) ?? 'text';
  const role = oneOf('--role', f.role, ['detector', 'recognizer'] as const);
  const variant = await resolveVariant(f.model);
  const reference = resolveModelArg(f.reference, { flag: '--reference' });
  const int = (name: string, v: string | undefined, min: number, max: number) => (v === undefined ? undefined : checkNumber(name, v, { min, max, integer: true }));
  if (f.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(f.name)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'a label of letters, digits, . _ -', name: '--name', received: f.name });
  const { report, reportDir } = await evaluateModels({
    model: variant.file,
    reference,
    variantName: f.name ?? variant.label,
    role,
    facesDir: f.faces ? path.resolve(f.faces) : undefined,
    pairsFile: f.pairs ? path.resolve(f.pairs) : undefined,
    roleFlags: roleFlagsGiven(f as unknown as Record<string, unknown>),
    boxFiles: (f.boxes ?? []).map((b) => path.resolve(b)),
    faceFree: (f.faceFree ?? []).map((b) => path.resolve(b)),
    detector: f.detector ? resolveModelArg(f.detector, { flag: '--detector' }) : undefined,
    calibrationList: f.calibrationList ? path.resolve(f.calibrationList) : undefined,
    calibrationSize: int('--calibration-size', f.calibrationSize, 1, 100000),
    provider,
    threads: int('--threads', f.threads, 1, 256),
    detSize: int('--det-size', f.detSize, 32, 4096),
    maxImages: int('--max-images', f.maxImages, 1, 1_000_000),
    speedRuns: int('--speed-runs', f.speedRuns, 1, 10000),
    gates: gateThresholdsFromOptions(f),
    reportDir: f.reportDir,
    // a bundle evaluated without the TensorRT provider says what optimize --tensorrt's report says: no engine ran
    warnings: [...(variant.note ? [variant.note] : []), ...(variant.bundleDir && provider !== 'tensorrt' ? [engineNote(variant.bundleDir, path.basename(variant.file))] : [])],
    command: `faceopt ${process.argv.slice(2).join(' ')}`,
  });
  let text: string;
  switch (format) {
    case 'json': text = stringifyReport(report); break;
    case 'md': text = (await import('../report/markdown.js')).renderMarkdown(report); break;
    case 'html': text = (await import('../report/html.js')).renderHtml(report); break;
    default: text = terminalSummary(report, reportDir);
  }
  return { report, reportDir, text };
}

/** Register `faceopt evaluate`. */
export function register(program: Command): void {
  const cmd = program
    .command('evaluate')
    .description('Measure a variant against its float reference on held-apart faces: accuracy, gates, speed; writes reports/<model>.<variant>/')
    .requiredOption('--model <model>', 'variant: model file, PACK/FILE, or a TensorRT bundle folder (models/<name>.trt)')
    .requiredOption('--reference <model>', 'float reference model (file or PACK/FILE)')
    .option('--name <label>', 'variant label for the report folder (default from the file names, e.g. int8)')
    .option('--role <role>', 'detector | recognizer (default: recognised from the reference graph)')
    .option('--faces <dir>', 'folder of face photos (one sub-folder per person), split from calibration photos by identity')
    .option('--calibration-list <file>', 'the calibration list the variant was made with: its identities are never evaluated')
    .option('--calibration-size <n>', 'calibration size optimize used without a list (to rebuild its held-apart split)')
    .option('--provider <name>', `execution provider: ${PROVIDERS.join(' | ')} (default cpu)`)
    .option('--threads <n>', 'onnxruntime intra-op threads')
    .option('--det-size <n>', 'detector input size for dynamic-input detectors (default 640)')
    .option('--max-images <n>', 'most held-apart photos without --pairs (default 500 recognizers, 200 detectors)')
    .option('--speed-runs <n>', `timed runs per model and batch size, in blocks of ${SPEED_BLOCK.runs} (default ${SPEED_RUNS})`)
    .option('--report-dir <dir>', 'report folder (default reports/<model>.<variant>)')
    .option('--format <format>', `what to print: ${FORMATS.join(' | ')} (default text: verdict and key numbers)`);
  addEvaluationSetOptions(cmd);
  addGateOptions(cmd);
  cmd.action(async (f: EvaluateFlags) => {
    const { report, reportDir, text } = await evaluateCommand(f);
    process.stdout.write(text);
    if (!report.gates.pass) {
      throw new FaceoptError('FACEOPT_ERR_GATE_FAILED', { reasons: report.gates.reasons.join(' '), report: path.join(reportDir, 'report.md') });
    }
  });
}
