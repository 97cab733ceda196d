/** Test helper for the generic-path tests: ranges of every float tensor of a model, measured in onnxruntime. */
import { makeValueInfo } from '../../pipeline/onnx/graph.js';
import { DataType } from '../../pipeline/onnx/proto.js';
import type { OnnxModel } from '../../pipeline/onnx/model.js';
import { createSession, floatTensor, runSession } from '../../pipeline/runtime.js';
import { seededFloats } from '../onnx/compare.js';

/** Min/max of every node output (and the input) over one seeded input of `dims`. */
export async function measuredRanges(model: OnnxModel, dims: number[]): Promise<Record<string, [number, number]>> {
  const m = model.clone();
  const outs = new Set(m.graph.outputs.map((o) => o.name));
  for (const n of m.graph.nodes) for (const o of n.output ?? []) if (o && !outs.has(o)) { m.graph.proto.output!.push(makeValueInfo(o, DataType.FLOAT, null)); outs.add(o); }
  const s = await createSession(m.toBytes());
  const x = seededFloats(dims.reduce((a, b) => a * b, 1), 7);
  const input = s.inputNames[0]!;
  const r = await runSession(s, { [input]: floatTensor(x, dims) });
  const ranges: Record<string, [number, number]> = { [input]: [-1, 1] };
  for (const [k, t] of Object.entries(r)) {
    if (!(t.data instanceof Float32Array)) continue;
    let lo = 0; let hi = 0;
    for (const v of t.data) { if (v < lo) lo = v; if (v > hi) hi = v; }
    ranges[k] = [lo, hi];
  }
  await s.release();
  return ranges;
}
