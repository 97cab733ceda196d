/**
 * PRelu rewrites. onnxruntime has no int8 PRelu kernel, so in a QDQ graph every PRelu is a float island
 * (DequantizeLinear -> PRelu -> QuantizeLinear, plus layout Transposes around it on the NHWC int8 path),
 * and InsightFace recognizers have one after nearly every convolution.
 *
 * `split-relu` (exact for any slope a, negative or above 1 included) uses
 *     PRelu(x) = Relu(x) - a * Relu(-x)
 * with x = Conv1(z): Conv1 gets each output channel twice, once with weights W and once with -W, and a
 * Relu (which the quantizer folds into the int8 output range); every consumer Conv2 reads the 2C channels
 * with weights [W2, -a*W2] on each interleaved pair. The graph is then Conv(+Relu) only, which fuses
 * entirely into int8 kernels, at the price of twice the MACs in the two convolutions around each PRelu.
 *
 * `max` uses PRelu(x) = Max(x, a*x), exact only when every slope is <= 1 (checked per model).
 */
import type { Graph } from '../../onnx/graph.js';
import { DataType, attrInt, makeNode, type NodeProto } from '../../onnx/proto.js';

export interface PreluRewriteResult {
  rewritten: string[];
  /** PRelu nodes left as they are, with the reason. */
  skipped: { name: string; reason: string }[];
  /** `residual-dw` only: PRelus written as `sign-dw` instead (among `rewritten`), with the reason. */
  fallback?: { name: string; reason: string }[];
}

/**
 * The slope of `prelu` as one value per channel (axis 1) of its rank-`rank` input, or undefined when it
 * is not that. PRelu broadcasts its slope numpy-style, aligned from the last axis: a slope whose dims
 * are all 1 serves every channel; otherwise its one dim above 1 must be `channels` and land on axis 1
 * ([C, 1, 1] or [1, C, 1, 1] on NCHW). A [C] slope on NCHW varies along W, not along the channels
 * (until 2026-12-06 `split-relu` and `sign-concat` took any slope of C values as per-channel).
 */
function slopes(g: Graph, prelu: NodeProto, channels: number, rank: number): Float32Array | undefined {
  const name = prelu.input?.[1];
  if (!name || !g.hasInitializer(name)) return undefined;
  const known = g.valueInfo(prelu.input![0]!)?.shape?.length;
  if (known !== undefined && known !== rank) return undefined;
  const dims = g.getTensor(name).dims.map(Number);
  const s = g.getFloat(name);
  if (dims.length > rank) return undefined;
  if (s.length === 1) return new Float32Array(channels).fill(s[0]!);
  const wide = dims.flatMap((d, i) => (d === 1 ? [] : [i]));
  if (wide.length !== 1 || dims[wide[0]!] !== channels || rank - dims.length + wide[0]! !== 1) return undefined;
  return s;
}

/**
 * Why a PRelu cannot become depthwise 1x1 convolutions: its slope must be one value per channel of an
 * NCHW tensor, shaped [C, 1, 1] or [1, C, 1, 1] (a [C] slope broadcasts along the last axis, and a
 * PRelu on a [N, C] tensor has no spatial axes for a Conv), and x's rank, where known, must be 4.
 */
function notChannelwise(g: Graph, prelu: NodeProto): string | undefined {
  const dims = g.getTensor(prelu.input![1]!).dims.map(Number);
  const c = dims.reduce((p, q) => p * q, 1);
  if (c < 2) return 'its slope is a scalar';
  const ok = (dims.length === 3 || (dims.length === 4 && dims[0] === 1)) && dims.at(-3) === c;
  if (!ok) return `its slope (shape [${dims.join(', ')}]) is not one value per channel of an NCHW tensor`;
  const rank = g.valueInfo(prelu.input![0]!)?.shape?.length;
  if (rank !== undefined && rank !== 4) return `its input has rank ${rank}, not 4`;
  return undefined;
}

