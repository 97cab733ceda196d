/**
 * The calibration loop: expose every float activation of a graph as an output, stream input batches
 * through onnxruntime, and feed each batch's values to the collectors. Memory stays bounded by one batch
 * of activations plus the collectors' histograms, whatever the number of images.
 */
import type { OnnxModel } from '../onnx/model.js';
import { DataType, makeNode } from '../onnx/proto.js';
import { inferElemTypes } from '../onnx/types.js';
import { makeValueInfo } from '../onnx/graph.js';
import { createSession, floatTensor, runSession, type Session, type SessionOptions } from '../runtime.js';
import { CalibrationCollector, SAMPLE_ABOVE, type CalibrationMethod, type CollectorSettings, type TensorStats } from './collectors.js';

/** One batch of model input: NCHW float32 values and dims. */
export interface InputBatch {
  data: Float32Array;
  dims: number[];
  /** How many of its items are samples of their own, when fewer: the rest repeat them to fill a fixed batch. */
  items?: number;
}

/** How many samples `batches` hold (the first dim of each): what a run over them processes. */
export function sampleCount(batches: readonly InputBatch[]): number {
  return batches.reduce((n, b) => n + (b.dims[0] ?? 1), 0);
}

/** How many distinct samples `batches` hold: a fixed batch's filling repeats are not counted. */
export function distinctSamples(batches: readonly InputBatch[]): number {
  return batches.reduce((n, b) => n + (b.items ?? b.dims[0] ?? 1), 0);
}

export interface CalibrateOptions {
  method: CalibrationMethod;
  settings?: Partial<CollectorSettings>;
  /** Called after each batch with the number of samples (batch items) done so far. */
  onProgress?: (samplesDone: number) => void;
  /** Threads for onnxruntime. */
  threads?: number;
}

/** Float tensors worth calibrating: graph inputs and node outputs of float type (initializers excluded). */
export function activationTensors(model: OnnxModel): string[] {
  const g = model.graph;
  const types = inferElemTypes(g);
  const names: string[] = [];
  const seen = new Set<string>();
  const add = (t: string) => {
    if (!t || seen.has(t) || g.hasInitializer(t)) return;
    seen.add(t);
    if (types.get(t) === DataType.FLOAT) names.push(t);
  };
  for (const i of g.inputs) add(i.name);
  for (const n of g.nodes) {
    if (n.opType === 'Constant') continue;
    for (const o of n.output ?? []) add(o);
  }
  return names;
}

/** A copy of the model whose outputs include every tensor in `tensors` (typed float). */
export function exposeTensors(model: OnnxModel, tensors: readonly string[]): Uint8Array {
  const probe = model.clone();
  const outs = probe.graph.proto.output!;
  const present = new Set(outs.map((o) => o.name));
  for (const t of tensors) if (!present.has(t)) outs.push(makeValueInfo(t, DataType.FLOAT, null));
  return probe.toBytes();
}

/**
 * `tensors` latest-produced first (graph inputs last). Probe nodes are leaves, and onnxruntime orders a
 * graph by a depth-first walk back from its leaves, last leaf first: probe nodes appended in this order
 * run right after each tensor's producer, which frees the tensor there. Appended in graph order, every
 * activation of the batch stayed alive until the end (mobileface, batch 16: +1.25 GB of memory, and a
 * first run of 4.2 s instead of 0.7 s).
 */
export function latestProducedFirst(model: OnnxModel, tensors: readonly string[]): string[] {
  const at = new Map<string, number>();
  model.graph.nodes.forEach((n, i) => { for (const o of n.output ?? []) at.set(o, i); });
  return [...tensors].sort((a, b) => (at.get(b) ?? -1) - (at.get(a) ?? -1));
}

/** What the sampling probe exposes per tensor. */
interface ProbePlan {
  /** Tensors exposed in full (small ones, or all of them when nothing is sampled). */
  full: string[];
  /** Tensors exposed as exact min/max/size plus (when histograms are kept) a strided sample. */
  sampled: string[];
  outputs: string[];
}

const probeName = (kind: 'min' | 'max' | 'size' | 'sum' | 'sample', t: string) => `faceopt_calibration_${kind}:${t}`;

/**
 * A copy of the model that outputs, for each sampled tensor, its exact ReduceMin/ReduceMax/Size, its
 * ReduceSum (non-finite when the tensor holds NaN or ±Infinity) and (with `sample`) every `stride`-th
 * value of the flattened tensor; small tensors are exposed whole.
 */
