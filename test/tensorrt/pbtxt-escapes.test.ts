/**
 * Protobuf text format strings and integers, against the Text Format Language Specification
 * (protobuf.dev/reference/protobuf/textformat-spec): the escapes a string may hold (\a \b \f \n \r \t \v
 * \? \\ \' \", octal \NNN and hex \xNN byte values, \uNNNN and \U000NNNNN code points; a string field must
 * be valid UTF-8 once unescaped) and the integer ranges per type (int32 -0x80000000..0x7FFFFFFF, uint32
 * 0..0xFFFFFFFF, int64/uint64 likewise at 64 bits; octal literals start with 0).
 */
import { describe, expect, it } from 'vitest';
import { parsePbtxt, printPbtxt } from '../../pipeline/tensorrt/pbtxt.js';

/** Every escape in printed text must be one the spec lists (the parser reads all of them). */
const SPEC_ESCAPE = /\\(?:[abfnrtv?\\'"]|[0-7]{1,3}|x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{4}|U000[0-9a-fA-F]{5}|U0010[0-9a-fA-F]{4})/y;

function escapesInSpec(text: string): boolean {
  for (let i = text.indexOf('\\'); i >= 0; i = text.indexOf('\\', i)) {
    SPEC_ESCAPE.lastIndex = i;
    const m = SPEC_ESCAPE.exec(text);
    if (!m) return false;
    i += m[0].length;
  }
  return true;
}

const ASCII = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c));
const NON_ASCII = ['é', 'ß', '中文', '😀', '\u0080', '\u00a0', '\u2028', '\ufeff', '\u{10ffff}'];

describe('pbtxt strings: print writes only spec escapes, and print -> parse returns every string', () => {
  it.each(ASCII.map((c) => [c.charCodeAt(0), c] as const))('char %i', (_, c) => {
    const value = `a${c}b`;
    const text = printPbtxt({ name: value });
    expect(escapesInSpec(text), text).toBe(true);
    expect(text.split('\n').length).toBe(2); // one line: a raw newline would end the string
    expect(parsePbtxt(text)).toEqual({ name: value });
  });

  it('all of 0..127 at once, also as a map key and a map value', () => {
    const all = ASCII.join('');
    const cfg = { name: all, parameters: { [all]: { string_value: all } } };
    const text = printPbtxt(cfg);
    expect(escapesInSpec(text)).toBe(true);
    expect(parsePbtxt(text)).toEqual(cfg);
  });

  it.each(NON_ASCII)('non-ASCII %j is written as UTF-8 and read back', (s) => {
    const text = printPbtxt({ name: `x${s}y` });
    expect(text).toBe(`name: "x${s}y"\n`);
    expect(parsePbtxt(text)).toEqual({ name: `x${s}y` });
  });

  it('control characters become octal escapes (not JSON\'s \\u0001, \\b, \\f)', () => {
    expect(printPbtxt({ name: '\u0001\b\f\u007f' })).toBe('name: "\\001\\010\\014\\177"\n');
    expect(printPbtxt({ name: '\n\r\t"\\\'' })).toBe('name: "\\n\\r\\t\\"\\\\\'"\n');
  });

  it('a string that is not well-formed UTF-16 (a lone surrogate) cannot be printed', () => {
    expect(() => printPbtxt({ name: 'a\ud800b' })).toThrow(/lone surrogate/);
  });
});

describe('pbtxt strings: the parser reads every escape of the spec', () => {
  it.each([
    ['\\a\\b\\f\\n\\r\\t\\v', '\x07\b\f\n\r\t\v'],
    ['\\?\\\\\\\'\\"', '?\\\'"'],
    ['\\0\\12\\101\\1014', '\0\nAA4'], // octal takes up to three digits
    ['\\x41\\x4a\\x7', 'AJ\x07'], // hex takes up to two digits
    ['\\x413', 'A3'],
    ['\\303\\251', 'é'], // byte escapes of a UTF-8 sequence
    ['\\xc3\\xa9', 'é'],
    ['\\u00e9\\u4e2d', 'é中'],
    ['\\U0001F600\\U0010FFFF', '😀\u{10ffff}'],
  ])('"%s"', (body, value) => {
    expect(parsePbtxt(`name: "${body}"`)).toEqual({ name: value });
  });

  it('adjacent literals are joined as bytes before UTF-8 decoding', () => {
    expect(parsePbtxt('name: "\\303" \'\\251\'')).toEqual({ name: 'é' });
  });

  it.each([
    ['\\q', /unknown escape \\q/],
    ['\\x', /\\x needs a hex digit/],
    ['\\u12', /\\u needs 4 hex digits/],
    ['\\U00110000', /\\U needs/],
    ['\\ud800', /surrogate/],
    ['\\377', /not valid UTF-8/],
    ['\\303', /not valid UTF-8/],
  ])('refuses "%s"', (body, msg) => {
    expect(() => parsePbtxt(`name: "${body}"`)).toThrow(msg);
  });
});

