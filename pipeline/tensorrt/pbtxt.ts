/**
 * Protocol-buffer text format, strictly, for the part of Triton's `ModelConfig` (model_config.proto)
 * a model repository needs. protobufjs has no text-format parser, so this is a small one driven by a
 * schema table: unknown fields, wrong value types, unknown enum names, a singular field set twice and
 * syntax errors are refused with line and column. `printPbtxt` writes the same subset, so what faceopt
 * writes is exactly what it can read back.
 *
 * Grammar: `field: scalar`, `field { ... }` or `field: { ... }` (also `< ... >`), `field: [a, b]` for
 * repeated scalars, maps as repeated `{ key: .. value: .. }` entries, `#` comments, optional `,`/`;`
 * separators, adjacent string literals concatenated, C-style string escapes.
 */
import { FaceoptError } from '../errors.js';

type Scalar = 'string' | 'int32' | 'int64' | 'uint32' | 'uint64' | 'bool' | 'float';
export type FieldType = Scalar | { enum: readonly string[] } | { message: string } | { map: [Scalar, Scalar | { message: string }] };
export interface FieldSpec { type: FieldType; repeated?: boolean }
export type Schema = Readonly<Record<string, Readonly<Record<string, FieldSpec>>>>;

const S = (type: FieldType, repeated = false): FieldSpec => ({ type, repeated });
const DATA_TYPES = ['TYPE_INVALID', 'TYPE_BOOL', 'TYPE_UINT8', 'TYPE_UINT16', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_INT8', 'TYPE_INT16', 'TYPE_INT32', 'TYPE_INT64', 'TYPE_FP16', 'TYPE_FP32', 'TYPE_FP64', 'TYPE_STRING', 'TYPE_BF16'];

/** The ModelConfig subset (field names and types from triton-inference-server/common model_config.proto). */
export const TRITON_SCHEMA: Schema = {
  ModelConfig: {
    name: S('string'), platform: S('string'), backend: S('string'), runtime: S('string'), max_batch_size: S('int32'),
    input: S({ message: 'ModelInput' }, true), output: S({ message: 'ModelOutput' }, true),
    optimization: S({ message: 'ModelOptimizationPolicy' }), dynamic_batching: S({ message: 'ModelDynamicBatching' }),
    instance_group: S({ message: 'ModelInstanceGroup' }, true), default_model_filename: S('string'),
    cc_model_filenames: S({ map: ['string', 'string'] }), metric_tags: S({ map: ['string', 'string'] }),
    parameters: S({ map: ['string', { message: 'ModelParameter' }] }),
  },
  ModelInput: {
    name: S('string'), data_type: S({ enum: DATA_TYPES }), format: S({ enum: ['FORMAT_NONE', 'FORMAT_NHWC', 'FORMAT_NCHW'] }),
    dims: S('int64', true), reshape: S({ message: 'ModelTensorReshape' }), is_shape_tensor: S('bool'),
    allow_ragged_batch: S('bool'), optional: S('bool'),
  },
  ModelOutput: {
    name: S('string'), data_type: S({ enum: DATA_TYPES }), dims: S('int64', true), reshape: S({ message: 'ModelTensorReshape' }),
    label_filename: S('string'), is_shape_tensor: S('bool'),
  },
  ModelTensorReshape: { shape: S('int64', true) },
  ModelInstanceGroup: {
    name: S('string'), kind: S({ enum: ['KIND_AUTO', 'KIND_GPU', 'KIND_CPU', 'KIND_MODEL'] }), count: S('int32'),
    gpus: S('int32', true), profile: S('string', true), passive: S('bool'), host_policy: S('string'),
  },
  ModelDynamicBatching: {
    preferred_batch_size: S('int32', true), max_queue_delay_microseconds: S('uint64'), preserve_ordering: S('bool'),
    priority_levels: S('uint64'), default_priority_level: S('uint64'), default_queue_policy: S({ message: 'ModelQueuePolicy' }),
  },
  ModelQueuePolicy: {
    timeout_action: S({ enum: ['REJECT', 'DELAY'] }), default_timeout_microseconds: S('uint64'),
    allow_timeout_override: S('bool'), max_queue_size: S('uint32'),
  },
  ModelOptimizationPolicy: {
    graph: S({ message: 'Graph' }), priority: S({ enum: ['PRIORITY_DEFAULT', 'PRIORITY_MAX', 'PRIORITY_MIN'] }),
    cuda: S({ message: 'Cuda' }), execution_accelerators: S({ message: 'ExecutionAccelerators' }),
    input_pinned_memory: S({ message: 'PinnedMemoryBuffer' }), output_pinned_memory: S({ message: 'PinnedMemoryBuffer' }),
    gather_kernel_buffer_threshold: S('uint32'), eager_batching: S('bool'),
  },
  Graph: { level: S('int32') },
  Cuda: { graphs: S('bool'), busy_wait_events: S('bool'), output_copy_stream: S('bool') },
  ExecutionAccelerators: { gpu_execution_accelerator: S({ message: 'Accelerator' }, true), cpu_execution_accelerator: S({ message: 'Accelerator' }, true) },
  Accelerator: { name: S('string'), parameters: S({ map: ['string', 'string'] }) },
  PinnedMemoryBuffer: { enable: S('bool') },
  ModelParameter: { string_value: S('string') },
};

export type PbValue = string | number | boolean | PbMessage | PbValue[] | Record<string, unknown>;
export interface PbMessage { [field: string]: PbValue }

interface Token { kind: 'ident' | 'number' | 'string' | 'punct'; text: string; value?: string; line: number; col: number }

function tokenize(text: string, where: string): Token[] {
  const out: Token[] = [];
  let i = 0; let line = 1; let col = 1;
  const fail = (msg: string): never => { throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: `${where} line ${line} column ${col}`, expected: 'protobuf text format', received: msg }); };
  const adv = (n: number) => { for (let k = 0; k < n; k++) { if (text[i] === '\n') { line++; col = 1; } else col++; i++; } };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '#') { while (i < text.length && text[i] !== '\n') adv(1); continue; }
    if (/\s/.test(c)) { adv(1); continue; }
    const at = { line, col };
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i))![0];
      out.push({ kind: 'ident', text: m, ...at }); adv(m.length); continue;
    }
    if (/[-+0-9.]/.test(c)) {
      const m = /^[-+]?(0x[0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[fF]?|inf|nan)/i.exec(text.slice(i));
      if (!m) fail(`unexpected ${JSON.stringify(c)}`);
      out.push({ kind: 'number', text: m![0], ...at }); adv(m![0].length); continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1; let value = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\n') fail('newline inside a string');
        if (text[j] === '\\') {
          const e = text[j + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'" };
          if (e === undefined || !(e in map)) fail(`unknown escape \\${e ?? ''}`);
          value += map[e!]; j += 2; continue;
        }
        value += text[j]; j++;
      }
      if (j >= text.length) fail('unterminated string');
      out.push({ kind: 'string', text: text.slice(i, j + 1), value, ...at }); adv(j + 1 - i); continue;
    }
    if ('{}[]<>:,;'.includes(c)) { out.push({ kind: 'punct', text: c, ...at }); adv(1); continue; }
    fail(`unexpected ${JSON.stringify(c)}`);
  }
  return out;
}