/** Rewrite Conv -> PRelu -> Conv(s) into Conv(2x, Relu) -> Conv(s) reading interleaved pairs. */
function splitRelu(g: Graph, prelu: NodeProto): string | undefined {
  const x = prelu.input![0]!;
  const y = prelu.output![0]!;
  const conv1 = g.producer(x);
  if (conv1?.opType !== 'Conv') return 'its input does not come from a Conv';
  if (g.consumers(x).length !== 1 || g.isGraphOutput(x)) return 'the Conv output has other uses';
  if (g.isGraphOutput(y)) return 'its output is a graph output';
  const consumers = g.consumers(y);
  if (!consumers.length || consumers.some((c) => c.opType !== 'Conv' || c.input![0] !== y || c.input!.slice(1).includes(y))) return 'not every consumer is a Conv reading it as data';
  const [, w1Name, b1Name] = conv1.input!;
  if (!w1Name || !g.hasInitializer(w1Name) || (b1Name && !g.hasInitializer(b1Name))) return 'the producing Conv has dynamic weights';
  if (g.consumers(w1Name).length !== 1) return 'the producing Conv shares its weights';
  const w1 = g.getTensor(w1Name);
  const out = w1.dims[0]!;
  const a = slopes(g, prelu, out, w1.dims.length);
  if (!a) return 'its slope is not per-channel or scalar';
  for (const c of consumers) {
    const w = c.input![1];
    if (!w || !g.hasInitializer(w) || g.consumers(w).length !== 1) return 'a consuming Conv has dynamic or shared weights';
  }
  // Conv1: output channel c -> 2c (W) and 2c+1 (-W); groups keep their pairs together
  const w1f = g.getFloat(w1Name);
  const inner = w1f.length / out;
  const nw1 = new Float32Array(w1f.length * 2);
  for (let c = 0; c < out; c++) {
    for (let i = 0; i < inner; i++) {
      nw1[(2 * c) * inner + i] = w1f[c * inner + i]!;
      nw1[(2 * c + 1) * inner + i] = -w1f[c * inner + i]!;
    }
  }
  g.setTensor(w1Name, DataType.FLOAT, [out * 2, ...w1.dims.slice(1)], nw1);
  const b1 = b1Name ? g.getFloat(b1Name) : new Float32Array(out);
  const nb1 = new Float32Array(out * 2);
  for (let c = 0; c < out; c++) { nb1[2 * c] = b1[c]!; nb1[2 * c + 1] = -b1[c]!; }
  const b1New = b1Name || g.uniqueName(`${conv1.name || 'conv'}_bias`);
  g.setTensor(b1New, DataType.FLOAT, [out * 2], nb1);
  conv1.input = [conv1.input![0]!, w1Name, b1New];
  // Relu on the doubled output; its output replaces the PRelu's
  const pos = g.uniqueName(`${x}_split`);
  conv1.output = [pos];
  const relu = makeNode('Relu', [pos], [y], `${prelu.name || 'PRelu'}_split_relu`);
  g.addNode(relu, prelu);
  g.removeNodes([prelu]);
  g.dropValueInfo([x, y]);
  // Conv2: input channel i -> pair (2i, 2i+1) with weights (W2, -a*W2)
  for (const conv2 of consumers) {
    const w2Name = conv2.input![1]!;
    const w2 = g.getTensor(w2Name);
    const w2f = g.getFloat(w2Name);
    const [o2, cpg, ...k] = w2.dims as number[];
    const group = attrInt(conv2, 'group', 1);
    const taps = k.reduce((p, q) => p * q, 1);
    const outPerGroup = o2! / group;
    const nw2 = new Float32Array(w2f.length * 2);
    for (let o = 0; o < o2!; o++) {
      const gi = Math.floor(o / outPerGroup);
      for (let i = 0; i < cpg!; i++) {
        const ch = gi * cpg! + i;
        for (let t = 0; t < taps; t++) {
          const v = w2f[(o * cpg! + i) * taps + t]!;
          nw2[(o * 2 * cpg! + 2 * i) * taps + t] = v;
          nw2[(o * 2 * cpg! + 2 * i + 1) * taps + t] = -a[ch]! * v;
        }
      }
    }
    g.setTensor(w2Name, DataType.FLOAT, [o2!, cpg! * 2, ...k], nw2);
  }
  g.invalidate();
  return undefined;
}