export function buildProbe(model: OnnxModel, plan: Omit<ProbePlan, 'outputs'>, stride: number, sample: boolean): { bytes: Uint8Array; outputs: string[] } {
  const probe = model.clone();
  const g = probe.graph;
  const outs = g.proto.output!;
  const present = new Set(outs.map((o) => o.name));
  const outputs: string[] = [];
  const expose = (t: string, type: number) => { outputs.push(t); if (!present.has(t)) outs.push(makeValueInfo(t, type, null)); };
  for (const t of plan.full) expose(t, DataType.FLOAT);
  if (plan.sampled.length) {
    g.setTensor(probeName('sample', 'flat'), DataType.INT64, [1], [-1]);
    g.setTensor(probeName('sample', 'starts'), DataType.INT64, [1], [0]);
    g.setTensor(probeName('sample', 'ends'), DataType.INT64, [1], [Number.MAX_SAFE_INTEGER]);
    g.setTensor(probeName('sample', 'axes'), DataType.INT64, [1], [0]);
    g.setTensor(probeName('sample', 'steps'), DataType.INT64, [1], [stride]);
  }
  for (const t of latestProducedFirst(model, plan.sampled)) {
    g.addNode(makeNode('ReduceMin', [t], [probeName('min', t)], probeName('min', t), { keepdims: 0 }));
    g.addNode(makeNode('ReduceMax', [t], [probeName('max', t)], probeName('max', t), { keepdims: 0 }));
    g.addNode(makeNode('Size', [t], [probeName('size', t)], probeName('size', t)));
    // NaN or ±Infinity anywhere makes the sum non-finite (ReduceMin/ReduceMax pass over NaN)
    g.addNode(makeNode('ReduceSum', [t], [probeName('sum', t)], probeName('sum', t), { keepdims: 0 }));
    if (sample) {
      const flat = `${probeName('sample', t)}/flat`;
      g.addNode(makeNode('Reshape', [t, probeName('sample', 'flat')], [flat], flat));
      g.addNode(makeNode('Slice', [flat, probeName('sample', 'starts'), probeName('sample', 'ends'), probeName('sample', 'axes'), probeName('sample', 'steps')], [probeName('sample', t)], probeName('sample', t)));
    }
  }
  for (const t of plan.sampled) {
    expose(probeName('min', t), DataType.FLOAT);
    expose(probeName('max', t), DataType.FLOAT);
    expose(probeName('size', t), DataType.INT64);
    expose(probeName('sum', t), DataType.FLOAT);
    if (sample) expose(probeName('sample', t), DataType.FLOAT);
  }
  return { bytes: probe.toBytes(), outputs };
}

/**
 * Dims of each tensor for one item of `batch` (a run at batch 1 on a session exposing them). A model
 * exported with a fixed batch (`fixedBatch` > 1: its input's first dim) refuses batch 1: the whole batch
 * is run and each tensor's first dim divided by it (a fixed batch of 4 failed here, exit 70).
 */
export async function itemDims(session: Session, tensors: readonly string[], inputName: string, batch: InputBatch, fixedBatch?: number | null): Promise<Map<string, number[]>> {
  const n = batch.dims[0] ?? 1;
  const whole = fixedBatch !== undefined && fixedBatch !== null && fixedBatch > 1;
  const feed = whole ? floatTensor(batch.data, batch.dims) : floatTensor(batch.data.subarray(0, batch.data.length / n), [1, ...batch.dims.slice(1)]);
  const out = await runSession(session, { [inputName]: feed }, [...tensors], 'calibration');
  const perItem = (d: number[]) => (whole && d.length && d[0] === n ? [1, ...d.slice(1)] : d);
  const dims = new Map(tensors.map((t) => [t, perItem(out[t]?.dims.map(Number) ?? [0])]));
  for (const v of Object.values(out)) v.dispose?.();
  return dims;
}

/** The input's first dim when the model fixes it to a number, else null. */
export function fixedBatchOf(model: OnnxModel): number | null {
  const d = model.graph.inputs[0]?.shape?.[0];
  return typeof d === 'number' && d > 0 ? d : null;
}

/** Values per batch item of each tensor (itemDims). */
async function sizesPerItem(session: Session, tensors: readonly string[], inputName: string, batch: InputBatch, fixedBatch: number | null): Promise<Map<string, number>> {
  const dims = await itemDims(session, tensors, inputName, batch, fixedBatch);
  return new Map([...dims].map(([t, d]) => [t, d.reduce((a, x) => a * x, 1)]));
}

/**
 * Run the float model over the batches and collect per-tensor statistics with the chosen method.
 * Returns the stats of every float activation (graph inputs included).
 *
 * Copying every activation out of onnxruntime dominates calibration (mobileface: 20 M values and
 * ~160 ms per face, against ~8 ms for inference). So one item of the first batch is run with every
 * tensor exposed to measure sizes; then tensors with more than `SAMPLE_ABOVE` values per item are
 * reduced in the graph for every batch: exact min, max and size, plus every `sampleStride`-th value for
 * the histogram (none for plain minmax). `sampleStride: 1` collects everything in full.
 * Measured on mobileface, 270 faces: 21.8 s with the first batch exposed in full (it was also 17x
 * over-weighted in the histograms), 8 s sampled throughout.
 */
