/**
 * `--exclude` entries checked against the graphs they name. Each entry must be a node name or an op type
 * of the model as given: a typo used to quantize the very layer the user wanted float, without a word.
 * The float rewrites that run before quantization replace some nodes (a PRelu becomes a depthwise conv,
 * a Relu and an Add named `<prelu>_...`; a BatchNormalization is folded into its convolution), so an
 * entry that named such a node is carried over to the nodes that took it in, or reported when nothing
 * did.
 */
import path from 'node:path';
import { FaceoptError } from '../errors.js';
import type { Graph } from '../onnx/graph.js';
import type { PrepareReport } from './index.js';

/** Refuse entries that are neither a node name nor an op type of `g` (the model as given, `model` its path). */
export function checkExclusions(g: Graph, exclude: readonly string[], model: string): void {
  const names = new Set(g.nodes.map((n) => n.name ?? ''));
  const ops = [...new Set(g.nodes.map((n) => n.opType ?? ''))].sort();
  for (const entry of exclude) {
    if (names.has(entry) || ops.includes(entry)) continue;
    const lower = entry.toLowerCase();
    const near = [...names].filter((n) => n && n.toLowerCase().includes(lower)).slice(0, 3);
    const opNear = ops.find((op) => op.toLowerCase() === lower);
    const hint = opNear ? `; op types are case-sensitive: ${opNear}` : near.length ? `; node names containing it: ${near.join(', ')}` : '';
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', {
      expected: `node names or op types of ${path.basename(model)} (its op types: ${ops.join(', ')})`,
      name: '--exclude',
      received: `${entry}, which names no node and no op type of it${hint}`,
    });
  }
}

/** A node the float rewrites replaced by another one: a BatchNormalization folded into its convolution, sibling convolutions merged into one. */
export interface Replacement {
  from: string;
  into: string;
  how: 'folded it into' | 'merged it with its siblings into';
}

/** The replacements prepareFloatGraph reports. */
export function replacementsOf(prep: Pick<PrepareReport, 'batchNorm' | 'siblings'>): Replacement[] {
  return [
    ...prep.batchNorm.map((f): Replacement => ({ from: f.bn, into: f.into, how: 'folded it into' })),
    ...prep.siblings.flatMap((m) => m.merged.map((c): Replacement => ({ from: c, into: m.node, how: 'merged it with its siblings into' }))),
  ];
}

export interface CarriedExclusions {
  /** The entries to quantize with: those the rewritten graph still has, plus the nodes rewrites made in place of the others. */
  exclude: string[];
  /** One line per entry carried over or lost, for the log and the report's warnings. */
  notes: string[];
}

/**
 * Entries of `exclude` (checked against `source`) as they apply to `rewritten`: kept where the rewritten
 * graph still has such a node or op type, else replaced by the node that took it in (`replaced`, e.g.
 * replacementsOf(prepareFloatGraph's report)) or by the nodes the rewrites made for it (new names
 * starting `<entry>_`), else reported as lost. An op type the rewrites removed (`--exclude PRelu` once
 * every PRelu is written as convolutions) is carried node by node the same way.
 */
export function carryExclusions(source: Graph, rewritten: Graph, exclude: readonly string[], replaced: readonly Replacement[] = []): CarriedExclusions {
  const before = new Set(source.nodes.map((n) => n.name ?? ''));
  const names = new Set(rewritten.nodes.map((n) => n.name ?? ''));
  const ops = new Set(rewritten.nodes.map((n) => n.opType ?? ''));
  /** What took the place of the source node `name`: [how, nodes], or null. */
  const successors = (name: string): [string, string[]] | null => {
    const r = replaced.find((x) => x.from === name);
    if (r && names.has(r.into)) return [`${r.how} ${r.into}`, [r.into]];
    const made = name ? [...names].filter((n) => n.startsWith(`${name}_`) && !before.has(n)) : [];
    return made.length > 0 ? ['replaced it', made] : null;
  };
  const out: string[] = [];
  const notes: string[] = [];
  for (const entry of exclude) {
    if (names.has(entry) || ops.has(entry)) {
      out.push(entry);
      continue;
    }
    const ofType = before.has(entry) ? [] : source.nodes.filter((n) => n.opType === entry).map((n) => n.name ?? '');
    if (ofType.length > 0) {
      const carried = ofType.flatMap((n) => successors(n)?.[1] ?? []);
      if (carried.length > 0) {
        out.push(...carried);
        notes.push(`--exclude ${entry}: the float rewrites replaced its ${ofType.length} node(s); kept float the ${carried.length} node(s) made in their place (${carried.slice(0, 3).join(', ')}${carried.length > 3 ? ', ...' : ''})`);
        continue;
      }
    } else {
      const s = successors(entry);
      if (s) {
        out.push(...s[1]);
        notes.push(`--exclude ${entry}: the float rewrites ${s[0]}; kept float as ${s[1].join(', ')}`);
        continue;
      }
    }
    notes.push(`--exclude ${entry}: the float rewrites removed it (an op written another way), so it excludes nothing; exclude the layer that took it in`);
  }
  return { exclude: [...new Set(out)], notes };
}