/** Rewrite PRelu -> Max(x, Mul(x, a)) when every slope is <= 1. */
function maxForm(g: Graph, prelu: NodeProto): string | undefined {
  const [x, s] = prelu.input!;
  if (!s || !g.hasInitializer(s)) return 'its slope is not a constant';
  if (g.getFloat(s).some((v) => v > 1)) return 'a slope is above 1, where Max(x, a*x) is not PRelu';
  const ax = g.uniqueName(`${prelu.name || 'PRelu'}_scaled`);
  g.addNode(makeNode('Mul', [x!, s], [ax], `${prelu.name || 'PRelu'}_mul`), prelu);
  g.addNode(makeNode('Max', [x!, ax], [prelu.output![0]!], `${prelu.name || 'PRelu'}_max`), prelu);
  g.removeNodes([prelu]);
  return undefined;
}

/**
 * Relu(x) and Relu(-x) of a C-channel `x`, each a depthwise 1x1 Conv of weight +1 / -1 followed by a
 * Relu (which the quantizer folds into a uint8 range on x's grid), added before `at`. Returns the two
 * rectified tensors. The halves of the `sign-dw` and `sign-concat` forms.
 */
function rectifiedHalves(g: Graph, x: string, channels: number, base: string, at: NodeProto): [string, string] {
  const wp = g.uniqueName(`${base}_dw_pos`); const wn = g.uniqueName(`${base}_dw_neg`);
  g.setTensor(wp, DataType.FLOAT, [channels, 1, 1, 1], new Float32Array(channels).fill(1));
  g.setTensor(wn, DataType.FLOAT, [channels, 1, 1, 1], new Float32Array(channels).fill(-1));
  const xp = g.uniqueName(`${base}_xpos`); const rp = g.uniqueName(`${base}_pos`);
  const xn = g.uniqueName(`${base}_xneg`); const rn = g.uniqueName(`${base}_neg`);
  const dw = { group: channels, kernel_shape: [1, 1] };
  g.addNode(makeNode('Conv', [x, wp], [xp], `${base}_pos_conv`, dw), at);
  g.addNode(makeNode('Relu', [xp], [rp], `${base}_pos_relu`), at);
  g.addNode(makeNode('Conv', [x, wn], [xn], `${base}_neg_conv`, dw), at);
  g.addNode(makeNode('Relu', [xn], [rn], `${base}_neg_relu`), at);
  return [rp, rn];
}

