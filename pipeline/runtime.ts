/**
 * The ONE module that imports onnxruntime-node. Everything else asks this module for sessions and
 * tensors, so execution providers, thread settings and error mapping live in one place.
 */
import ort from 'onnxruntime-node';
import { FaceoptError } from './errors.js';

export type Provider = 'cpu' | 'cuda' | 'tensorrt';

export interface SessionOptions {
  /** Execution provider (default cpu). */
  provider?: Provider;
  /** Threads inside one operator (default: onnxruntime's choice). */
  intraOpThreads?: number;
  /** Graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export type Tensor = ort.Tensor;
export type Feeds = Record<string, ort.Tensor>;
export type Session = ort.InferenceSession;

/** Create an inference session from a model path or bytes. */
export async function createSession(model: string | Uint8Array, opts: SessionOptions = {}): Promise<Session> {
  const provider = opts.provider ?? 'cpu';
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: opts.optimization ?? 'all',
    logSeverityLevel: 3,
  };
  if (opts.intraOpThreads !== undefined) so.intraOpNumThreads = opts.intraOpThreads;
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, so)
      : await ort.InferenceSession.create(model, so);
  } catch (e) {
    throw new FaceoptError('FACEOPT_ERR_INFERENCE', {
      model: typeof model === 'string' ? model : '<buffer>',
      reason: (e as Error).message.split('\n')[0],
    }, { cause: e });
  }
}

/** A float32 tensor of the given shape (copying nothing). */
export function floatTensor(data: Float32Array, dims: readonly number[]): Tensor {
  return new ort.Tensor('float32', data, dims as number[]);
}

/** Run a session, mapping runtime failures to FACEOPT_ERR_INFERENCE. */
export async function runSession(session: Session, feeds: Feeds, outputs?: string[], label = 'model'): Promise<Record<string, Tensor>> {
  try {
    return outputs ? await session.run(feeds, outputs) : await session.run(feeds);
  } catch (e) {
    throw new FaceoptError('FACEOPT_ERR_INFERENCE', { model: label, reason: (e as Error).message.split('\n')[0] }, { cause: e });
  }
}

/** onnxruntime version string. */
export const RUNTIME_VERSION: string = ort.env.versions.common;
