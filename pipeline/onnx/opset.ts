/**
 * Opset upgrade of the default (ai.onnx) domain to 13 or later, for the operator changes that occur in
 * InsightFace-family graphs exported at opset 9-12: attributes that became inputs (Squeeze/Unsqueeze/Split
 * axes, ReduceSum axes at 13 and the other Reduce* at 18, Clip min/max, Pad pads, Slice starts/ends,
 * TopK k, Dropout ratio), Upsample -> Resize, old Resize(10) -> Resize(11+), BatchNormalization's removed
 * attributes, and Softmax's changed axis semantics. Each rule states the version where the change happened
 * and rewrites one node in place; anything it cannot rewrite exactly is a coded error, never a silent guess.
 *
 * Why not rely on onnx.version_converter: it is Python-only, and quantization (per-channel Q/DQ needs
 * opset 13) must run in this toolkit.
 */
import { FaceoptError } from '../errors.js';
import { Graph } from './graph.js';
import type { OnnxModel } from './model.js';
import { DataType, attrFloat, attrInts, attrString, getAttr, removeAttr, setAttr, type NodeProto } from './proto.js';

/** Lowest and highest targets this upgrader handles. */
export const MIN_TARGET_OPSET = 13;
export const MAX_TARGET_OPSET = 21;

/** IR version that goes with an opset (ONNX's versioning table). */
export function irVersionFor(opset: number): number {
  if (opset <= 12) return 7;
  if (opset <= 13) return 7;
  if (opset <= 15) return 8;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

interface Ctx {
  graph: Graph;
  from: number;
  to: number;
  /** True when a change introduced at `version` must be applied. */
  crosses(version: number): boolean;
  /** Add an int64 1-D initializer and return its name. */
  int64(base: string, values: number[]): string;
  /** Add a float scalar/1-D initializer and return its name. */
  float(base: string, values: number[], dims?: number[]): string;
  fail(node: NodeProto, reason: string): never;
}

type Rule = (node: NodeProto, ctx: Ctx) => void;

const REDUCE_18 = ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];

/** Move an ints attribute to a new int64 input at position `at` (padding skipped inputs with ''). */
function attrToInput(node: NodeProto, ctx: Ctx, attr: string, at: number): void {
  const values = attrInts(node, attr);
  removeAttr(node, attr);
  if (values === undefined) return;
  const inputs = [...(node.input ?? [])];
  while (inputs.length < at) inputs.push('');
  inputs[at] = ctx.int64(`${node.name || node.opType}_${attr}`, values);
  node.input = inputs;
}

/** The values of a constant float tensor (initializer or Constant node) feeding `name`, or undefined. */
function constFloats(g: Graph, name: string): number[] | undefined {
  if (!name || (!g.hasInitializer(name) && !g.constantValue(name))) return undefined;
  return Array.from(g.getFloat(name));
}

/** Scales as written in a model (float32 0.6 shows as 0.6, not 0.6000000238418579). */
const scalesText = (scales: readonly number[]): string => `[${scales.map((v) => Number(v.toPrecision(7))).join(',')}]`;

/**
 * The nearest_mode (opset 11+) that rounds as onnxruntime rounds Resize-10 and Upsample: their SIMPLE
 * mode (core/providers/cpu/tensor/upsamplebase.h, GetNearestPixelFromOriginal, asked per axis with
 * `scales[axis] < 1` in upsample.cc) takes ceil on an axis that shrinks and truncates (floor: asymmetric
 * coordinates are >= 0) on one that grows; a scale of 1 maps i to i either way. From 11 on one mode
 * covers every axis, so scales that shrink one axis and grow another have no equivalent (and the model
 * has one opset, so the node cannot stay at 10): a coded error naming the node.
 */
function nearestModeFor(node: NodeProto, ctx: Ctx, scales: readonly number[] | undefined): string {
  // scales computed at run time cannot be read here. floor is exact whenever they upsample: every valid
  // Upsample (scales >= 1) and the FPN Resize nodes of the graphs this targets; only a Resize-10 that
  // shrinks at run time would round differently, and refusing every such node would refuse those graphs
  if (!scales) return 'floor';
  const down = scales.some((v) => v < 1);
  if (down && scales.some((v) => v > 1)) {
    ctx.fail(node, `nearest scales ${scalesText(scales)} shrink one axis and grow another; before opset 11 onnxruntime rounds up on the first and down on the second, and one nearest_mode cannot do both`);
  }
  return down ? 'ceil' : 'floor';
}

