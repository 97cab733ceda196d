/**
 * `faceopt optimize --int8 | --fp32 | --tensorrt`: one command, one orchestrator per precision.
 */
import { Command, Option } from 'commander';
import path from 'node:path';
import { FaceoptError, checkNumber } from '../errors.js';
import { resolveModelArg } from '../zoo/resolve.js';
import { addEvaluationSetOptions, addGateOptions, GATE_FLAGS, gateThresholdsFromOptions, roleFlagsGiven } from '../evaluate/gate-options.js';
import { checkMethod } from '../calibrate/collectors.js';
import { optimizeInt8 } from '../optimize/int8.js';
import { optimizeFp32 } from '../optimize/fp32.js';
import { terminalSummary } from '../report/index.js';
import { REDUCED_WEIGHT_QMAX, type PreluRewrite } from '../quantize/index.js';
import { addTensorrtOptions, runTensorrtFromCli, tensorrtCommandOptions } from './optimize-tensorrt.js';

const PRELU_FORMS: PreluRewrite[] = ['sign-dw', 'residual-dw', 'sign-concat', 'affine-dw', 'affine-relu', 'relu-min', 'keep', 'split-relu', 'max'];

interface OptimizeFlags {
  int8?: boolean; fp32?: boolean; tensorrt?: boolean;
  model: string; out?: string; reportDir?: string;
  faces?: string; calibrationList?: string; calibrationSize?: string;
  method?: string; percentile?: string; stats?: string; detector?: string;
  pairs?: string; boxes?: string[]; faceFree?: string[];
  targetCosine?: string; targetMargin?: string; maxFloatLayers?: string; mixedRanking?: string;
  perTensor?: boolean; reduceRange?: boolean; symmetric?: boolean; exclude?: string; weightOnlyFloat?: string; pruneFloat?: boolean; floatPrefix?: string; floatSuffix?: string;
  prelu?: string; foldBn: boolean; equalize: boolean; mergeConvs?: boolean; padChannels?: boolean; detSize?: string; threads?: string; evaluate: boolean; quiet?: boolean;
  [gate: string]: unknown;
}

type Mode = 'int8' | 'fp32' | 'tensorrt';
const CALIBRATED: readonly Mode[] = ['int8', 'tensorrt'];

/**
 * Options that only some modes read (by attribute name; the rest, such as --model, --out, --threads and
 * --det-size, every mode reads). Given with another mode they used to be ignored without a word:
 * `--int8 --precision fp16` wrote an int8 model, `--fp32 --faces DIR` calibrated nothing.
 */
const MODES_OF: Readonly<Record<string, readonly Mode[]>> = {
  ...Object.fromEntries(tensorrtCommandOptions.map((o) => [new Option(o.flags).attributeName(), ['tensorrt']])),
  ...Object.fromEntries(GATE_FLAGS.map((g) => [g.key, CALIBRATED])),
  percentile: ['int8'], floatPrefix: ['int8'], floatSuffix: ['int8'], perTensor: ['int8'], reduceRange: ['int8'], symmetric: ['int8'], weightOnlyFloat: ['int8'], mixedRanking: ['int8'], pruneFloat: ['int8'],
  prelu: ['int8', 'fp32'], foldBn: ['int8', 'fp32'], equalize: ['int8'], mergeConvs: ['int8', 'fp32'], padChannels: ['int8'],
  faces: CALIBRATED, calibrationList: CALIBRATED, calibrationSize: CALIBRATED, method: CALIBRATED, stats: CALIBRATED, detector: CALIBRATED,
  targetCosine: CALIBRATED, targetMargin: CALIBRATED, maxFloatLayers: CALIBRATED, exclude: CALIBRATED, evaluate: CALIBRATED,
  pairs: CALIBRATED, boxes: CALIBRATED, faceFree: CALIBRATED, reportDir: CALIBRATED,
};

