/**
 * The float prefix and suffix of `optimize --int8` (quantize/prefix.ts chooses them): timed or as given,
 * logged, described for the report (why each layer there stays float) and for `config`.
 */
import type { InputBatch } from '../calibrate/run.js';
import type { MixedPrecisionResult } from '../quantize/mixed.js';
import { chooseFloatPart, chooseFloatSuffix, PREFIX_TIE, type PrefixCandidate } from '../quantize/prefix.js';
import type { QuantizeOptions } from '../quantize/options.js';
import type { QdqResult, RangeTable } from '../quantize/qdq.js';
import { WEIGHTED_OPS } from '../onnx/graph.js';
import type { OnnxModel } from '../onnx/model.js';
import type { Int8Options } from './int8.js';

/** `--float-suffix auto` (the default): quantize/prefix.ts chooseFloatSuffix, logged. */
export async function floatSuffixAfterSearch(searched: MixedPrecisionResult, candidates: PrefixCandidate[], c: {
  prepared: OnnxModel; ranges: RangeTable; options: Partial<QuantizeOptions>; slice: readonly InputBatch[]; aimed: number; dims: number[]; o: Int8Options; log: (line: string) => void;
}): Promise<{ mixed: MixedPrecisionResult; suffix: PrefixCandidate & { why: string } }> {
  const t0 = performance.now();
  const choice = await chooseFloatSuffix(searched, candidates, {
    floatModel: c.prepared, ranges: c.ranges, options: c.options, slice: c.slice, target: c.aimed, dims: c.dims,
    session: c.o.threads ? { intraOpThreads: c.o.threads } : undefined, maxFloat: c.o.maxFloatLayers, ranking: c.o.mixedRanking, prune: c.o.pruneFloat,
    onSearched: (cand, r) => c.log(`float suffix: float after ${cand.border}: ${r.keptFloat.length} kept float by the search -> output cosine ${r.cosine.toFixed(5)}${r.met ? '' : ' (misses the target)'}`),
  });
  if (!choice) return { mixed: searched, suffix: { ...candidates[0]!, why: '' } };
  const what = describePart('suffix', choice.chosen);
  const table = choice.timings.map((t) => `${t.strided}: ${t.ms.toFixed(2)} ms`).join(', ');
  c.log(`float suffix: ${what}, the fastest of ${choice.timings.length} searched graphs timed, shortest within ${PREFIX_TIE * 100}% (${table}; ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const tails = choice.timings.map((t) => `${t.strided === 0 ? 'no float tail' : `float after ${tailWords(t.strided)}`} ${t.ms.toFixed(2)} ms`).join(', ');
  return { mixed: choice.mixed, suffix: { ...choice.chosen, why: `float suffix ${what}: the fastest of the searched graphs with and without a float tail, timed side by side at batch 1 (${tails})` } };
}

/** A prefix or suffix in words, for the log and the report. */
export function describePart(kind: 'prefix' | 'suffix', c: PrefixCandidate): string {
  if (!c.border) return 'none';
  return kind === 'prefix'
    ? `through ${c.strided} strided conv${c.strided > 1 ? 's' : ''} (int8 from ${c.border}'s output on)`
    : `after ${tailWords(c.strided)} (float from ${c.border}'s output on)`;
}

/** Where a float tail begins, counted in strided convs from the end (1: "the last strided conv"). */
function tailWords(strided: number): string {
  return strided === 1 ? 'the last strided conv' : `strided conv ${strided} from the end`;
}

/** `config.floatPrefix` / `floatSuffix`: how it was set and which was kept ("auto: 3 (through Conv_14)"). */
export function partConfig(given: 'auto' | number | undefined, part: PrefixCandidate, where: string): string {
  const g = given ?? 'auto';
  return `${g}${g === 'auto' ? `: ${part.strided}` : ''}${part.border ? ` (${where} ${part.border})` : ''}`;
}

/**
 * The float prefix (`--float-prefix`) or suffix (`--float-suffix`), quantize/prefix.ts: timed among
 * `candidates` ('auto') or as given, logged.
 */
export async function floatPart(kind: 'prefix' | 'suffix', candidates: PrefixCandidate[], prepared: OnnxModel, ranges: RangeTable, options: Partial<QuantizeOptions>, dims: number[], o: Int8Options, log: (line: string) => void): Promise<PrefixCandidate & { why: string }> {
  const what = (c: PrefixCandidate) => describePart(kind, c);
  const given = (kind === 'prefix' ? o.floatPrefix : o.floatSuffix) ?? 'auto';
  if (given !== 'auto') {
    const c = candidates[Math.min(given, candidates.length - 1)]!;
    if (c.border || kind === 'prefix') log(`float ${kind}: ${what(c)}, as given`);
    return { ...c, why: `float ${kind} ${what(c)}, as given (--float-${kind} ${given})` };
  }
  if (candidates.length < 2) return { ...candidates[0]!, why: '' };
  const t0 = performance.now();
  const choice = await chooseFloatPart({ floatModel: prepared, ranges, options, dims, candidates, session: o.threads ? { intraOpThreads: o.threads } : undefined });
  const table = choice.timings.map((t) => `${t.strided}: ${t.ms.toFixed(2)} ms`).join(', ');
  log(`float ${kind}: ${what(choice.chosen)}, the fastest of ${candidates.length} timed, shortest within ${PREFIX_TIE * 100}% (${table}; ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return { ...choice.chosen, why: `float ${kind} ${what(choice.chosen)}: the fastest of the candidates timed side by side at batch 1, the shortest within ${PREFIX_TIE * 100}% (batch-1 time by strided convs kept float: ${table})` };
}

/** The weighted layers a float prefix or suffix keeps float, for the report's list of float layers. */
export function partLayers(result: QdqResult, part: PrefixCandidate & { why: string }): { layer: string; op: string; reason: string }[] {
  const own = new Set(part.layers);
  return result.floatNodes.filter((f) => own.has(f.name) && WEIGHTED_OPS.has(f.op)).map((f) => ({ layer: f.name, op: f.op, reason: part.why }));
}
