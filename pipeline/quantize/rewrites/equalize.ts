/**
 * Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019), driven by measured activation
 * ranges. Between Conv1 -> [PRelu | Relu | nothing] -> Conv2, scaling Conv1's output channel i by 1/s_i
 * and Conv2's input channel i by s_i leaves the float function unchanged (PRelu and Relu are positively
 * homogeneous per channel), but changes what a per-tensor activation scale must cover. InsightFace
 * recognizers fold BatchNorm into their convolutions, so neighbouring channels of one activation differ by
 * orders of magnitude and an 8-bit per-tensor scale crushes the small ones; equalizing fixes that.
 *
 * Choice of s_i: when Conv2 is depthwise (one input channel per output channel) its per-channel weight
 * scales absorb s_i completely, so activations are equalized fully (s_i = a_i / mean a). For a dense Conv2
 * the difficulty is split between activation and weight column (s_i = sqrt(a_i / w_i)), as SmoothQuant does.
 */
import type { Graph } from '../../onnx/graph.js';
import { DataType, attrInt, type NodeProto } from '../../onnx/proto.js';

const HOMOGENEOUS = new Set(['PRelu', 'Relu', 'LeakyRelu']);

export interface EqualizePair {
  producer: NodeProto;
  middle: NodeProto | null;
  consumers: NodeProto[];
  /** The tensor the next layer reads (after the activation), whose per-channel ranges drive the scales. */
  tensor: string;
  /** The producer's output (before the activation). */
  preActivation: string;
}

function ownsWeights(g: Graph, conv: NodeProto): boolean {
  const [, w, b] = conv.input ?? [];
  return !!w && g.hasInitializer(w) && g.consumers(w).length === 1 && (!b || (g.hasInitializer(b) && g.consumers(b).length === 1));
}

/** Conv -> [homogeneous activation] -> Conv(s) chains whose middle tensors have no other use. */
export function findEqualizablePairs(g: Graph): EqualizePair[] {
  const pairs: EqualizePair[] = [];
  for (const p of g.nodes) {
    if (p.opType !== 'Conv' || !ownsWeights(g, p)) continue;
    const x = p.output![0]!;
    if (g.isGraphOutput(x)) continue;
    const c1 = g.consumers(x);
    let middle: NodeProto | null = null;
    let y = x;
    if (c1.length === 1 && HOMOGENEOUS.has(c1[0]!.opType ?? '')) {
      middle = c1[0]!;
      if (middle.opType === 'PRelu' && !g.hasInitializer(middle.input?.[1] ?? '')) continue;
      y = middle.output![0]!;
      if (g.isGraphOutput(y)) continue;
    }
    const consumers = g.consumers(y);
    if (!consumers.length || consumers.some((c) => c.opType !== 'Conv' || c.input![0] !== y || c.input!.slice(1).includes(y) || !ownsWeights(g, c))) continue;
    pairs.push({ producer: p, middle, consumers, tensor: y, preActivation: x });
  }
  return pairs;
}

/** Per input channel of a Conv weight [O, C/g, k...]: max |w| over everything reading that channel. */
function inputColumnAmax(w: Float32Array, dims: readonly number[], group: number): Float32Array {
  const [o, cpg] = dims as [number, number];
  const taps = dims.slice(2).reduce((a, b) => a * b, 1);
  const outPerGroup = o / group;
  const amax = new Float32Array(cpg * group);
  for (let oc = 0; oc < o; oc++) {
    const gi = Math.floor(oc / outPerGroup);
    for (let i = 0; i < cpg; i++) {
      const ch = gi * cpg + i;
      for (let t = 0; t < taps; t++) amax[ch] = Math.max(amax[ch]!, Math.abs(w[(oc * cpg + i) * taps + t]!));
    }
  }
  return amax;
}

export interface EqualizeResult {
  pairs: number;
  /** Ratio max/min of channel ranges before and after, averaged (geometric) over the pairs. */
  spreadBefore: number;
  spreadAfter: number;
}

/**
 * Equalize every pair using `channelAmax` (per-channel max |x| of each pair's tensor, measured on
 * calibration inputs). Pairs without measurements are left alone.
 */
