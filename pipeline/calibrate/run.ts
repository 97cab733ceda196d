/**
 * The calibration loop: expose every float activation of a graph as an output, stream input batches
 * through onnxruntime, and feed each batch's values to the collectors. Memory stays bounded by one batch
 * of activations plus the collectors' histograms, whatever the number of images.
 */
import type { OnnxModel } from '../onnx/model.js';
import { DataType } from '../onnx/proto.js';
import { inferElemTypes } from '../onnx/types.js';
import { makeValueInfo } from '../onnx/graph.js';
import { createSession, floatTensor, runSession } from '../runtime.js';
import { CalibrationCollector, type CalibrationMethod, type CollectorSettings, type TensorStats } from './collectors.js';

/** One batch of model input: NCHW float32 values and dims. */
export interface InputBatch {
  data: Float32Array;
  dims: number[];
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
 * Run the float model over the batches and collect per-tensor statistics with the chosen method.
 * Returns the stats of every float activation (graph inputs included).
 */
export async function collectActivationStats(
  model: OnnxModel,
  batches: AsyncIterable<InputBatch> | Iterable<InputBatch>,
  opts: CalibrateOptions,
): Promise<Record<string, TensorStats>> {
  const inputName = model.graph.inputs[0]!.name;
  const tensors = activationTensors(model).filter((t) => t !== inputName);
  const session = await createSession(exposeTensors(model, tensors), { optimization: 'basic', intraOpThreads: opts.threads });
  const collector = new CalibrationCollector(opts.method, opts.settings);
  let done = 0;
  try {
    for await (const batch of batches) {
      collector.update(inputName, batch.data);
      const out = await runSession(session, { [inputName]: floatTensor(batch.data, batch.dims) }, tensors, 'calibration');
      for (const t of tensors) {
        const v = out[t];
        if (v) collector.update(t, v.data as Float32Array);
      }
      for (const v of Object.values(out)) v.dispose?.();
      done += batch.dims[0] ?? 1;
      opts.onProgress?.(done);
    }
  } finally {
    await session.release();
  }
  return collector.results();
}
