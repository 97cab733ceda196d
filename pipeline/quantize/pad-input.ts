/**
 * Int8 convolutions over a graph input with few channels (an RGB image: 3) read it padded to a multiple
 * of 4 channels (QuantizeOptions.padInputChannels): a Pad on the 8-bit tensor, between its
 * QuantizeLinear and DequantizeLinear, appends channels holding the zero point (so they dequantize to
 * exactly 0), and each convolution gets zero int8 weights for them. Every output is the same sum plus
 * exact zeros. Run by insertQdq after its Q/DQ pairs are in place, so a stem the search or the float
 * prefix kept float is left alone (float convolutions take 3 channels in their own first-layer path;
 * padded there, mobileface's float stem took 164 + 21 us instead of 149).
 *
 * Why: onnxruntime's int8 convolution over 3 input channels runs far below its others. IResNet-50's stem
 * (3x3, 3 -> 64 at 112x112, batch 5, one thread, profiler, 2026-12-06) took 3.3 ms, 32 G multiply-adds
 * a second against ~200 for its 3x3 convolutions; over 4 channels 1.95 ms plus 0.04 ms for the Pad
 * (8 channels: 2.6 ms, 16: 4.0 ms; an im2col of the stem into a 1x1 convolution with Slices and a
 * Concat: 2.1 ms).
 */
import type { Graph } from '../onnx/graph.js';
import { DataType, attrInt, makeNode, type NodeProto } from '../onnx/proto.js';
import { padAxis } from './rewrites/pad-channels.js';

/** Channels are padded to a multiple of this: the int8 dot product's width. */
export const INPUT_CHANNEL_BLOCK = 4;

export interface PaddedInput {
  /** The graph input. */
  input: string;
  from: number;
  to: number;
  /** The convolutions that read it padded. */
  convs: string[];
}

/** The int8 weight initializer [O, C, kh, kw] behind a Conv's weight DequantizeLinear, when only that DequantizeLinear reads it. */
function int8Weights(g: Graph, conv: NodeProto, c: number): string | null {
  const dq = g.producer(conv.input?.[1] ?? '');
  if (!dq || dq.opType !== 'DequantizeLinear' || g.consumers(dq.output![0]!).length !== 1) return null;
  const w = dq.input?.[0];
  if (!w || !g.hasInitializer(w) || g.consumers(w).length !== 1) return null;
  const t = g.getTensor(w);
  return t.dataType === DataType.INT8 && t.dims.length === 4 && Number(t.dims[1]) === c && attrInt(dq, 'axis', 1) === 0 ? w : null;
}

/** Pad what it can (in place); returns what it padded. */
export function padInputChannels(g: Graph, block = INPUT_CHANNEL_BLOCK): PaddedInput[] {
  const done: PaddedInput[] = [];
  for (const input of g.inputs) {
    const c = input.shape?.[1];
    if (input.shape?.length !== 4 || typeof c !== 'number' || c <= 0 || c % block === 0) continue;
    for (const q of g.consumers(input.name).filter((n) => n.opType === 'QuantizeLinear' && n.input?.[0] === input.name)) {
      const [, scale, zero] = q.input!;
      const quantized = q.output![0]!;
      if (!zero || g.getTensor(zero).dims.length !== 0 || !scale || g.getTensor(scale).dims.length !== 0) continue;
      for (const dq of g.consumers(quantized).filter((n) => n.opType === 'DequantizeLinear' && n.input?.[0] === quantized)) {
        const dequantized = dq.output![0]!;
        const readers = g.consumers(dequantized);
        // every reader must take the padded tensor: ordinary convolutions with int8 weights of their own
        const weights = readers.map((r) => (r.opType === 'Conv' && r.input?.[0] === dequantized && attrInt(r, 'group', 1) === 1 ? int8Weights(g, r, c) : null));
        if (!readers.length || g.isGraphOutput(dequantized) || weights.some((w) => w === null)) continue;
        const to = Math.ceil(c / block) * block;
        for (const w of weights as string[]) {
          const t = g.getTensor(w);
          const dims = t.dims.map(Number);
          g.setTensor(w, DataType.INT8, dims.map((d, i) => (i === 1 ? to : d)), padAxis(t.data as Int8Array, dims, 1, to));
          g.dropValueInfo(g.consumers(w).flatMap((d) => d.output ?? [])); // the weights' DequantizeLinear output changed shape too
        }
        const pads = g.uniqueName(`${input.name}_channel_pads`);
        const padded = g.uniqueName(`${quantized}_channels_padded`);
        g.setTensor(pads, DataType.INT64, [8], [0, 0, 0, 0, 0, to - c, 0, 0]);
        g.addNode(makeNode('Pad', [quantized, pads, zero], [padded], g.uniqueName(`${input.name}_PadChannels`), { mode: 'constant' }), dq);
        g.replaceInput(dq, quantized, padded);
        g.dropValueInfo([dequantized]);
        done.push({ input: input.name, from: c, to, convs: readers.map((r) => r.name ?? '') });
      }
    }
  }
  g.invalidate();
  return done;
}