/** Refuse options given on the command line that `mode` does not read, naming them and the modes that do. */
export function checkModeOptions(cmd: Command, mode: Mode): void {
  for (const opt of cmd.options) {
    const key = opt.attributeName();
    const modes = MODES_OF[key];
    if (!modes || modes.includes(mode) || cmd.getOptionValueSource(key) !== 'cli') continue;
    // of a --x / --no-x pair, the one given: a negatable option's value is false when its --no- form was
    if (opt.negate !== (cmd.getOptionValue(key) === false)) continue;
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: `options that --${mode} reads`,
      name: `optimize --${mode}`,
      received: `${opt.long}, which only ${modes.map((m) => `--${m}`).join(' and ')} read${modes.length === 1 ? 's' : ''}; leave it out or use that mode`,
    });
  }
}

/** --weight-only-float: auto | all | none. */
function weightOnlyChoice(v: string): boolean | 'auto' {
  if (v === 'auto') return 'auto';
  if (v === 'all' || v === 'none') return v === 'all';
  throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'auto | all | none', name: '--weight-only-float', received: v });
}

/** Register `faceopt optimize`. */
export function register(program: Command): void {
  const cmd = program
    .command('optimize')
    .description('Make a model cheaper to run: --int8 (calibrated QDQ), --fp32 (exact rewrites), --tensorrt (build plan)')
    .option('--int8', 'INT8 quantization calibrated on face photos, with an accuracy report')
    .option('--fp32', 'exact float rewrites only (BatchNorm folding, fast PRelu form, sibling convolutions merged)')
    .option('--tensorrt', 'TensorRT build plan (see docs/tensorrt.md)')
    .requiredOption('--model <model>', 'model file or PACK/FILE')
    .option('--out <file>', 'output model path, or a folder ending in / to write the default file name there (default models/<name>.int8.onnx; --fp32: <name>.fp32.onnx; --tensorrt: the bundle folder, default models/<name>.trt)')
    .option('--report-dir <dir>', 'report folder (default: named after the output, reports/<name>.int8 for models/<name>.int8.onnx, reports/<name>.tensorrt-<precision> for models/<name>.trt)')
    .option('--faces <dir>', 'folder of face photos for calibration and evaluation (face models only: a generic model is calibrated on synthetic inputs)')
    .option('--calibration-list <file>', 'calibration photos, one path per line relative to --faces')
    .option('--calibration-size <n>', 'number of calibration photos (default: the whole --calibration-list; without one, min(300, half the photos in --faces), the rest held apart)')
    .option('--method <name>', 'activation range method: minmax | percentile | entropy | mse (default minmax for detectors; recognizers: mse with --int8, percentile 99.999 with --tensorrt; percentile 99.99 otherwise)')
    .option('--no-equalize', 'no cross-layer equalization of channel ranges')
    .option('--percentile <p>', '--int8: percentile kept by --method percentile (default 99.99; --tensorrt keeps 99.999)')
    .option('--stats <file>', 'calibration stats: reused when the file exists (a --method or --percentile other than its own re-chooses its ranges from its histograms, saved beside the report), else written there')
    .option('--target-cosine <x>', 'mixed precision: output cosine to reach on held-apart faces (default 0.995 recognizers, 0.998 detectors, 0.99 others)')
    .option('--target-margin <x>', 'mixed precision: how far above --target-cosine the search on the small held-apart slice aims (default 0.001)')
    .option('--max-float-layers <n>', 'mixed precision: most activations kept in float (default 32 for --int8, 16 for --tensorrt)')
    .option('--mixed-ranking <how>', 'mixed precision ranks candidates alone (default) or leave-one-out')
    .option('--prune-float', 'mixed precision: after the search, return each kept-float layer the target does not need to int8, one trial each (default for detectors; see docs/int8.md)')
    .option('--no-prune-float', 'keep the prefix the search found')
    .option('--float-prefix <auto|n>', 'how far the graph stays float before int8 begins: auto (default) times no prefix and a prefix through each of the first 3 strided convolutions and keeps the fastest; n: through the first n (0: none), untimed (see docs/int8.md)')
    .option('--float-suffix <auto|n>', 'where the graph turns float again at its end: auto (default) takes the accuracy search\'s graph and its variant with everything after the last strided convolution float (searched again), and keeps the fastest that meets the target; n: float after the n-th strided convolution from the end (0: none), untimed (see docs/int8.md)')
    .option('--per-tensor', 'one weight scale per tensor instead of per channel')
    .option('--reduce-range', '7-bit weights (-64..64), for x86 CPUs without VNNI: there onnxruntime\'s uint8 x int8 kernels can saturate (docs/int8.md, "CPUs without VNNI"); costs some accuracy')
    .option('--symmetric', 'int8 symmetric activations (zero point 0), as TensorRT needs')
    .option('--exclude <names>', 'comma-separated node names or op types left in float')
    .option('--weight-only-float <which>', 'layers kept float by mixed precision that store int8 weights: auto (large 1x1 and depthwise convs) | all (smaller file, slower) | none (see docs/int8.md)')
    .option('--prelu <form>', `PRelu rewrite: ${PRELU_FORMS.join(' | ')} (default residual-dw with --int8, sign-dw with --fp32; see docs/int8.md)`)
    .option('--no-fold-bn', 'do not fold BatchNormalization into neighbouring layers')
    .option('--merge-convs', 'merge convolutions that read one tensor with one geometry (detector heads) into one (default; see docs/int8.md)')
    .option('--no-merge-convs', 'do not merge such convolutions')
    .option('--pad-channels', '--int8: pad channel counts around depthwise convolutions, and of convolutions read by a channel Split (merged detector heads), to multiples of 16 with zeros, and an RGB input to 4 channels for int8 convolutions that read it, which onnxruntime\'s int8 kernels run faster (default; exact; see docs/int8.md)')
    .option('--no-pad-channels', 'do not pad channels')
    .option('--det-size <n>', 'detector input size: N (square) for --int8/--fp32, WxH for --tensorrt; also the height and width fed to a model that is not a face model where its input leaves them dynamic')
    .option('--threads <n>', 'onnxruntime intra-op threads')
    .option('--no-evaluate', 'skip the accuracy/speed evaluation and report')
    .option('--quiet', 'no progress bars');
  addEvaluationSetOptions(cmd);
  addGateOptions(cmd);
  addTensorrtOptions(cmd);
  cmd.action(async (o: OptimizeFlags) => {
    const modes = (['int8', 'fp32', 'tensorrt'] as const).filter((m) => o[m]).map((m) => `--${m}`);
    if (modes.length !== 1) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'exactly one of --int8, --fp32, --tensorrt', name: 'mode', received: modes.length ? modes.join(' and ') : 'none' });
    checkModeOptions(cmd, modes[0]!.slice(2) as Mode);
    const model = resolveModelArg(o.model, { flag: '--model' });
    const threads = o.threads ? checkNumber('--threads', o.threads, { min: 1, max: 256, integer: true }) : undefined;
    const detSize = o.detSize && !o.tensorrt ? checkNumber('--det-size', o.detSize, { min: 32, max: 4096, integer: true }) : undefined;
    const prelu = o.prelu as PreluRewrite | undefined;
    if (prelu && !PRELU_FORMS.includes(prelu)) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: PRELU_FORMS.join(' | '), name: '--prelu', received: prelu });
    const rewrites = { ...(prelu ? { prelu } : {}), foldBatchNorm: o.foldBn, equalize: o.equalize, ...(o.mergeConvs === undefined ? {} : { mergeSiblingConvs: o.mergeConvs }), ...(o.padChannels === undefined ? {} : { padChannels: o.padChannels }) };
    if (o.fp32) {
      const r = await optimizeFp32({ model, out: o.out, rewrites, detSize, threads });
      process.stdout.write(`${r.modelPath}\n  speed-up vs original: ${r.speed.speedup.batch1.toFixed(2)}x at batch 1${r.speed.speedup.batch8 ? `, ${r.speed.speedup.batch8.toFixed(2)}x at batch 8` : ''}; max output difference ${r.maxAbsDiff.toExponential(2)}\n`);
      return;
    }
    if (o.tensorrt) {
      await runTensorrtFromCli(model, o as unknown as Record<string, unknown>);
      return;
    }
    if (o.calibrationList && !o.faces) throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: '--faces DIR (paths in --calibration-list are relative to it)', name: '--faces', received: 'nothing' });
    const r = await optimizeInt8({
      model,
      out: o.out,
      reportDir: o.reportDir,
      facesDir: o.faces ? path.resolve(o.faces) : undefined,
      calibrationList: o.calibrationList,
      calibrationSize: o.calibrationSize ? checkNumber('--calibration-size', o.calibrationSize, { min: 1, max: 100000, integer: true }) : undefined,
      method: checkMethod(o.method ?? 'percentile'),
      methodGiven: o.method !== undefined,
      collector: o.percentile ? { percentile: checkNumber('--percentile', o.percentile, { min: 50, max: 100 }) } : undefined,
      statsFile: o.stats,
      detector: o.detector ? resolveModelArg(o.detector, { flag: '--detector' }) : undefined,
      pairsFile: o.pairs,
      boxFiles: o.boxes,
      faceFree: o.faceFree,
      targetCosine: o.targetCosine ? checkNumber('--target-cosine', o.targetCosine, { min: 0, max: 1 }) : undefined,
      targetMargin: o.targetMargin ? checkNumber('--target-margin', o.targetMargin, { min: 0, max: 0.1 }) : undefined,
      maxFloatLayers: checkNumber('--max-float-layers', o.maxFloatLayers ?? '32', { min: 0, max: 1000, integer: true }),
      mixedRanking: o.mixedRanking === undefined ? undefined : o.mixedRanking === 'leave-one-out' ? 'leave-one-out' : o.mixedRanking === 'alone' ? 'alone' : (() => { throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: 'alone | leave-one-out', name: '--mixed-ranking', received: o.mixedRanking }); })(),
      quantize: {
        perChannel: !o.perTensor,
        ...(o.reduceRange ? { weightQmax: REDUCED_WEIGHT_QMAX } : {}),
        activationType: o.symmetric ? 'int8' : 'uint8',
        exclude: o.exclude ? o.exclude.split(',').map((s) => s.trim()).filter(Boolean) : [],
        ...(o.weightOnlyFloat === undefined ? {} : { weightOnlyFloatLayers: weightOnlyChoice(o.weightOnlyFloat) }),
        ...(o.padChannels === false ? { padInputChannels: false } : {}),
      },
      rewrites,
      pruneFloat: o.pruneFloat,
      floatPrefix: o.floatPrefix === undefined || o.floatPrefix === 'auto' ? 'auto' : checkNumber('--float-prefix', o.floatPrefix, { min: 0, max: 100, integer: true }),
      floatSuffix: o.floatSuffix === undefined || o.floatSuffix === 'auto' ? 'auto' : checkNumber('--float-suffix', o.floatSuffix, { min: 0, max: 100, integer: true }),
      gates: gateThresholdsFromOptions(o),
      roleFlags: roleFlagsGiven(o as unknown as Record<string, unknown>),
      detSize,
      threads,
      evaluate: o.evaluate,
      quiet: o.quiet,
      command: `faceopt ${process.argv.slice(2).join(' ')}`,
    });
    if (r.report) {
      process.stdout.write(terminalSummary(r.report, r.reportDir));
      process.stdout.write(`  timings: calibrate ${(r.timings.calibrateMs / 1000).toFixed(1)} s, quantize ${(r.timings.quantizeMs / 1000).toFixed(1)} s, evaluate ${(r.timings.evaluateMs / 1000).toFixed(1)} s\n`);
      if (!r.report.gates.pass) {
        throw new FaceoptError('FACEOPT_ERR_GATE_FAILED', { reasons: r.report.gates.reasons.join(' '), report: path.join(r.reportDir, 'report.md') });
      }
    } else {
      process.stdout.write(`${r.modelPath}\n`);
    }
  });
}