export async function collectActivationStats(
  model: OnnxModel,
  batches: AsyncIterable<InputBatch> | Iterable<InputBatch>,
  opts: CalibrateOptions,
): Promise<Record<string, TensorStats>> {
  const inputName = model.graph.inputs[0]!.name;
  const tensors = activationTensors(model).filter((t) => t !== inputName);
  const collector = new CalibrationCollector(opts.method, opts.settings);
  const stride = collector.settings.sampleStride;
  // onnxruntime's memory pattern made this graph ~6x slower (see SessionOptions.memPattern)
  const sessionOptions: SessionOptions = { optimization: 'basic', intraOpThreads: opts.threads, memPattern: false };
  let session: Session | null = null;
  // a session exposing the sampled tensors whole, made when a batch needs it (updateNonFinite)
  let fallback: Session | null = null;
  let plan: ProbePlan = { full: tensors, sampled: [], outputs: tensors };
  let done = 0;
  try {
    for await (const batch of batches) {
      if (!session) {
        // every tensor exposed; kept when nothing is big enough to sample, else replaced by the probe
        session = await createSession(exposeTensors(model, tensors), sessionOptions);
        const sizes = stride > 1 ? await sizesPerItem(session, tensors, inputName, batch, fixedBatchOf(model)) : null;
        const big = sizes ? tensors.filter((t) => sizes.get(t)! > SAMPLE_ABOVE) : [];
        if (big.length) {
          const bigSet = new Set(big);
          const full = tensors.filter((t) => !bigSet.has(t));
          const probe = buildProbe(model, { full, sampled: big }, stride, collector.needsHistogram);
          await session.release();
          session = await createSession(probe.bytes, sessionOptions);
          plan = { full, sampled: big, outputs: probe.outputs };
        }
      }
      collector.update(inputName, batch.data);
      const n = batch.dims[0] ?? 1;
      const out = await runSession(session, { [inputName]: floatTensor(batch.data, batch.dims) }, plan.outputs, 'calibration');
      for (const t of plan.full) {
        const v = out[t];
        if (v) collector.update(t, v.data as Float32Array);
      }
      const nonFinite: string[] = [];
      for (const t of plan.sampled) {
        const min = (out[probeName('min', t)]!.data as Float32Array)[0]!;
        const max = (out[probeName('max', t)]!.data as Float32Array)[0]!;
        const sum = (out[probeName('sum', t)]!.data as Float32Array)[0]!;
        // NaN or ±Infinity in the batch (or a sum past float32): the in-graph min, max and size are not
        // those of its finite values
        if (!Number.isFinite(min) || !Number.isFinite(max) || !Number.isFinite(sum)) { nonFinite.push(t); continue; }
        const size = Number((out[probeName('size', t)]!.data as BigInt64Array)[0]!);
        const sample = out[probeName('sample', t)]?.data as Float32Array | undefined;
        collector.updateSample(t, sample ?? EMPTY, min, max, size);
      }
      for (const v of Object.values(out)) v.dispose?.();
      if (nonFinite.length) {
        // rare: run the batch again with those tensors exposed whole, and take what the probe would
        // have given over their finite values (exact min, max and count, the same strided sample)
        fallback ??= await createSession(exposeTensors(model, plan.sampled), sessionOptions);
        const whole = await runSession(fallback, { [inputName]: floatTensor(batch.data, batch.dims) }, nonFinite, 'calibration');
        for (const t of nonFinite) updateNonFinite(collector, t, whole[t]!.data as Float32Array, stride, collector.needsHistogram);
        for (const v of Object.values(whole)) v.dispose?.();
      }
      done += n;
      opts.onProgress?.(done);
    }
  } finally {
    await session?.release();
    await fallback?.release();
  }
  return collector.results();
}

const EMPTY = new Float32Array(0);

/**
 * A sampled tensor's batch that holds NaN or ±Infinity, from its values in full: its non-finite values
 * counted as such, then exact min, max and count of its finite values with every `stride`-th value as
 * the sample. From the probe alone such a batch lost its finite min and max (ReduceMin/ReduceMax return
 * the infinite value, and pass over NaN), its count and its non-finite count.
 */
function updateNonFinite(collector: CalibrationCollector, t: string, data: Float32Array, stride: number, sample: boolean): void {
  let min = Infinity;
  let max = -Infinity;
  const bad: number[] = [];
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) { bad.push(v); continue; }
    if (v < min) min = v;
    if (v > max) max = v;
  }
  collector.update(t, Float32Array.from(bad)); // counts them, and nothing else
  if (bad.length === data.length) return;
  const strided = sample ? new Float32Array(Math.ceil(data.length / stride)) : EMPTY;
  for (let i = 0; i < strided.length; i++) strided[i] = data[i * stride]!;
  collector.updateSample(t, strided, min, max, data.length - bad.length);
}