const RULES: Record<string, Rule> = {
  BatchNormalization(node, ctx) {
    // opset 9 dropped `spatial` (1 = the only behaviour kept); opset 6/7 dropped consumed_inputs/is_test.
    const spatial = getAttr(node, 'spatial');
    if (spatial === 0) ctx.fail(node, 'spatial=0 (per-activation normalisation) has no opset 9+ equivalent');
    for (const a of ['spatial', 'is_test', 'consumed_inputs']) removeAttr(node, a);
    // training-only outputs (running mean/var, saved stats) are dropped when unused; 14+ allows at most 3.
    const outs = node.output ?? [];
    if (outs.length > 1 && outs.slice(1).every((o) => !o || !ctx.graph.isRead(o))) {
      node.output = [outs[0]!];
    }
  },
  Upsample(node, ctx) {
    if (!ctx.crosses(10)) return;
    const mode = attrString(node, 'mode', 'nearest');
    const attr = attrInts(node, 'scales') ?? (getAttr(node, 'scales') as number[] | undefined);
    let scales = node.input?.[1];
    if (!scales && !attr) return ctx.fail(node, 'Upsample without scales');
    // Upsample takes scales >= 1 (onnxruntime refuses the node otherwise): a graph with a smaller one never
    // ran there, and the upgrade must not make up what it meant
    const known = scales ? constFloats(ctx.graph, scales) : attr;
    if (known?.some((v) => v < 1)) ctx.fail(node, `scales ${scalesText(known)} go below 1, which Upsample does not take (scales >= 1; onnxruntime refuses the node)`);
    const nearestMode = mode === 'nearest' ? nearestModeFor(node, ctx, known) : undefined;
    if (!scales) scales = ctx.float(`${node.name || 'Upsample'}_scales`, attr!, [attr!.length]);
    node.opType = 'Resize';
    node.attribute = [];
    node.input = [node.input![0]!, ctx.float(`${node.name || 'Resize'}_roi`, [], [0]), scales];
    setAttr(node, 'mode', mode === 'bilinear' ? 'linear' : mode);
    setAttr(node, 'coordinate_transformation_mode', 'asymmetric');
    if (nearestMode) setAttr(node, 'nearest_mode', nearestMode);
  },
  Resize(node, ctx) {
    // Resize-10 took (X, scales) with asymmetric coordinates; 11 added roi and the transformation modes.
    if (!ctx.crosses(11) || ctx.from >= 11) return;
    const [x, scales] = node.input ?? [];
    const nearestMode = attrString(node, 'mode', 'nearest') === 'nearest' ? nearestModeFor(node, ctx, constFloats(ctx.graph, scales ?? '')) : undefined;
    node.input = [x!, ctx.float(`${node.name || 'Resize'}_roi`, [], [0]), scales!];
    setAttr(node, 'coordinate_transformation_mode', 'asymmetric');
    if (nearestMode) setAttr(node, 'nearest_mode', nearestMode);
  },
  Clip(node, ctx) {
    if (!ctx.crosses(11)) return;
    const min = getAttr(node, 'min');
    const max = getAttr(node, 'max');
    removeAttr(node, 'min');
    removeAttr(node, 'max');
    const inputs = [node.input![0]!];
    inputs.push(typeof min === 'number' ? ctx.float(`${node.name || 'Clip'}_min`, [min], []) : '');
    if (typeof max === 'number') inputs.push(ctx.float(`${node.name || 'Clip'}_max`, [max], []));
    while (inputs.length > 1 && inputs[inputs.length - 1] === '') inputs.pop();
    node.input = inputs;
  },
  Pad(node, ctx) {
    if (!ctx.crosses(11)) return;
    const pads = attrInts(node, 'pads') ?? attrInts(node, 'paddings');
    const value = attrFloat(node, 'value', 0);
    for (const a of ['pads', 'paddings', 'value']) removeAttr(node, a);
    if (!pads) return ctx.fail(node, 'Pad without pads');
    node.input = [node.input![0]!, ctx.int64(`${node.name || 'Pad'}_pads`, pads)];
    if (value !== 0) node.input.push(ctx.float(`${node.name || 'Pad'}_value`, [value], []));
  },
  Slice(node, ctx) {
    if (!ctx.crosses(10)) return;
    const starts = attrInts(node, 'starts');
    const ends = attrInts(node, 'ends');
    const axes = attrInts(node, 'axes');
    for (const a of ['starts', 'ends', 'axes']) removeAttr(node, a);
    if (!starts || !ends) return ctx.fail(node, 'Slice without starts/ends');
    node.input = [node.input![0]!, ctx.int64(`${node.name || 'Slice'}_starts`, starts), ctx.int64(`${node.name || 'Slice'}_ends`, ends)];
    if (axes) node.input.push(ctx.int64(`${node.name || 'Slice'}_axes`, axes));
  },
  TopK(node, ctx) {
    if (!ctx.crosses(10)) return;
    const k = getAttr(node, 'k');
    removeAttr(node, 'k');
    if (typeof k !== 'number') return ctx.fail(node, 'TopK without k');
    node.input = [node.input![0]!, ctx.int64(`${node.name || 'TopK'}_k`, [k])];
  },
  Dropout(node, ctx) {
    // Inference graphs: Dropout is the identity. Rewriting to Identity avoids the ratio attr->input change (12).
    if (!ctx.crosses(12)) return;
    const mask = node.output?.[1];
    if (mask && (ctx.graph.consumers(mask).length || ctx.graph.isGraphOutput(mask))) ctx.fail(node, 'the Dropout mask output is used');
    node.opType = 'Identity';
    node.attribute = [];
    node.input = [node.input![0]!];
    node.output = [node.output![0]!];
  },
  Squeeze(node, ctx) { if (ctx.crosses(13)) attrToInput(node, ctx, 'axes', 1); },
  Unsqueeze(node, ctx) {
    if (!ctx.crosses(13)) return;
    if (!attrInts(node, 'axes')) ctx.fail(node, 'Unsqueeze without axes');
    attrToInput(node, ctx, 'axes', 1);
  },
  Split(node, ctx) {
    if (ctx.crosses(13)) attrToInput(node, ctx, 'split', 1);
    if (ctx.crosses(18) && !node.input?.[1]) setAttr(node, 'num_outputs', node.output?.length ?? 1, 'int');
  },
  ReduceSum(node, ctx) {
    if (!ctx.crosses(13)) return;
    attrToInput(node, ctx, 'axes', 1);
  },
  Softmax: softmaxRule,
  LogSoftmax: softmaxRule,
  Hardmax: softmaxRule,
};
for (const op of REDUCE_18) RULES[op] = (node, ctx) => { if (ctx.crosses(18)) attrToInput(node, ctx, 'axes', 1); };

