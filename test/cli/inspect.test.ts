import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { oneInt8OneFloatConv } from '../onnx/tiny.js';
import { faceopt } from '../helpers/cli.js';
import { describeShared, shared } from '../helpers/shared.js';

describeShared('faceopt inspect on the shared models', () => {
  it('mobileface: opset 9, Conv 50, PRelu 33, 128-d recognizer', () => {
    const r = faceopt(['inspect', shared('models', 'mobileface_paddle_128d.onnx'), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.opsets['ai.onnx']).toBe(9);
    expect(j.irVersion).toBe(4);
    expect(j.ops.Conv).toBe(50);
    expect(j.ops.PRelu).toBe(33);
    expect(j.role).toBe('recognizer');
    expect(j.profile.embeddingSize).toBe(128);
    expect(j.profile.mean).toEqual([127.5, 127.5, 127.5]);
    expect(j.parameters).toBe(993344); // weights only: the Reshape shape constant (int64) is not a parameter
    expect(j.quantized.isQuantized).toBe(false);
    expect(j.floatLayers).toBeNull();
    expect(j.macs.total).toBeGreaterThan(1e8);
    expect(j.inputs[0].shape[0]).toBeTypeOf('string');
  });
  for (const file of ['scrfd_500m_bnkps.onnx', 'scrfd_500m_bnkps_dynamic.onnx']) {
    it(`${file}: SCRFD detector with keypoints`, () => {
      const r = faceopt(['inspect', shared('models', file), '--json']);
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.role).toBe('detector');
      expect(j.roleDescription).toMatch(/with keypoints/);
      expect(j.profile.outputs.kps).toHaveLength(3);
      expect(j.profile.std).toEqual([128, 128, 128]);
      expect(j.ops.Conv).toBe(60);
      // the same weights in both exports: identical MACs at 640x640
      expect(j.macs.total).toBeGreaterThan(5e8);
      expect(j.macs.total).toBeLessThan(8e8);
    });
  }
  it('text output names the role and MACs', () => {
    const r = faceopt(['inspect', shared('models', 'scrfd_500m_bnkps.onnx')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/role: SCRFD detector with keypoints/);
    expect(r.stdout).toMatch(/MACs: [\d.]+ [MG]/);
    // one number where every channel shares it
    expect(r.stdout).toContain('preprocessing: RGB NCHW, (x - 127.5) / 128, input 640x640');
  });
});

describe('faceopt inspect on a quantized graph', () => {
  it('names the weighted layers that still compute in float', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-inspect-'));
    const m = oneInt8OneFloatConv();
    const file = path.join(dir, 'q.onnx');
    writeFileSync(file, m.toBytes());
    const j = JSON.parse(faceopt(['inspect', file, '--json']).stdout);
    expect(j.quantized.isQuantized).toBe(true);
    expect(j.floatLayers).toEqual([{ layer: 'n0', op: 'Conv' }]);
    expect(faceopt(['inspect', file]).stdout).toContain('  float layers: 1 weighted layer(s) compute in float (n0)\n');
  });
  it('--bytes: where the file\'s bytes go, in text and JSON, adding up to the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-inspect-'));
    const file = path.join(dir, 'q.onnx');
    const bytes = oneInt8OneFloatConv().toBytes();
    writeFileSync(file, bytes);
    expect(JSON.parse(faceopt(['inspect', file, '--json']).stdout).bytes).toBeUndefined();
    const j = JSON.parse(faceopt(['inspect', file, '--json', '--bytes']).stdout);
    expect(j.bytes.total).toBe(bytes.length);
    expect(j.bytes.parts.reduce((s: number, p: { bytes: number }) => s + p.bytes, 0)).toBe(bytes.length);
    expect(j.bytes.parts.map((p: { part: string }) => p.part)).toEqual(expect.arrayContaining(['int8 weights', 'weight scales', 'float weights', 'graph nodes']));
    const text = faceopt(['inspect', file, '--bytes']).stdout;
    expect(text).toContain(`  bytes: ${bytes.length}\n`);
    expect(text).toMatch(/\n {4}int8 weights +\d+ +[\d.]+% {2}\(1 initializer\)\n/);
    expect(text).not.toContain('the file itself has');
    // a file another tool encoded otherwise (here: an unknown field, which decoding skips): the parts are
    // faceopt's encoding, and the line says the file's own size (the total silently differed from it)
    const other = path.join(dir, 'other-encoder.onnx');
    writeFileSync(other, Buffer.concat([bytes, Buffer.from([0x98, 0x06, 0x01])]));
    expect(JSON.parse(faceopt(['inspect', other, '--json', '--bytes']).stdout).bytes).toMatchObject({ total: bytes.length, fileBytes: bytes.length + 3 });
    expect(faceopt(['inspect', other, '--bytes']).stdout).toContain(`(measured as faceopt encodes the graph: the file itself has ${bytes.length + 3} bytes, encoded by another tool)`);
  });
});

describe('faceopt inspect on bad input: one line, non-zero exit, no stack trace', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'faceopt-cli-'));
  writeFileSync(path.join(dir, 'notes.onnx'), 'this is not a model\n'.repeat(20));
  const cases: [string, string[], string, number][] = [
    ['missing file', ['inspect', path.join(dir, 'missing.onnx')], 'FACEOPT_ERR_FILE_NOT_FOUND', 66],
    ['non-ONNX file', ['inspect', path.join(dir, 'notes.onnx')], 'FACEOPT_ERR_NOT_ONNX', 65],
    ['unknown pack', ['inspect', 'buffalo_xxl/w600k_r50.onnx'], 'FACEOPT_ERR_UNKNOWN_PACK', 64],
    ['bad --det-size', ['inspect', path.join(dir, 'notes.onnx'), '--det-size', '0'], 'FACEOPT_ERR_BAD_ARGUMENT', 64],
  ];
  for (const [name, args, code, exit] of cases) {
    it(name, () => {
      const r = faceopt(args, { env: { FACEOPT_MODELS: dir } });
      expect(r.code).toBe(exit);
      expect(r.stderr.trim().split('\n')[0]).toContain(code);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
  describeShared('truncated model', () => {
    it('gives FACEOPT_ERR_MODEL_TRUNCATED', () => {
      const bytes = readFileSync(shared('models', 'mobileface_paddle_128d.onnx'));
      const cut = path.join(dir, 'cut.onnx');
      writeFileSync(cut, bytes.subarray(0, 1_000_000));
      const r = faceopt(['inspect', cut]);
      expect(r.code).toBe(65);
      expect(r.stderr).toContain('FACEOPT_ERR_MODEL_TRUNCATED');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
  });
});
