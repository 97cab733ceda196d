/**
 * Protocol-buffer text format, strictly, for the part of Triton's `ModelConfig` (model_config.proto)
 * a model repository needs. protobufjs has no text-format parser, so this is a small one driven by a
 * schema table: unknown fields, wrong value types, unknown enum names, a singular field set twice and
 * syntax errors are refused with line and column. `printPbtxt` writes the same subset, so what faceopt
 * writes is exactly what it can read back.
 *
 * Grammar: `field: scalar`, `field { ... }` or `field: { ... }` (also `< ... >`), `field: [a, b]` for
 * repeated scalars, maps as repeated `{ key: .. value: .. }` entries, `#` comments, optional `,`/`;`
 * separators, adjacent string literals concatenated.
 *
 * Strings and integers follow the Text Format Language Specification
 * (https://protobuf.dev/reference/protobuf/textformat-spec/): the escapes \a \b \f \n \r \t \v \? \\ \'
 * \", octal \NNN and hex \xNN byte values, \uNNNN and \U000NNNNN / \U0010NNNN code points, and a string
 * field must be valid UTF-8 once unescaped (so byte escapes and adjacent literals are joined as bytes);
 * integers are decimal, octal (leading 0) or hex (0x), within their type's range. `printPbtxt` writes
 * \n \r \t \" \\ by name, other control characters as octal, everything else as UTF-8.
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

/** `bytes`: what a string literal stands for, undecoded (adjacent literals are joined before UTF-8 decoding). */
interface Token { kind: 'ident' | 'number' | 'string' | 'punct'; text: string; bytes?: Uint8Array; line: number; col: number }

/** The escapes of one character the spec names, with the byte each stands for. */
const NAMED_ESCAPES: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '?': 63, '\\': 92, "'": 39, '"': 34 };
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * Read the escape at `text[j]` (a backslash) into `bytes`; returns the index after it. `fail` ends
 * the parse with what is wrong.
 */
function readEscape(text: string, j: number, bytes: number[], fail: (msg: string) => never): number {
  const e = text[j + 1] ?? '';
  if (e in NAMED_ESCAPES) { bytes.push(NAMED_ESCAPES[e]!); return j + 2; }
  const oct = /^[0-7]{1,3}/.exec(text.slice(j + 1, j + 4));
  if (oct) {
    // up to three octal digits, one byte: \400 and over do not fit
    const v = Number.parseInt(oct[0], 8);
    if (v > 0xff) fail(`\\${oct[0]} is over \\377, the largest byte`);
    bytes.push(v);
    return j + 1 + oct[0].length;
  }
  if (e === 'x') {
    const hex = /^[0-9a-fA-F]{1,2}/.exec(text.slice(j + 2, j + 4));
    if (!hex) fail('\\x needs a hex digit');
    bytes.push(Number.parseInt(hex![0], 16));
    return j + 2 + hex![0].length;
  }
  if (e === 'u' || e === 'U') {
    const digits = text.slice(j + 2, j + (e === 'u' ? 6 : 10));
    const ok = e === 'u' ? /^[0-9a-fA-F]{4}$/.test(digits) : /^(000[0-9a-fA-F]{5}|0010[0-9a-fA-F]{4})$/.test(digits);
    if (!ok) fail(e === 'u' ? '\\u needs 4 hex digits' : '\\U needs 000 and 5 hex digits or 0010 and 4 (a code point up to 10FFFF)');
    const cp = Number.parseInt(digits, 16);
    // a code point, not a UTF-16 unit: a surrogate is no character (the spec calls C++'s pairing of them non-conforming)
    if (cp >= 0xd800 && cp <= 0xdfff) fail(`\\${e}${digits} is a surrogate, not a character`);
    bytes.push(...utf8(String.fromCodePoint(cp)));
    return j + (e === 'u' ? 6 : 10);
  }
  return fail(`unknown escape \\${e}`);
}

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
      let j = i + 1; const bytes: number[] = [];
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\n') fail('newline inside a string');
        if (text[j] === '\\') { j = readEscape(text, j, bytes, fail); continue; }
        const cp = text.codePointAt(j)!;
        bytes.push(...utf8(String.fromCodePoint(cp)));
        j += cp > 0xffff ? 2 : 1;
      }
      if (j >= text.length) fail('unterminated string');
      out.push({ kind: 'string', text: text.slice(i, j + 1), bytes: Uint8Array.from(bytes), ...at }); adv(j + 1 - i); continue;
    }
    if ('{}[]<>:,;'.includes(c)) { out.push({ kind: 'punct', text: c, ...at }); adv(1); continue; }
    fail(`unexpected ${JSON.stringify(c)}`);
  }
  return out;
}

type IntType = 'int32' | 'int64' | 'uint32' | 'uint64';

/** Each integer type's range (the spec's table: int32 -0x80000000 to 0x7FFFFFFF, uint32 0 to 0xFFFFFFFF, ...). */
const INT_RANGES: Readonly<Record<IntType, readonly [bigint, bigint]>> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

/**
 * The value of an integer literal: decimal, octal after a leading 0 (`017` is 15), or hex after 0x,
 * with an optional '-'; undefined for anything else (`1.5`, `1e3`, `08`). BigInt, so the 64-bit bounds
 * are compared exactly.
 */
