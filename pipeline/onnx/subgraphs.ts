/**
 * What a node's subgraphs (If branches, Loop/Scan bodies) read from the scopes around them: the graph
 * helpers count these as reads of the node itself (consumers, toposort, pruneUnused).
 */
import type { NodeProto } from './proto.js';

/**
 * The outer-scope tensors a node's subgraphs read (If branches, Loop/Scan bodies, and subgraphs nested in
 * them at any depth): every subgraph node input not defined in that subgraph or an enclosing one (by a
 * node output, an initializer or a subgraph input).
 */
export function capturedInputs(n: NodeProto, enclosing: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const a of n.attribute ?? []) for (const g of [a.g, ...(a.graphs ?? [])]) {
    if (!g) continue;
    const local = new Set<string>([
      ...enclosing, ...(g.node ?? []).flatMap((x) => x.output ?? []),
      ...(g.initializer ?? []).map((t) => t.name ?? ''), ...(g.input ?? []).map((v) => v.name ?? ''),
    ]);
    for (const sn of g.node ?? []) {
      for (const i of sn.input ?? []) if (i && !local.has(i)) out.push(i);
      out.push(...capturedInputs(sn, local));
    }
  }
  return out;
}