export function equalizeGraph(g: Graph, channelAmax: ReadonlyMap<string, Float32Array>): EqualizeResult {
  let n = 0;
  let logBefore = 0;
  let logAfter = 0;
  for (const pair of findEqualizablePairs(g)) {
    // both the pre-activation and the activation output are quantized: balance their geometric mean
    const ay = channelAmax.get(pair.tensor);
    const ax = channelAmax.get(pair.preActivation) ?? ay;
    const [, w1Name, b1Name] = pair.producer.input!;
    const w1 = g.getTensor(w1Name!);
    const channels = w1.dims[0]!;
    if (!ay || !ax || ay.length !== channels || ax.length !== channels) continue;
    // channels nearly silent on the calibration faces must not be amplified without bound: on other faces
    // they may wake up and blow the tensor's range, so ranges are floored at 1/64 of the largest (on
    // mobileface all-int8 cosine: 1/8 0.918, 1/16 0.976, 1/32 0.987, 1/64 0.989, 1/128 0.988)
    const raw0 = Float32Array.from(ay, (v, i) => Math.sqrt(v * ax[i]!));
    const top = Math.max(...raw0);
    const a = Float32Array.from(raw0, (v) => Math.max(v, top / 64));
    const depthwise = pair.consumers.every((c) => attrInt(c, 'group', 1) === channels && g.getTensor(c.input![1]!).dims[1] === 1);
    const s = new Float32Array(channels);
    if (depthwise) {
      const live = [...a].filter((v) => v > 0);
      const m = live.length ? Math.exp(live.reduce((acc, v) => acc + Math.log(v), 0) / live.length) : 1;
      for (let i = 0; i < channels; i++) s[i] = a[i]! > 0 ? a[i]! / m : 1;
    } else {
      const wcol = new Float32Array(channels);
      for (const c of pair.consumers) {
        const col = inputColumnAmax(g.getFloat(c.input![1]!), g.getTensor(c.input![1]!).dims, attrInt(c, 'group', 1));
        for (let i = 0; i < channels; i++) wcol[i] = Math.max(wcol[i]!, col[i] ?? 0);
      }
      const raw = new Float32Array(channels);
      for (let i = 0; i < channels; i++) raw[i] = a[i]! > 0 && wcol[i]! > 0 ? Math.sqrt(a[i]! / wcol[i]!) : 1;
      const live = [...raw].filter((v, i) => a[i]! > 0 && wcol[i]! > 0 && v > 0);
      const m = live.length ? Math.exp(live.reduce((acc, v) => acc + Math.log(v), 0) / live.length) : 1;
      for (let i = 0; i < channels; i++) s[i] = raw[i]! / m;
    }
    for (let i = 0; i < channels; i++) s[i] = Math.min(1e4, Math.max(1e-4, s[i]!));
    // producer: output channel i divided by s_i
    const wf = g.getFloat(w1Name!);
    const inner = wf.length / channels;
    const nw = new Float32Array(wf.length);
    for (let i = 0; i < wf.length; i++) nw[i] = wf[i]! / s[Math.floor(i / inner)]!;
    g.setTensor(w1Name!, DataType.FLOAT, w1.dims, nw);
    if (b1Name) g.setTensor(b1Name, DataType.FLOAT, [channels], Float32Array.from(g.getFloat(b1Name), (v, i) => v / s[i]!));
    // consumers: input channel i multiplied by s_i
    for (const c of pair.consumers) {
      const wName = c.input![1]!;
      const t = g.getTensor(wName);
      const wf2 = g.getFloat(wName);
      const [o, cpg] = t.dims as [number, number];
      const group = attrInt(c, 'group', 1);
      const taps = t.dims.slice(2).reduce((p, q) => p * q, 1);
      const outPerGroup = o / group;
      const nw2 = new Float32Array(wf2.length);
      for (let oc = 0; oc < o; oc++) {
        const gi = Math.floor(oc / outPerGroup);
        for (let i = 0; i < cpg; i++) {
          const k = s[gi * cpg + i]!;
          for (let tap = 0; tap < taps; tap++) nw2[(oc * cpg + i) * taps + tap] = wf2[(oc * cpg + i) * taps + tap]! * k;
        }
      }
      g.setTensor(wName, DataType.FLOAT, t.dims, nw2);
    }
    const after = Float32Array.from(a, (v, i) => v / s[i]!);
    const spread = (v: Float32Array) => { const live = [...v].filter((x) => x > 0); return live.length ? Math.max(...live) / Math.min(...live) : 1; };
    logBefore += Math.log(spread(a));
    logAfter += Math.log(spread(after));
    n++;
  }
  return { pairs: n, spreadBefore: n ? Math.exp(logBefore / n) : 1, spreadAfter: n ? Math.exp(logAfter / n) : 1 };
}