function integerLiteral(text: string): { value: bigint; negative: boolean } | undefined {
  const m = /^(-?)(?:(0[xX][0-9a-fA-F]+)|0([0-7]*)|([1-9][0-9]*))$/.exec(text);
  if (!m) return undefined;
  const v = m[2] !== undefined ? BigInt(m[2]) : m[3] !== undefined ? (m[3] ? BigInt(`0o${m[3]}`) : 0n) : BigInt(m[4]!);
  return { value: m[1] ? -v : v, negative: m[1] === '-' };
}

/** Why `value` (written `text`) is no value of `type` that faceopt can hold, or null. */
function integerProblem(field: string, text: string, value: bigint, negative: boolean, type: IntType): string | null {
  // unsigned types take no sign at all, not even -0 (the spec: "signed values (-0) are not valid")
  if (type.startsWith('u') && negative) return `${field}: ${text} must be >= 0`;
  const [lo, hi] = INT_RANGES[type];
  if (value < lo || value > hi) return `${field}: ${text} is out of range for ${type} (${lo} to ${hi})`;
  // valid for the type, but a JS number would round it: refused rather than read as a nearby value
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) return `${field}: ${text} cannot be held exactly here (faceopt reads integers up to 2^53-1)`;
  return null;
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
      const parts = [t.bytes!];
      while (peek()?.kind === 'string') parts.push(take().bytes!);
      try {
        // fatal: a string field must be valid UTF-8 (spec); ignoreBOM: a leading U+FEFF is part of the value
        return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.concat(parts));
      } catch {
        return fail(t, `${field}: the string is not valid UTF-8 once unescaped`);
      }
    }
    if (type === 'bool') {
      if (t.text === 'true' || t.text === '1' || t.text === 'True') return true;
      if (t.text === 'false' || t.text === '0' || t.text === 'False') return false;
      return fail(t, `${field}: expected true or false, found ${t.text}`);
    }
    if (t.kind !== 'number') fail(t, `${field}: expected a number, found ${t.text}`);
    if (type === 'float') return Number(t.text.replace(/[fF]$/, ''));
    const lit = integerLiteral(t.text);
    if (!lit) return fail(t, `${field}: ${t.text} is not an integer`);
    const problem = integerProblem(field, t.text, lit.value, lit.negative, type);
    if (problem) fail(t, problem);
    return Number(lit.value);
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
        // no prototype, and own keys only: a key such as "toString" or "__proto__" is a key like any other
        const m = (obj[t.text] ??= Object.create(null) as Record<string, PbValue>) as Record<string, PbValue>;
        const e = v as PbMessage;
        if (Object.hasOwn(m, String(e.key))) fail(t, `${t.text} has key ${String(e.key)} twice`);
        m[String(e.key)] = (e.value ?? '') as PbValue;
      } else if (spec!.repeated) {
        const arr = (obj[t.text] ??= []) as PbValue[];
        if (Array.isArray(v)) arr.push(...v); else arr.push(v);
      } else {
        if (Object.hasOwn(obj, t.text)) fail(t, `${t.text} is set twice`);
        obj[t.text] = v;
      }
      if (peek()?.text === ',' || peek()?.text === ';') p++;
    }
  };
  return message(type, null);
}

/** The characters printed as a named escape. */
const NAMED_OUT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '"': '\\"', '\\': '\\\\' };
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A double-quoted string literal holding `s`: \n \r \t \" \\ by name, other C0 control characters and
 * DEL as three-digit octal (JSON.stringify wrote \u0001, which is no text-format escape), the rest as
 * UTF-8. A lone surrogate has no UTF-8 form, so it is refused.
 */
function quote(s: string, field: string): string {
  if (LONE_SURROGATE.test(s)) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `${field}: ${JSON.stringify(s)} has a lone surrogate, which no UTF-8 text can hold` });
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += NAMED_OUT[ch] ?? (c < 0x20 || c === 0x7f ? `\\${c.toString(8).padStart(3, '0')}` : ch);
  }
  return `${out}"`;
}

function printScalar(v: PbValue, type: FieldType, field: string): string {
  if (typeof type === 'object' && 'enum' in type) return String(v);
  if (type === 'string') return quote(String(v), field);
  if (type === 'int32' || type === 'int64' || type === 'uint32' || type === 'uint64') {
    // what is printed must parse: the same range check as the parser
    const problem = typeof v === 'number' && Number.isSafeInteger(v)
      ? integerProblem(field, String(v), BigInt(v), v < 0, type)
      : `${field}: ${String(v)} is not an integer`;
    if (problem) throw new FaceoptError('FACEOPT_ERR_INTERNAL', { reason: `cannot print ${problem}` });
  }
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
          : `value: ${quote(String(val), `${name}.value`)}`;
        lines.push(`${indent}${name} { key: ${quote(k, `${name}.key`)} ${valueText} }`);
      }
    } else if (typeof t === 'object' && 'message' in t) {
      for (const m of spec.repeated ? (v as PbMessage[]) : [v as PbMessage]) {
        lines.push(`${indent}${name} {`, printPbtxt(m, t.message, schema, `${indent}  `).replace(/\n$/, ''), `${indent}}`);
      }
    } else if (spec.repeated) {
      lines.push(`${indent}${name}: [ ${(v as PbValue[]).map((x) => printScalar(x, t, name)).join(', ')} ]`);
    } else {
      lines.push(`${indent}${name}: ${printScalar(v, t, name)}`);
    }
  }
  return `${lines.filter((l) => l !== '').join('\n')}\n`;
}
