/**
 * `faceopt inspect MODEL [--json]`: what a model is before anyone optimises it — versions, producer,
 * inputs/outputs, op histogram, parameters, MACs at its input size, the face-model role and preprocessing
 * profile faceopt would use, and whether it is already quantized.
 */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { loadModel } from '../onnx/model.js';
import { summarizeModel, type ModelSummary } from '../onnx/summary.js';
import { countMacs, type MacsResult } from '../onnx/macs.js';
import { summarizeModel as graphSummary } from '../faces/graph-summary.js';
import { detectProfile, guessRole, type ModelProfile } from '../faces/profile.js';
import { resolveModelArg } from '../zoo/resolve.js';
import { checkNumber, isFaceoptError } from '../errors.js';
import { floatComputeLayers, precisionOf } from '../evaluate/model-facts.js';
import { byteBreakdown, type ByteBreakdown } from '../onnx/bytes.js';

export interface InspectResult extends ModelSummary {
  file: string;
  role: 'detector' | 'recognizer' | 'unknown';
  /** Plain-words description of the role, e.g. "SCRFD detector with keypoints". */
  roleDescription: string;
  profile: ModelProfile | null;
  profileError?: string;
  macs: (MacsResult & { note?: string }) | { error: string };
  /** Quantized graphs: the weighted layers that still compute in float (floatComputeLayers); null otherwise. */
  floatLayers: { layer: string; op: string }[] | null;
  /** With `--bytes`: where the file's bytes go (onnx/bytes.ts). */
  bytes?: ByteBreakdown;
}

/** Inspect a model file; `detSize` sets H and W for graphs with dynamic spatial dims. */
export async function inspectModel(file: string, opts: { detSize?: number; batch?: number; bytes?: boolean } = {}): Promise<InspectResult> {
  const model = loadModel(file);
  const summary = summarizeModel(model);
  const gs = graphSummary(model.proto);
  const guessed = guessRole(gs);
  let profile: ModelProfile | null = null;
  let profileError: string | undefined;
  if (guessed) {
    try {
      profile = detectProfile(gs, {}, undefined, file);
    } catch (e) {
      if (!isFaceoptError(e)) throw e;
      profileError = e.message;
    }
  }
  const role = profile?.role ?? 'unknown';
  const roleDescription = profile?.role === 'detector'
    ? `SCRFD detector ${profile.outputs.kps ? 'with' : 'without'} keypoints (${profile.strides.length} strides, ${profile.numAnchors} anchor(s))`
    : profile?.role === 'recognizer'
      ? `ArcFace-style recognizer, ${profile.embeddingSize ?? '?'}-d embedding from ${profile.inputSize.join('x')} crops`
      : 'unknown (not a face detector or recognizer faceopt recognises; generic optimisation still applies)';
  const size = opts.detSize ?? 640;
  let macs: InspectResult['macs'];
  try {
    macs = await countMacs(model, { batch: opts.batch ?? 1, spatial: [size, size] });
  } catch (e) {
    macs = { error: (e as Error).message };
  }
  const floatLayers = floatComputeLayers(model, precisionOf(model))?.map(({ layer, op }) => ({ layer, op })) ?? null;
  return { file, ...summary, role, roleDescription, profile, ...(profileError ? { profileError } : {}), macs, floatLayers, ...(opts.bytes ? { bytes: { ...byteBreakdown(model), fileBytes: statSync(file).size } } : {}) };
}

