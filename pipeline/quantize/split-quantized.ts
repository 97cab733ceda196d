/**
 * Splits moved onto the 8-bit tensor (QuantizeOptions.splitQuantized): a Split that alone reads a
 * per-tensor DequantizeLinear splits the quantized tensor instead, and each part that is read gets its
 * own DequantizeLinear. Exact: DequantizeLinear is elementwise. Run by insertQdq after its Q/DQ pairs
 * are in place.
 */
import type { Graph } from '../onnx/graph.js';
import { makeNode } from '../onnx/proto.js';

/** Move every such Split (in place); returns the Splits moved. */
export function splitQuantized(g: Graph): string[] {
  const moved: string[] = [];
  for (const split of g.nodes.filter((n) => n.opType === 'Split')) {
    const dq = g.producer(split.input?.[0] ?? '');
    if (!dq || dq.opType !== 'DequantizeLinear' || g.consumers(dq.output![0]!).length !== 1 || g.isGraphOutput(dq.output![0]!)) continue;
    const [q, scale, zero] = dq.input!;
    if (!q || !scale || !g.hasInitializer(scale) || g.getTensor(scale).dims.length !== 0) continue;
    if (zero && (!g.hasInitializer(zero) || g.getTensor(zero).dims.length !== 0)) continue;
    const parts = [...split.output!];
    split.input![0] = q;
    split.output = parts.map((p) => g.uniqueName(`${p}_quantized_part`));
    g.removeNodes([dq]);
    parts.forEach((p, i) => {
      if (p && g.isRead(p)) {
        g.addNode(makeNode('DequantizeLinear', [split.output![i]!, scale, ...(zero ? [zero] : [])], [p], g.uniqueName(`${p}_part_DequantizeLinear`)));
      }
    });
    g.invalidate();
    moved.push(split.name ?? split.output![0]!);
  }
  return moved;
}