/** Parse text into a plain object for `type` (default ModelConfig), refusing anything outside the schema. */
export function parsePbtxt(text: string, type = 'ModelConfig', schema: Schema = TRITON_SCHEMA, where = 'config.pbtxt'): PbMessage {
  const toks = tokenize(text, where);
  let p = 0;
  const fail = (t: Token | undefined, msg: string): never => {
    throw new FaceoptError('FACEOPT_ERR_BAD_ARGUMENT', { name: `${where} line ${t?.line ?? 'end'} column ${t?.col ?? ''}`.trim(), expected: 'a valid Triton model configuration', received: msg });
  };
  const peek = () => toks[p];
  const take = (text?: string) => { const t = toks[p]; if (!t || (text !== undefined && t.text !== text)) fail(t, `expected ${text ?? 'a token'}, found ${t?.text ?? 'end of file'}`); p++; return t!; };

  const scalar = (type: Scalar | { enum: readonly string[] }, field: string): string | number | boolean => {
    const t = take();
    if (typeof type === 'object') {
      if (t.kind !== 'ident' || !type.enum.includes(t.text)) fail(t, `${field}: ${t.text} is not one of ${type.enum.join(', ')}`);
      return t.text;
    }
    if (type === 'string') {
      if (t.kind !== 'string') fail(t, `${field}: expected a string, found ${t.text}`);
      let v = t.value!;
      while (peek()?.kind === 'string') v += take().value!;
      return v;
    }
    if (type === 'bool') {
      if (t.text === 'true' || t.text === '1' || t.text === 'True') return true;
      if (t.text === 'false' || t.text === '0' || t.text === 'False') return false;
      return fail(t, `${field}: expected true or false, found ${t.text}`);
    }
    if (t.kind !== 'number') fail(t, `${field}: expected a number, found ${t.text}`);
    if (type === 'float') return Number(t.text.replace(/[fF]$/, ''));
    const n = t.text.toLowerCase().startsWith('0x') || t.text.toLowerCase().startsWith('-0x') ? Number.parseInt(t.text, 16) : Number(t.text);
    if (!Number.isSafeInteger(n)) fail(t, `${field}: ${t.text} is not an integer`);
    if ((type === 'uint32' || type === 'uint64') && n < 0) fail(t, `${field}: ${t.text} must be >= 0`);
    if ((type === 'int32' || type === 'uint32') && Math.abs(n) > 0xffffffff) fail(t, `${field}: ${t.text} is out of range`);
    return n;
  };

  const message = (type: string, close: string | null): PbMessage => {
    const fields = schema[type];
    if (!fields) return fail(peek(), `unknown message type ${type}`);
    const obj: PbMessage = {};
    for (;;) {
      const t = peek();
      if (!t) { if (close) fail(t, `expected ${close}`); return obj; }
      if (close && t.text === close && t.kind === 'punct') { p++; return obj; }
      if (t.kind !== 'ident') fail(t, `expected a field name, found ${t.text}`);
      p++;
      const spec = fields[t.text];
      if (!spec) fail(t, `${type} has no field ${t.text}`);
      const ft = spec!.type;
      const isMsg = typeof ft === 'object' && ('message' in ft || 'map' in ft);
      const openBrace = (what: string): string => {
        if (peek()?.text === ':') p++;
        const open = take();
        if (open.text !== '{' && open.text !== '<') fail(open, `${what}: expected {`);
        return open.text === '{' ? '}' : '>';
      };
      /** One `{ key: .. value: .. }` entry of a map field. */
      const mapEntry = (valueType: Scalar | { message: string }, end: string): PbMessage => {
        const o: PbMessage = {};
        for (;;) {
          const k = peek();
          if (!k) return fail(k, `expected ${end}`);
          if (k.text === end && k.kind === 'punct') { p++; break; }
          if (k.kind !== 'ident' || (k.text !== 'key' && k.text !== 'value')) fail(k, `map entry of ${t.text} has no field ${k.text}`);
          p++;
          if (k.text in o) fail(k, `map entry of ${t.text} sets ${k.text} twice`);
          if (k.text === 'value' && typeof valueType === 'object') o.value = message(valueType.message, openBrace(k.text));
          else { take(':'); o[k.text] = scalar(k.text === 'key' ? 'string' : (valueType as Scalar), `${t.text}.${k.text}`); }
          if (peek()?.text === ',' || peek()?.text === ';') p++;
        }
        if (!('key' in o)) fail(peek(), `map entry of ${t.text} has no key`);
        return o;
      };
      const readOne = (): PbValue => {
        if (isMsg && spec!.repeated && (peek()?.text === '[' || (peek()?.text === ':' && toks[p + 1]?.text === '['))) {
          if (peek()?.text === ':') p++;
          p++;
          const list: PbValue[] = [];
          while (peek()?.text !== ']') {
            if (!peek()) fail(peek(), `${t.text}: expected ]`);
            const open = take();
            if (open.text !== '{' && open.text !== '<') fail(open, `${t.text}: expected {`);
            list.push(message((ft as { message: string }).message, open.text === '{' ? '}' : '>'));
            if (peek()?.text === ',') p++; else if (peek()?.text !== ']') fail(peek(), `${t.text}: expected , or ]`);
          }
          p++;
          return list;
        }
        if (isMsg) {
          const end = openBrace(t.text);
          if ('map' in (ft as object)) return mapEntry((ft as { map: [Scalar, Scalar | { message: string }] }).map[1], end);
          return message((ft as { message: string }).message, end);
        }
        take(':');
        if (spec!.repeated && peek()?.text === '[') {
          p++;
          const list: PbValue[] = [];
          while (peek()?.text !== ']') {
            list.push(scalar(ft as Scalar, t.text));
            if (peek()?.text === ',') p++; else if (peek()?.text !== ']') fail(peek(), `${t.text}: expected , or ]`);
          }
          p++;
          return list;
        }
        return scalar(ft as Scalar, t.text);
      };
      const v = readOne();
      if (typeof ft === 'object' && 'map' in ft) {
        const m = (obj[t.text] ??= {}) as Record<string, PbValue>;
        const e = v as PbMessage;
        if (String(e.key) in m) fail(t, `${t.text} has key ${String(e.key)} twice`);
        m[String(e.key)] = (e.value ?? '') as PbValue;
      } else if (spec!.repeated) {
        const arr = (obj[t.text] ??= []) as PbValue[];
        if (Array.isArray(v)) arr.push(...v); else arr.push(v);
      } else {
        if (t.text in obj) fail(t, `${t.text} is set twice`);
        obj[t.text] = v;
      }
      if (peek()?.text === ',' || peek()?.text === ';') p++;
    }
  };
  return message(type, null);
}