describe('pbtxt integers: exact ranges per type', () => {
  // int32 fields: max_batch_size (ModelConfig), count (ModelInstanceGroup); uint32: max_queue_size
  // (ModelQueuePolicy); int64: dims (ModelInput); uint64: max_queue_delay_microseconds (ModelDynamicBatching)
  const int32 = (v: string) => parsePbtxt(`max_batch_size: ${v}`).max_batch_size;
  const uint32 = (v: string) => (parsePbtxt(`dynamic_batching { default_queue_policy { max_queue_size: ${v} } }`) as any).dynamic_batching.default_queue_policy.max_queue_size;
  const int64 = (v: string) => (parsePbtxt(`input { dims: ${v} }`) as any).input[0].dims[0];
  const uint64 = (v: string) => (parsePbtxt(`dynamic_batching { max_queue_delay_microseconds: ${v} }`) as any).dynamic_batching.max_queue_delay_microseconds;

  it('int32: -2^31 and 2^31-1 are read, one past either is out of range', () => {
    expect(int32('2147483647')).toBe(2147483647);
    expect(int32('-2147483648')).toBe(-2147483648);
    expect(int32('0x7fffffff')).toBe(2147483647);
    expect(int32('-0x80000000')).toBe(-2147483648);
    expect(() => int32('2147483648')).toThrow(/max_batch_size: 2147483648 is out of range for int32/);
    expect(() => int32('-2147483649')).toThrow(/out of range for int32/);
    expect(() => int32('0x80000000')).toThrow(/out of range for int32/);
    expect(() => int32('4294967295')).toThrow(/out of range for int32/);
  });

  it('uint32: 0 and 2^32-1 are read; 2^32 and any negative (also -0) are refused', () => {
    expect(uint32('0')).toBe(0);
    expect(uint32('4294967295')).toBe(4294967295);
    expect(uint32('0xffffffff')).toBe(4294967295);
    expect(() => uint32('4294967296')).toThrow(/out of range for uint32/);
    expect(() => uint32('-1')).toThrow(/must be >= 0/);
    expect(() => uint32('-0')).toThrow(/must be >= 0/);
  });

  it('int64/uint64: in range but past 2^53 is refused as not exactly readable; past 64 bits as out of range', () => {
    expect(int64('-9007199254740991')).toBe(-9007199254740991);
    expect(uint64('9007199254740991')).toBe(9007199254740991);
    expect(() => int64('9223372036854775807')).toThrow(/cannot be held exactly/);
    expect(() => int64('9223372036854775808')).toThrow(/out of range for int64/);
    expect(() => int64('-9223372036854775809')).toThrow(/out of range for int64/);
    expect(() => uint64('18446744073709551615')).toThrow(/cannot be held exactly/);
    expect(() => uint64('18446744073709551616')).toThrow(/out of range for uint64/);
    expect(() => uint64('-1')).toThrow(/must be >= 0/);
  });

  it('integer literals: octal with a leading 0, hex with 0x; floats and exponents are not integers', () => {
    expect(int32('017')).toBe(15);
    expect(int32('0')).toBe(0);
    expect(int32('-0x10')).toBe(-16);
    expect(() => int32('1e3')).toThrow(/not an integer/);
    expect(() => int32('08')).toThrow(/not an integer/);
    expect(() => int32('1.5')).toThrow(/not an integer/);
  });

  it('print refuses an integer its type cannot hold, so what it writes parses', () => {
    expect(printPbtxt({ max_batch_size: 2147483647 })).toBe('max_batch_size: 2147483647\n');
    expect(() => printPbtxt({ max_batch_size: 2147483648 })).toThrow(/max_batch_size: 2147483648 is out of range for int32/);
    expect(() => printPbtxt({ max_batch_size: 1.5 })).toThrow(/not an integer/);
    expect(() => printPbtxt({ dynamic_batching: { max_queue_delay_microseconds: -1 } })).toThrow(/must be >= 0/);
  });
});
