/**
 * Per-channel max |x| and mean of chosen NCHW activations over calibration batches: the measurements
 * cross-layer equalization (quantize/rewrites/equalize.ts) balances channels with, and bias correction
 * (quantize/qdq.ts) uses to cancel the mean shift weight rounding causes.
 */
import type { OnnxModel } from '../onnx/model.js';
import { createSession, floatTensor, runSession } from '../runtime.js';
import { latestProducedFirst, type InputBatch } from './run.js';
import { makeValueInfo } from '../onnx/graph.js';
import { DataType, makeNode } from '../onnx/proto.js';

/** Max |x| per channel (axis 1) of each tensor in `tensors`. */
export async function collectChannelAmax(
  model: OnnxModel,
  batches: Iterable<InputBatch> | AsyncIterable<InputBatch>,
  tensors: readonly string[],
  threads?: number,
): Promise<Map<string, Float32Array>> {
  return (await collectChannelStats(model, batches, tensors, threads, { mean: false })).amax;
}

/** Mean per channel (axis 1) of each tensor in `tensors` (bias correction). */
export async function collectChannelMeans(
  model: OnnxModel,
  batches: Iterable<InputBatch> | AsyncIterable<InputBatch>,
  tensors: readonly string[],
  threads?: number,
): Promise<Map<string, Float32Array>> {
  return (await collectChannelStats(model, batches, tensors, threads, { amax: false })).mean;
}

/**
 * Max |x| and mean per channel (axis 1) of each tensor in `tensors`. The reductions run inside the
 * graph (each tensor viewed as [N, C, rest], ReduceMean and ReduceMax(Abs) over N and rest), so only C
 * numbers per tensor leave onnxruntime: copying the activations out and reducing them in JS took
 * 7.5 s for 128 mobileface faces.
 */
export async function collectChannelStats(
  model: OnnxModel,
  batches: Iterable<InputBatch> | AsyncIterable<InputBatch>,
  tensorList: readonly string[],
  threads?: number,
  want: { mean?: boolean; amax?: boolean } = {},
): Promise<{ amax: Map<string, Float32Array>; mean: Map<string, Float32Array> }> {
  // only what is asked for is computed (Abs writes a copy of every tensor)
  const wantMean = want.mean !== false;
  const wantAmax = want.amax !== false;
  const tensors = [...new Set(tensorList)];
  const amax = new Map<string, Float32Array>();
  const sums = new Map<string, Float64Array>();
  const counts = new Map<string, number>();
  if (!tensors.length) return { amax, mean: new Map() };
  const probe = model.clone();
  const g = probe.graph;
  const view = 'faceopt_channels:shape';
  g.setTensor(view, DataType.INT64, [3], [0, 0, -1]);
  const axesAsInput = probe.opset() >= 18;
  const axesName = 'faceopt_channels:axes';
  if (axesAsInput) g.setTensor(axesName, DataType.INT64, [2], [0, 2]);
  const outputs: string[] = [];
  const name = (kind: 'mean' | 'amax', t: string) => `faceopt_channels:${kind}:${t}`;
  for (const t of latestProducedFirst(model, tensors)) { // see latestProducedFirst: frees each tensor early
    const v = `faceopt_channels:view:${t}`;
    const abs = `faceopt_channels:abs:${t}`;
    g.addNode(makeNode('Reshape', [t, view], [v], v));
    // opset 18 moved Reduce* axes from an attribute to an input
    const reduce = (op: string, x: string, y: string) => g.addNode(axesAsInput
      ? makeNode(op, [x, axesName], [y], y, { keepdims: 0 })
      : makeNode(op, [x], [y], y, { axes: [0, 2], keepdims: 0 }));
    if (wantMean) {
      reduce('ReduceMean', v, name('mean', t));
      outputs.push(name('mean', t));
      g.proto.output!.push(makeValueInfo(name('mean', t), DataType.FLOAT, null));
    }
    if (wantAmax) {
      g.addNode(makeNode('Abs', [v], [abs], abs));
      reduce('ReduceMax', abs, name('amax', t));
      outputs.push(name('amax', t));
      g.proto.output!.push(makeValueInfo(name('amax', t), DataType.FLOAT, null));
    }
  }
  const session = await createSession(probe.toBytes(), { optimization: 'basic', intraOpThreads: threads, memPattern: false });
  const input = model.graph.inputs[0]!.name;
  try {
    for await (const b of batches) {
      const res = await runSession(session, { [input]: floatTensor(b.data, b.dims) }, outputs, 'channel ranges');
      for (const t of tensors) {
        const m = res[name('mean', t)]?.data as Float32Array | undefined;
        const a = res[name('amax', t)]?.data as Float32Array | undefined;
        // every channel holds the same number of values, so batch means combine by batch size
        const weight = b.dims[0] ?? 1;
        if (m) {
          const sum = sums.get(t) ?? new Float64Array(m.length);
          for (let c = 0; c < m.length; c++) sum[c] = sum[c]! + m[c]! * weight;
          sums.set(t, sum);
          counts.set(t, (counts.get(t) ?? 0) + weight);
        }
        if (a) {
          const acc = amax.get(t) ?? new Float32Array(a.length);
          for (let c = 0; c < a.length; c++) if (a[c]! > acc[c]!) acc[c] = a[c]!;
          amax.set(t, acc);
        }
      }
      for (const v of Object.values(res)) v.dispose?.();
    }
  } finally {
    await session.release();
  }
  const mean = new Map<string, Float32Array>();
  for (const [t, sum] of sums) mean.set(t, Float32Array.from(sum, (v) => v / counts.get(t)!));
  return { amax, mean };
}