function printScalar(v: PbValue, type: FieldType): string {
  if (typeof type === 'object' && 'enum' in type) return String(v);
  if (type === 'string') return JSON.stringify(String(v));
  return String(v);
}

/** Write a plain object as text format for `type`, in schema field order; refuses fields outside the schema. */
export function printPbtxt(obj: PbMessage, type = 'ModelConfig', schema: Schema = TRITON_SCHEMA, indent = ''): string {
  const fields = schema[type];
  if (!fields) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `no schema for ${type}` });
  for (const k of Object.keys(obj)) if (!fields[k]) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `${type} has no field ${k}` });
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(fields)) {
    const v = obj[name];
    if (v === undefined) continue;
    const t = spec.type;
    if (typeof t === 'object' && 'map' in t) {
      for (const [k, val] of Object.entries(v as Record<string, PbValue>)) {
        const valueText = typeof t.map[1] === 'object'
          ? `value { ${printPbtxt(val as PbMessage, t.map[1].message, schema, '').trim().replace(/\n/g, ' ')} }`
          : `value: ${JSON.stringify(String(val))}`;
        lines.push(`${indent}${name} { key: ${JSON.stringify(k)} ${valueText} }`);
      }
    } else if (typeof t === 'object' && 'message' in t) {
      for (const m of spec.repeated ? (v as PbMessage[]) : [v as PbMessage]) {
        lines.push(`${indent}${name} {`, printPbtxt(m, t.message, schema, `${indent}  `).replace(/\n$/, ''), `${indent}}`);
      }
    } else if (spec.repeated) {
      lines.push(`${indent}${name}: [ ${(v as PbValue[]).map((x) => printScalar(x, t)).join(', ')} ]`);
    } else {
      lines.push(`${indent}${name}: ${printScalar(v, t)}`);
    }
  }
  return `${lines.filter((l) => l !== '').join('\n')}\n`;
}
