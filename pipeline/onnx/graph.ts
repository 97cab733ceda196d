/**
 * A façade over GraphProto: nodes, graph inputs/outputs/value infos, initializers as typed arrays,
 * producer/consumer maps, topological order, and edits (add/remove/rename nodes and tensors).
 *
 * The proto stays the single source of truth; the maps are indexes rebuilt lazily after any edit made
 * through this class, so callers never look up tensors by scanning strings themselves.
 */
import { FaceoptError } from '../errors.js';
import type { GraphProto, NodeProto, TensorProto } from './proto.js';
import { constantTensor, makeTensor, readTensor, tensorToFloat32, type TensorData, type TypedArray } from './tensor.js';
import { valueInfoOf, type ValueInfo } from './value-info.js';
import { NameScope } from './name-scope.js';
import { capturedInputs } from './subgraphs.js';

/**
 * Ops whose second input is a weight: the layers quantizers make int8, and a float one of them is a float
 * layer (`--int8`, `--tensorrt`, `evaluate`, `inspect` all count by this one set).
 */
export const WEIGHTED_OPS: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

export { makeValueInfo, valueInfoOf, type ValueInfo } from './value-info.js';
export { NameScope } from './name-scope.js';

export class Graph {
  readonly proto: GraphProto;
  private index?: {
    producer: Map<string, NodeProto>;
    consumers: Map<string, NodeProto[]>;
    initializers: Map<string, TensorProto>;
  };
  private nameCounter = 0;

  constructor(proto: GraphProto) {
    this.proto = proto;
    proto.node ??= [];
    proto.initializer ??= [];
    proto.input ??= [];
    proto.output ??= [];
    proto.valueInfo ??= [];
  }

  /** Nodes in stored order (topological for valid models). */
  get nodes(): NodeProto[] {
    return this.proto.node!;
  }

  /** Graph inputs that are real inputs (not initializers listed as inputs, as IR<4 exporters do). */
  get inputs(): ValueInfo[] {
    const inits = this.idx().initializers;
    return this.proto.input!.filter((v) => !inits.has(v.name ?? '')).map(valueInfoOf);
  }

  /** Graph outputs. */
  get outputs(): ValueInfo[] {
    return this.proto.output!.map(valueInfoOf);
  }

  /** Value info (type/shape) for an intermediate, input or output tensor, when recorded. */
  valueInfo(name: string): ValueInfo | undefined {
    const v = [...this.proto.valueInfo!, ...this.proto.input!, ...this.proto.output!].find((x) => x.name === name);
    return v ? valueInfoOf(v) : undefined;
  }

  /** Forget recorded shapes of tensors whose shape a rewrite changed (the runtime re-infers them). */
  dropValueInfo(names: Iterable<string>): void {
    const drop = new Set(names);
    this.proto.valueInfo = this.proto.valueInfo!.filter((v) => !drop.has(v.name ?? ''));
  }

  /** Mark the indexes stale; call after editing the proto directly. */
  invalidate(): void {
    this.index = undefined;
  }

  private idx() {
    if (!this.index) {
      const producer = new Map<string, NodeProto>();
      const consumers = new Map<string, NodeProto[]>();
      for (const n of this.nodes) {
        for (const o of n.output ?? []) if (o) producer.set(o, n);
        for (const i of n.input ?? []) {
          if (!i) continue;
          const list = consumers.get(i);
          if (list) { if (!list.includes(n)) list.push(n); } else consumers.set(i, [n]);
        }
        // tensors its subgraphs (at any depth) capture from the outer scope count as uses too
        for (const i of capturedInputs(n)) {
          const list = consumers.get(i);
          if (list) { if (!list.includes(n)) list.push(n); } else consumers.set(i, [n]);
        }
      }
      const initializers = new Map<string, TensorProto>();
      for (const t of this.proto.initializer!) initializers.set(t.name ?? '', t);
      this.index = { producer, consumers, initializers };
    }
    return this.index;
  }