const fmt = (n: number) => n.toLocaleString('en-US');
const giga = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(3)} G` : `${(n / 1e6).toFixed(2)} M`);
const shape = (s: (number | string | null)[] | null) => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '(unknown)');

/** One number when every channel shares it, else the channels' numbers joined by '/'. */
const perChannel = (v: readonly number[]): string => (v.every((x) => x === v[0]) ? String(v[0]) : v.join('/'));

/** Human-readable rendering of an inspection. */
export function renderInspect(r: InspectResult): string {
  const lines: string[] = [];
  lines.push(`${r.file}`);
  lines.push(`  IR ${r.irVersion}, opsets ${Object.entries(r.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}, producer "${r.producer}", graph "${r.graphName}"`);
  lines.push(`  role: ${r.roleDescription}`);
  for (const i of r.inputs) lines.push(`  input  ${i.name}: ${i.type} ${shape(i.shape)}`);
  for (const o of r.outputs) lines.push(`  output ${o.name}: ${o.type} ${shape(o.shape)}`);
  lines.push(`  nodes: ${r.nodes}   ops: ${Object.entries(r.ops).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push(`  parameters: ${fmt(r.parameters)} (${(r.parameterBytes / 1e6).toFixed(2)} MB of initializers)`);
  if ('error' in r.macs) lines.push(`  MACs: unavailable (${r.macs.error})`);
  else lines.push(`  MACs: ${giga(r.macs.total)} at ${Object.entries(r.macs.inputShapes).map(([n, s]) => `${n}=${shape(s)}`).join(', ')} (${Object.entries(r.macs.byOp).map(([k, v]) => `${k} ${giga(v)}`).join(', ')})`);
  lines.push(`  quantized: ${r.quantized.isQuantized ? `yes (${r.quantized.evidence.join(', ')})` : 'no'}`);
  if (r.floatLayers) {
    const names = r.floatLayers.slice(0, 3).map((l) => l.layer).join(', ');
    lines.push(`  float layers: ${r.floatLayers.length} weighted layer(s) compute in float${r.floatLayers.length ? ` (${names}${r.floatLayers.length > 3 ? ', ...' : ''})` : ''}`);
  }
  if (r.profile) {
    const p = r.profile;
    lines.push(`  preprocessing: ${p.channelOrder} ${p.layout}, (x - ${perChannel(p.mean)}) / ${perChannel(p.std)}, input ${p.inputSize ? p.inputSize.join('x') : 'dynamic H/W'}`);
    for (const n of p.notes) lines.push(`    - ${n}`);
  } else if (r.profileError) {
    lines.push(`  preprocessing: none (${r.profileError})`);
  }
  if (r.bytes) lines.push(...renderBytes(r.bytes));
  return lines.join('\n');
}

/** `--bytes`: one line per part, largest first, with its share of the file. */
function renderBytes(b: ByteBreakdown): string[] {
  const share = (n: number) => `${((100 * n) / b.total).toFixed(1).padStart(5)}%`;
  const width = Math.max(...b.parts.map((p) => p.part.length));
  const noun = (p: ByteBreakdown['parts'][number]) => (p.part === 'graph nodes' ? 'node' : p.part.startsWith('recorded') ? 'entry' : 'initializer');
  const plural = (w: string, n: number) => (n === 1 ? w : w.endsWith('y') ? `${w.slice(0, -1)}ies` : `${w}s`);
  const count = (p: ByteBreakdown['parts'][number]) => (p.part.startsWith('header') ? '' : `  (${fmt(p.count)} ${plural(noun(p), p.count)})`);
  return [
    `  bytes: ${fmt(b.total)}`,
    ...b.parts.map((p) => `    ${p.part.padEnd(width)}  ${fmt(p.bytes).padStart(11)}  ${share(p.bytes)}${count(p)}`),
    `    names of tensors and nodes, within the parts above: ${fmt(b.nameBytes)} (${share(b.nameBytes).trim()})`,
    // the parts are measured on the graph as faceopt encodes it, which is what it writes
    ...(b.fileBytes !== undefined && b.fileBytes !== b.total ? [`    (measured as faceopt encodes the graph: the file itself has ${fmt(b.fileBytes)} bytes, encoded by another tool${b.fileBytes < b.total ? ' or with external data' : ''})`] : []),
  ];
}

/** Register `faceopt inspect`. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('Describe an ONNX model: shapes, ops, parameters, MACs, face-model role and preprocessing, quantization')
    .argument('<model>', 'model file or PACK/FILE from the zoo')
    .option('--json', 'print JSON instead of text')
    .option('--det-size <n>', 'height/width used for MACs when the input size is dynamic', '640')
    .option('--batch <n>', 'batch size used for MACs when the batch is dynamic', '1')
    .option('--bytes', "where the file's bytes go: int8 weights, scales, zero points, biases, float weights, graph")
    .action(async (modelArg: string, o: { json?: boolean; detSize: string; batch: string; bytes?: boolean }) => {
      const detSize = checkNumber('--det-size', o.detSize, { min: 32, max: 4096, integer: true });
      const batch = checkNumber('--batch', o.batch, { min: 1, max: 1024, integer: true });
      const file = resolveModelArg(modelArg, { flag: 'MODEL' });
      const r = await inspectModel(file, { detSize, batch, bytes: o.bytes });
      if (o.json) {
        const { macs, ...rest } = r;
        const slim = 'error' in macs ? macs : { inputShapes: macs.inputShapes, total: macs.total, byOp: macs.byOp, layers: macs.layers.length };
        process.stdout.write(`${JSON.stringify({ ...rest, macs: slim }, null, 2)}\n`);
      } else {
        process.stdout.write(`${renderInspect(r)}\n`);
      }
    });
}