function softmaxRule(node: NodeProto, ctx: Ctx): void {
  // Before 13 the input was coerced to 2-D at `axis` (default 1); from 13 the op works on one axis
  // (default -1). Equal only when the axis is the last one.
  if (!ctx.crosses(13)) return;
  const axis = getAttr(node, 'axis');
  const a = typeof axis === 'number' ? axis : 1;
  if (a === -1) { setAttr(node, 'axis', -1, 'int'); return; }
  const rank = rankOf(ctx.graph, node.input![0]!);
  if (rank !== null && a === rank - 1) { setAttr(node, 'axis', a, 'int'); return; }
  ctx.fail(node, `axis ${a} is not the last axis of its input${rank !== null ? ` (rank ${rank})` : ' (rank unknown)'}, so opset 13 would normalise over a different set of values`);
}

/** Ops whose output has the rank of their first input. */
const SAME_RANK = new Set(['Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'Tanh', 'Elu', 'Selu', 'HardSigmoid', 'Softplus', 'Softsign', 'Clip', 'Identity', 'Dropout', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Cast', 'BatchNormalization', 'Softmax', 'LogSoftmax', 'Hardmax', 'LRN', 'InstanceNormalization']);
/** Elementwise ops with broadcasting: the output has the largest rank of their inputs. */
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum']);

/**
 * The rank of a tensor where it is certain: recorded (value info, graph input/output, initializer), or
 * following from its producer (Gemm and Flatten: 2; MatMul of known ranks >= 2: the larger; elementwise
 * ops: their inputs'). Null when unknown.
 */