  /** The node producing a tensor (undefined for graph inputs and initializers). */
  producer(tensor: string): NodeProto | undefined {
    return this.idx().producer.get(tensor);
  }

  /** Nodes consuming a tensor. */
  consumers(tensor: string): NodeProto[] {
    return this.idx().consumers.get(tensor) ?? [];
  }

  /** True when a tensor is a graph output. */
  isGraphOutput(tensor: string): boolean {
    return this.proto.output!.some((o) => o.name === tensor);
  }

  /** True when a node reads the tensor or it is a graph output. */
  isRead(tensor: string): boolean {
    return this.consumers(tensor).length > 0 || this.isGraphOutput(tensor);
  }

  // --- initializers --------------------------------------------------------------------------

  /** Names of all initializers. */
  initializerNames(): string[] {
    return [...this.idx().initializers.keys()];
  }

  /** True when `name` is an initializer. */
  hasInitializer(name: string): boolean {
    return this.idx().initializers.has(name);
  }

  /** The raw TensorProto of an initializer. */
  initializer(name: string): TensorProto | undefined {
    return this.idx().initializers.get(name);
  }

  /** An initializer (or a Constant node's value) as typed data. */
  getTensor(name: string): TensorData {
    const t = this.initializer(name) ?? this.constantValue(name);
    if (!t) throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `no initializer or constant named ${name}` });
    return readTensor(t);
  }

  /** An initializer's values as float32 (converting other numeric types). */
  getFloat(name: string): Float32Array {
    return tensorToFloat32(this.getTensor(name));
  }

  /** The tensor held by a Constant node producing `name`, if any. */
  constantValue(name: string): TensorProto | undefined {
    const p = this.producer(name);
    if (p?.opType !== 'Constant') return undefined;
    return constantTensor(p, name);
  }

  /** Add or replace an initializer. */
  setTensor(name: string, dataType: number, dims: readonly number[], data: TypedArray | number[]): void {
    const t = makeTensor(name, dataType, dims, data);
    const list = this.proto.initializer!;
    const at = list.findIndex((x) => x.name === name);
    if (at >= 0) list[at] = t; else list.push(t);
    // an initializer that is also listed as a graph input (IR<4) keeps its input entry in sync by name
    this.invalidate();
  }

  /**
   * Drop the graph-input entries of initializers (IR<4 exports list every initializer as an input; from
   * IR 4 on such an entry makes the initializer an overridable input, which onnxruntime does not treat as
   * a constant). Returns the names dropped.
   */
  dropInitializerInputs(): string[] {
    const inits = this.idx().initializers;
    const dropped = this.proto.input!.filter((v) => inits.has(v.name ?? '')).map((v) => v.name ?? '');
    if (dropped.length) {
      this.proto.input = this.proto.input!.filter((v) => !inits.has(v.name ?? ''));
      this.invalidate();
    }
    return dropped;
  }

  /**
   * Turn Constant nodes holding a tensor (`value`) or floats (`value_float(s)`) into initializers of the
   * same name, so weights an exporter wrote as Constant nodes are weights to every pass that looks for
   * initializers (a `value_float` scale stayed a node: quantization found no calibrated range for it). A Constant
   * whose output is a graph output stays. Returns the tensors moved.
   */
  constantsToInitializers(): string[] {
    const moved: NodeProto[] = [];
    const names: string[] = [];
    for (const n of this.nodes) {
      if (n.opType !== 'Constant' || (n.domain && n.domain !== 'ai.onnx')) continue;
      const out = n.output?.[0];
      const t = out ? constantTensor(n, out) : undefined;
      if (!out || !t || this.isGraphOutput(out) || this.hasInitializer(out)) continue;
      t.name = out;
      this.proto.initializer!.push(t);
      moved.push(n);
      names.push(out);
    }
    if (moved.length) this.removeNodes(moved);
    return names;
  }

  /**
   * Give every unnamed node, and every node after the first that repeats a name, a deterministic name
   * unique in the graph (`<op>_<index>`, suffixed when taken): passes that identify nodes by name (mixed
   * precision, exclusions, reports) then tell them apart. Returns the nodes renamed.
   */
  nameNodes(): string[] {
    const scope = this.nameScope();
    const seen = new Set<string>();
    const renamed: string[] = [];
    this.nodes.forEach((n, i) => {
      if (n.name && !seen.has(n.name)) { seen.add(n.name); return; }
      n.name = scope.fresh(`${n.opType || 'node'}_${i}`);
      seen.add(n.name);
      renamed.push(n.name);
    });
    return renamed;
  }

  /** Remove an initializer (and its graph-input entry when present). */
  removeInitializer(name: string): void {
    this.proto.initializer = this.proto.initializer!.filter((t) => t.name !== name);
    this.proto.input = this.proto.input!.filter((v) => v.name !== name);
    this.invalidate();
  }

  // --- nodes ---------------------------------------------------------------------------------

  /** Insert a node (at the end, or before `before`); call toposort() after a batch of edits if needed. */
  addNode(node: NodeProto, before?: NodeProto): NodeProto {
    node.name ||= this.uniqueName(node.opType ?? 'node');
    if (before) {
      const at = this.nodes.indexOf(before);
      this.nodes.splice(at < 0 ? this.nodes.length : at, 0, node);
    } else {
      this.nodes.push(node);
    }
    this.invalidate();
    return node;
  }

  /** Remove nodes. */
  removeNodes(nodes: Iterable<NodeProto>): void {
    const drop = new Set(nodes);
    this.proto.node = this.nodes.filter((n) => !drop.has(n));
    this.invalidate();
  }

  /** Find a node by name. */
  node(name: string): NodeProto | undefined {
    return this.nodes.find((n) => n.name === name);
  }

  /** Replace every use of tensor `from` by `to` in node inputs (and graph outputs when asked). */
  replaceAllUses(from: string, to: string, opts: { graphOutputs?: boolean } = {}): void {
    for (const n of this.nodes) {
      if (n.input) n.input = n.input.map((i) => (i === from ? to : i));
    }
    if (opts.graphOutputs) for (const o of this.proto.output!) if (o.name === from) o.name = to;
    this.invalidate();
  }

  /** Replace one input of one node. */
  replaceInput(node: NodeProto, from: string, to: string): void {
    node.input = (node.input ?? []).map((i) => (i === from ? to : i));
    this.invalidate();
  }

  /** Rename a tensor everywhere: producer output, consumers, initializers, graph inputs/outputs, value infos. */
  renameTensor(from: string, to: string): void {
    if (from === to) return;
    for (const n of this.nodes) {
      if (n.input) n.input = n.input.map((i) => (i === from ? to : i));
      if (n.output) n.output = n.output.map((o) => (o === from ? to : o));
    }
    for (const t of this.proto.initializer!) if (t.name === from) t.name = to;
    for (const v of [...this.proto.input!, ...this.proto.output!, ...this.proto.valueInfo!]) if (v.name === from) v.name = to;
    this.invalidate();
  }

  /** A tensor/node name not used anywhere in the graph, derived from `base`. */
  uniqueName(base: string): string {
    const used = this.allNames();
    if (!used.has(base)) return base;
    for (;;) {
      const candidate = `${base}_${++this.nameCounter}`;
      if (!used.has(candidate)) return candidate;
    }
  }

  /**
   * A scope handing out names unused in the graph as it is now (and unused by each other): a batch of
   * tensors and nodes built before they are added (the QDQ rewriter's) gets names that clash with nothing.
   */
  nameScope(): NameScope {
    return new NameScope(this.allNames());
  }

  /** Every name in use: nodes, tensors, initializers, graph inputs/outputs, value infos, and those inside subgraphs. */
  allNames(): Set<string> {
    const s = new Set<string>();
    const addGraph = (gp: GraphProto) => {
      for (const n of gp.node ?? []) {
        if (n.name) s.add(n.name);
        for (const x of [...(n.input ?? []), ...(n.output ?? [])]) if (x) s.add(x);
        for (const a of n.attribute ?? []) for (const sg of [a.g, ...(a.graphs ?? [])]) if (sg) addGraph(sg);
      }
      for (const t of gp.initializer ?? []) s.add(t.name ?? '');
      for (const v of [...(gp.input ?? []), ...(gp.output ?? []), ...(gp.valueInfo ?? [])]) s.add(v.name ?? '');
    };
    addGraph(this.proto);
    s.delete('');
    return s;
  }

  /**
   * Reorder nodes topologically (Kahn's algorithm, stable: ties keep their stored order). Throws on a
   * cycle or on a node input nothing produces.
   */
  toposort(): void {
    const available = new Set<string>(['', ...this.proto.input!.map((v) => v.name ?? ''), ...this.initializerNames()]);
    const pending = [...this.nodes];
    const sorted: NodeProto[] = [];
    const outerInputs = (n: NodeProto): string[] => [...(n.input ?? []), ...capturedInputs(n)];
    let progress = true;
    while (pending.length && progress) {
      progress = false;
      for (let k = 0; k < pending.length; k++) {
        const n = pending[k]!;
        if (outerInputs(n).every((i) => available.has(i))) {
          sorted.push(n);
          for (const o of n.output ?? []) available.add(o);
          pending.splice(k, 1);
          k--;
          progress = true;
        }
      }
    }
    if (pending.length) {
      const n = pending[0]!;
      const missing = outerInputs(n).filter((i) => !available.has(i));
      throw new FaceoptError('FACEOPT_ERR_GRAPH', { reason: `node ${n.name} (${n.opType}) waits for ${missing.join(', ')}, which nothing produces (or a cycle)` });
    }
    this.proto.node = sorted;
    this.invalidate();
  }

  /** Remove nodes and initializers that no graph output depends on (works in any node order). */
  pruneUnused(): number {
    const producer = new Map<string, NodeProto>();
    for (const n of this.nodes) for (const o of n.output ?? []) if (o) producer.set(o, n);
    const needed = new Set<string>();
    const keep = new Set<NodeProto>();
    const work = this.proto.output!.map((o) => o.name ?? '');
    while (work.length) {
      const t = work.pop()!;
      if (needed.has(t)) continue;
      needed.add(t);
      const n = producer.get(t);
      if (!n || keep.has(n)) continue;
      keep.add(n);
      for (const x of n.input ?? []) if (x) work.push(x);
      for (const x of capturedInputs(n)) work.push(x);
    }
    const before = this.nodes.length;
    this.proto.node = this.nodes.filter((n) => keep.has(n));
    const dropped = new Set(this.proto.initializer!.filter((t) => !needed.has(t.name ?? '')).map((t) => t.name ?? ''));
    this.proto.initializer = this.proto.initializer!.filter((t) => needed.has(t.name ?? ''));
    // an initializer also listed as a graph input (IR<4) takes its input entry with it: left behind, it
    // would be an input the written model requires a feed for
    if (dropped.size) this.proto.input = this.proto.input!.filter((v) => !dropped.has(v.name ?? ''));
    this.proto.valueInfo = this.proto.valueInfo!.filter((v) => needed.has(v.name ?? ''));
    this.invalidate();
    return before - this.nodes.length;
  }

  /** Op histogram: op type -> count, sorted by count. */
  opHistogram(): Record<string, number> {
    const h: Record<string, number> = {};
    for (const n of this.nodes) {
      const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType ?? '?';
      h[key] = (h[key] ?? 0) + 1;
    }
    return Object.fromEntries(Object.entries(h).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  }
}
