import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderErrorsDoc } from '../../pipeline/errors-doc.js';
import { ERRORS, FaceoptError, MODEL_FILE_HINT, checkNumber, formatMessage } from '../../pipeline/errors.js';

describe('error table', () => {
  it('docs/errors.md matches the table (run `npm run docs:errors` after changing pipeline/errors.ts)', () => {
    expect(readFileSync('docs/errors.md', 'utf8')).toBe(renderErrorsDoc());
  });
  it('every code is FACEOPT_ERR_*, with a non-zero exit and an HTTP status', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^FACEOPT_ERR_[A-Z0-9_]+$/);
      expect(spec.exit).toBeGreaterThan(0);
      expect(spec.http).toBeGreaterThanOrEqual(400);
      expect(spec.message.length).toBeGreaterThan(10);
    }
  });
  it('fills templates and names the parameter in argument errors', () => {
    const e = new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: '/x.onnx' });
    expect(e.message).toBe('File not found: /x.onnx. Check the path.');
    expect(e.exitCode).toBe(66);
    // an optional {hint?} is filled when given, dropped when not; a missing required one stays visible
    expect(new FaceoptError('FACEOPT_ERR_FILE_NOT_FOUND', { path: '/x.onnx', hint: MODEL_FILE_HINT }).message).toBe(`File not found: /x.onnx. Check the path${MODEL_FILE_HINT}.`);
    expect(formatMessage('{a} and {b?} and {c}', { a: 1 })).toBe('1 and  and {c}');
    expect(() => checkNumber('batch', 0, { min: 1, max: 64, integer: true })).toThrow('Expected integer between 1 and 64 for batch but received 0');
    expect(checkNumber('batch', '8', { min: 1, integer: true })).toBe(8);
  });
});