/** Decompositions into ops with fast (and int8) kernels; exact for any slope. */
function decompose(g: Graph, prelu: NodeProto, form: 'affine-relu' | 'relu-min' | 'affine-dw' | 'sign-dw'): string | undefined {
  const [x, s] = prelu.input!;
  if (!s || !g.hasInitializer(s)) return 'its slope is not a constant';
  const base = prelu.name || 'PRelu';
  const y = prelu.output![0]!;
  const a = g.getTensor(s);
  const av = g.getFloat(s);
  if (form === 'affine-relu') {
    // y = a*x + (1-a)*Relu(x)
    const oneMinus = g.uniqueName(`${s}_one_minus`);
    g.setTensor(oneMinus, DataType.FLOAT, a.dims, Float32Array.from(av, (v) => 1 - v));
    const ax = g.uniqueName(`${base}_ax`); const r = g.uniqueName(`${base}_relu`); const br = g.uniqueName(`${base}_br`);
    g.addNode(makeNode('Mul', [x!, s], [ax], `${base}_mul_a`), prelu);
    g.addNode(makeNode('Relu', [x!], [r], `${base}_relu`), prelu);
    g.addNode(makeNode('Mul', [r, oneMinus], [br], `${base}_mul_b`), prelu);
    g.addNode(makeNode('Add', [ax, br], [y], `${base}_add`), prelu);
  } else if (form === 'sign-dw') {
    // y = Relu(x) + (-a)*Relu(-x): both rectified parts as depthwise 1x1 convolutions (weights +1 and -1,
    // the Relu folds into their uint8 range), the slope as a third; no term cancels another, so each
    // int8 error is relative to the value it ends up in (a*x + (1-a)*Relu(x) cancels when |a| > 1)
    const notDw = notChannelwise(g, prelu);
    if (notDw) return notDw;
    const c = av.length;
    const [rp, rn] = rectifiedHalves(g, x!, c, base, prelu);
    const wa = g.uniqueName(`${s}_dw_neg_a`);
    g.setTensor(wa, DataType.FLOAT, [c, 1, 1, 1], Float32Array.from(av, (v) => -v));
    const an = g.uniqueName(`${base}_an`);
    g.addNode(makeNode('Conv', [rn, wa], [an], `${base}_mul_neg`, { group: c, kernel_shape: [1, 1] }), prelu);
    g.addNode(makeNode('Add', [rp, an], [y], `${base}_add`), prelu);
  } else if (form === 'affine-dw') {
    // y = a*x + (1-a)*Relu(x), the per-channel products as depthwise 1x1 convolutions: their int8
    // weights get one scale per channel, so every slope keeps 8 bits however wide the slopes spread
    const notDw = notChannelwise(g, prelu);
    if (notDw) return notDw;
    const c = av.length;
    const wa = g.uniqueName(`${s}_dw_a`);
    const wb = g.uniqueName(`${s}_dw_b`);
    g.setTensor(wa, DataType.FLOAT, [c, 1, 1, 1], av);
    g.setTensor(wb, DataType.FLOAT, [c, 1, 1, 1], Float32Array.from(av, (v) => 1 - v));
    const ax = g.uniqueName(`${base}_ax`); const r = g.uniqueName(`${base}_relu`); const br = g.uniqueName(`${base}_br`);
    g.addNode(makeNode('Conv', [x!, wa], [ax], `${base}_mul_a`, { group: c, kernel_shape: [1, 1] }), prelu);
    g.addNode(makeNode('Relu', [x!], [r], `${base}_relu`), prelu);
    g.addNode(makeNode('Conv', [r, wb], [br], `${base}_mul_b`, { group: c, kernel_shape: [1, 1] }), prelu);
    g.addNode(makeNode('Add', [ax, br], [y], `${base}_add`), prelu);
  } else {
    // y = Relu(x) + a*Min(x, 0)
    const zero = g.uniqueName(`${base}_zero`);
    g.setTensor(zero, DataType.FLOAT, [], [0]);
    const r = g.uniqueName(`${base}_relu`); const m = g.uniqueName(`${base}_min`); const am = g.uniqueName(`${base}_am`);
    g.addNode(makeNode('Relu', [x!], [r], `${base}_relu`), prelu);
    g.addNode(makeNode('Min', [x!, zero], [m], `${base}_min`), prelu);
    g.addNode(makeNode('Mul', [m, s], [am], `${base}_mul`), prelu);
    g.addNode(makeNode('Add', [r, am], [y], `${base}_add`), prelu);
  }
  g.removeNodes([prelu]);
  return undefined;
}

/**
 * `sign-concat`: PRelu(x) = Relu(x) - a*Relu(-x) where every consumer is an ungrouped Conv. The two
 * rectified halves come from depthwise 1x1 convolutions of weight +1 and -1 (as in `sign-dw`), are
 * concatenated on the channel axis, and each consuming Conv reads the 2C channels with weights
 * [W, -a*W]: the slope multiply and the Add disappear into the consumer, and in int8 the halves and their
 * concatenation stay on x's grid, so the PRelu adds no rounding at all.
 */