export function rankOf(g: Graph, t: string, depth = 0): number | null {
  const shape = g.valueInfo(t)?.shape;
  if (shape) return shape.length;
  if (g.hasInitializer(t)) return g.getTensor(t).dims.length;
  const p = g.producer(t);
  if (!p || depth > 64 || (p.domain && p.domain !== 'ai.onnx') || p.output?.[0] !== t) return null;
  const ins = (p.input ?? []).filter(Boolean);
  const op = p.opType ?? '';
  if (op === 'Gemm' || op === 'Flatten') return 2;
  if (op === 'MatMul') {
    const [a, b] = ins.map((i) => rankOf(g, i, depth + 1));
    return a != null && b != null && a >= 2 && b >= 2 ? Math.max(a, b) : null;
  }
  if (SAME_RANK.has(op) && ins[0]) return rankOf(g, ins[0], depth + 1);
  if (BROADCAST.has(op) && ins.length) {
    const r = ins.map((i) => rankOf(g, i, depth + 1));
    return r.every((x) => x !== null) ? Math.max(...(r as number[])) : null;
  }
  return null;
}

/** Ops that need no change between 9 and 21 for inference in these graphs (listed so unknown ops stand out). */
const REMOVED: Record<string, number> = { Scatter: 11, ImageScaler: 10, Crop: 10, Affine: 10, Scale: 10, ScaledTanh: 10, ParametricSoftplus: 10, GivenTensorFill: 10, ThresholdedRelu: 0 };

/**
 * Upgrade the model's ai.onnx opset to `target` (13..21) in place. Returns the list of nodes rewritten.
 * A model already at or above the target is left untouched.
 */
export function upgradeOpset(model: OnnxModel, target = MIN_TARGET_OPSET): { from: number; to: number; rewritten: string[] } {
  if (!Number.isInteger(target) || target < MIN_TARGET_OPSET || target > MAX_TARGET_OPSET) {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { expected: `integer between ${MIN_TARGET_OPSET} and ${MAX_TARGET_OPSET}`, name: 'target opset', received: String(target) });
  }
  const from = model.opset();
  if (from >= target) return { from, to: from, rewritten: [] };
  const graph = model.graph;
  // new constants go into the graph whose node needs them (a subgraph's into the subgraph), each named
  // uniquely in the whole model
  const ctxFor = (g: Graph): Ctx => ({
    graph: g,
    from,
    to: target,
    crosses: (v) => from < v && target >= v,
    int64(base, values) {
      const name = graph.uniqueName(base);
      g.setTensor(name, DataType.INT64, [values.length], values);
      return name;
    },
    float(base, values, dims = [values.length]) {
      const name = graph.uniqueName(base);
      g.setTensor(name, DataType.FLOAT, dims, values);
      return name;
    },
    fail(node, reason) {
      throw new FaceoptError('FACEOPT_ERR_OPSET_UPGRADE', { node: node.name || '(unnamed)', op: node.opType, from, to: target, reason });
    },
  });
  const rewritten: string[] = [];
  // the nodes of a graph, then (same rules) those of its subgraphs (If branches, Loop and Scan bodies)
  const upgradeGraph = (g: Graph): void => {
    const c = ctxFor(g);
    for (const node of [...g.nodes]) {
      if (node.domain && node.domain !== 'ai.onnx') continue;
      for (const a of node.attribute ?? []) for (const sub of [a.g, ...(a.graphs ?? [])]) if (sub) upgradeGraph(new Graph(sub));
      const removedAt = REMOVED[node.opType ?? ''];
      if (removedAt !== undefined && removedAt > 0 && c.crosses(removedAt)) c.fail(node, `${node.opType} was removed from ONNX at opset ${removedAt}`);
      const rule = RULES[node.opType ?? ''];
      if (!rule) continue;
      const before = JSON.stringify([node.opType, node.input, node.output, node.attribute?.map((a) => a.name)]);
      rule(node, c);
      if (JSON.stringify([node.opType, node.input, node.output, node.attribute?.map((a) => a.name)]) !== before) rewritten.push(node.name || node.opType!);
    }
    g.invalidate();
  };
  upgradeGraph(graph);
  graph.invalidate();
  model.setOpset(target);
  const ir = irVersionFor(target);
  // below IR 4 an initializer listed as a graph input is a constant; from IR 4 on the entry would make it
  // an input callers may feed (and onnxruntime would not fold it): the entries go
  if (model.irVersion < 4 && ir >= 4) graph.dropInitializerInputs();
  if (model.irVersion < ir) model.proto.irVersion = ir;
  return { from, to: target, rewritten };
}