function signConcat(g: Graph, prelu: NodeProto): string | undefined {
  const [x, s] = prelu.input!;
  const y = prelu.output![0]!;
  if (!s || !g.hasInitializer(s)) return 'its slope is not a constant';
  if (g.isGraphOutput(y)) return 'its output is a graph output';
  const consumers = g.consumers(y);
  if (!consumers.length || consumers.some((c) => c.opType !== 'Conv' || c.input![0] !== y || c.input!.slice(1).includes(y) || attrInt(c, 'group', 1) !== 1)) return 'not every consumer is an ungrouped Conv reading it as data';
  for (const c of consumers) {
    const w = c.input![1];
    if (!w || !g.hasInitializer(w) || g.consumers(w).length !== 1) return 'a consuming Conv has dynamic or shared weights';
  }
  const w0 = g.getTensor(consumers[0]!.input![1]!);
  const channels = w0.dims[1]!;
  const a = slopes(g, prelu, channels, w0.dims.length);
  if (!a || channels < 2) return 'its slope is not per-channel';
  const base = prelu.name || 'PRelu';
  const [rp, rn] = rectifiedHalves(g, x!, channels, base, prelu);
  g.addNode(makeNode('Concat', [rp, rn], [y], `${base}_halves`, { axis: 1 }), prelu);
  for (const c of consumers) {
    const wName = c.input![1]!;
    const t = g.getTensor(wName);
    const wf = g.getFloat(wName);
    const [o, ci] = t.dims as [number, number];
    const taps = wf.length / (o * ci);
    const nw = new Float32Array(wf.length * 2);
    for (let oc = 0; oc < o; oc++) {
      for (let i = 0; i < ci; i++) {
        for (let k = 0; k < taps; k++) {
          const v = wf[(oc * ci + i) * taps + k]!;
          nw[(oc * 2 * ci + i) * taps + k] = v;
          nw[(oc * 2 * ci + ci + i) * taps + k] = -a[i]! * v;
        }
      }
    }
    g.setTensor(wName, DataType.FLOAT, [o, 2 * ci, ...t.dims.slice(2)], nw);
  }
  g.removeNodes([prelu]);
  return undefined;
}

/**
 * Negate channel `c` of `x` for every `flip[c]`: in its producing Conv (weights and bias of output
 * channel c) and in every consuming Conv (the weights that read input channel c), so the function of the
 * graph is unchanged. Returns why not when a weight is shared or dynamic.
 */
function flipChannels(g: Graph, producer: NodeProto, consumers: readonly NodeProto[], flip: readonly boolean[]): string | undefined {
  const [, w1, b1] = producer.input!;
  const sole = (t: string | undefined) => !t || (g.hasInitializer(t) && g.consumers(t).length === 1);
  if (!w1 || !sole(w1) || !sole(b1)) return 'the producing Conv has dynamic or shared weights';
  if (consumers.some((c) => !c.input?.[1] || !sole(c.input[1]))) return 'a consuming Conv has dynamic or shared weights';
  const t1 = g.getTensor(w1);
  const v1 = Float32Array.from(g.getFloat(w1));
  const inner = v1.length / t1.dims[0]!;
  for (let c = 0; c < flip.length; c++) if (flip[c]) for (let i = 0; i < inner; i++) v1[c * inner + i] = -v1[c * inner + i]!;
  g.setTensor(w1, DataType.FLOAT, t1.dims, v1);
  if (b1) g.setTensor(b1, DataType.FLOAT, g.getTensor(b1).dims, Float32Array.from(g.getFloat(b1), (v, c) => (flip[c] ? -v : v)));
  for (const conv of consumers) {
    const w = conv.input![1]!;
    const t = g.getTensor(w);
    const v = Float32Array.from(g.getFloat(w));
    const [o, cpg] = t.dims as [number, number];
    const taps = v.length / (o * cpg);
    const outPerGroup = o / attrInt(conv, 'group', 1);
    for (let c = 0; c < flip.length; c++) {
      if (!flip[c]) continue;
      const gi = Math.floor(c / cpg);
      for (let oc = gi * outPerGroup; oc < (gi + 1) * outPerGroup; oc++) {
        const at = (oc * cpg + c - gi * cpg) * taps;
        for (let k = at; k < at + taps; k++) v[k] = -v[k]!;
      }
    }
    g.setTensor(w, DataType.FLOAT, t.dims, v);
  }
  return undefined;
}

/**
 * `residual-dw`: PRelu(x) = x + Relu((a-1)*x) for a slope a <= 1, one depthwise 1x1 convolution (its
 * Relu folds into the uint8 range) and an Add: two passes over the tensor where `sign-dw` takes four
 * (three convolutions and the Add). A channel with a > 1 is negated in the Conv that produces x and in
 * every Conv that reads the PRelu (exact): with x' = -x, -PRelu(x) = x' + Relu((a-1)*x'), the same
 * expression. Not exact in float (x + (a-1)x rounds differently from a*x) and its negative side
 * subtracts, so `--fp32` keeps `sign-dw`. Returns why not when the slope is not per-channel, or a
 * channel needs negating and x's producer or the PRelu's readers are not Convs that can take it.
 */
function residualDw(g: Graph, prelu: NodeProto): string | undefined {
  const [x, s] = prelu.input!;
  if (!s || !g.hasInitializer(s)) return 'its slope is not a constant';
  const notDw = notChannelwise(g, prelu);
  if (notDw) return notDw;
  const av = g.getFloat(s);
  const c = av.length;
  const y = prelu.output![0]!;
  const flip = Array.from(av, (v) => v > 1);
  if (flip.some(Boolean)) {
    const producer = g.producer(x!);
    if (producer?.opType !== 'Conv' || g.consumers(x!).length !== 1 || g.isGraphOutput(x!)) return 'a slope is above 1 and its input is not a Conv output read only by it';
    if (g.getTensor(producer.input![1]!).dims[0] !== c) return 'a slope is above 1 and its producing Conv has another channel count';
    const consumers = g.consumers(y);
    if (g.isGraphOutput(y) || !consumers.length || consumers.some((n) => n.opType !== 'Conv' || n.input![0] !== y || n.input!.slice(1).includes(y))) return 'a slope is above 1 and not every reader is a Conv reading it as data';
    const why = flipChannels(g, producer, consumers, flip);
    if (why) return why;
  }
  const base = prelu.name || 'PRelu';
  const w = g.uniqueName(`${s}_dw_minus_one`);
  g.setTensor(w, DataType.FLOAT, [c, 1, 1, 1], Float32Array.from(av, (v) => v - 1));
  const xm = g.uniqueName(`${base}_xm`); const m = g.uniqueName(`${base}_m`);
  g.addNode(makeNode('Conv', [x!, w], [xm], `${base}_slope_conv`, { group: c, kernel_shape: [1, 1] }), prelu);
  g.addNode(makeNode('Relu', [xm], [m], `${base}_slope_relu`), prelu);
  g.addNode(makeNode('Add', [x!, m], [y], `${base}_add`), prelu);
  g.removeNodes([prelu]);
  return undefined;
}

/** Apply a PRelu rewrite to every PRelu where it is valid. */
export function rewritePrelus(g: Graph, form: 'split-relu' | 'max' | 'affine-relu' | 'relu-min' | 'affine-dw' | 'sign-dw' | 'sign-concat' | 'residual-dw'): PreluRewriteResult {
  const rewritten: string[] = [];
  const skipped: PreluRewriteResult['skipped'] = [];
  const fallback: PreluRewriteResult['skipped'] = [];
  for (const n of [...g.nodes]) {
    if (n.opType !== 'PRelu') continue;
    const name = n.name ?? '';
    const slope = n.input?.[1];
    let reason: string | undefined;
    if (form === 'residual-dw') {
      // residual-dw where its channels allow it, sign-dw for the rest
      const why = residualDw(g, n);
      reason = why && decompose(g, n, 'sign-dw');
      if (why && !reason) fallback.push({ name, reason: why });
    } else if (form === 'sign-concat') {
      // sign-concat where every consumer is an ungrouped Conv, sign-dw for the rest
      reason = signConcat(g, n) && decompose(g, n, 'sign-dw');
    } else {
      reason = form === 'split-relu' ? splitRelu(g, n) : form === 'max' ? maxForm(g, n) : decompose(g, n, form);
    }
    if (reason) skipped.push({ name, reason }); else rewritten.push(name);
    // the original slope, where the rewrite no longer reads it
    if (!reason && slope && g.hasInitializer(slope) && !g.isRead(slope)) g.removeInitializer(slope);
  }
  g.toposort();
  return { rewritten, skipped, ...(form === 'residual-dw' ? { fallback } : {}) };
}
