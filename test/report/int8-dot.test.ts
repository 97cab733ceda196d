/**
 * The instructions onnxruntime's int8 kernels multiply with (provenance.machine.int8Dot): read from
 * /proc/cpuinfo's flags, shown in the report's CPU row and the summary, optional in the schema (older
 * reports have none).
 */
import { describe, expect, it } from 'vitest';
import { int8DotInstructions } from '../../pipeline/cpu-features.js';
import { machineInfo } from '../../pipeline/evaluate/evaluate.js';
import { renderMarkdown } from '../../pipeline/report/markdown.js';
import { terminalSummary } from '../../pipeline/report/summary.js';
import { validateReport } from '../../pipeline/report/index.js';
import { int8HostNote } from '../../server/models.js';
import { exampleRecognizerReport } from './example.js';

const cpuinfo = (flags: string) => `processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: ${flags}\nbugs\t\t: sysret_ss_attrs\n`;

describe('int8 dot-product instructions', () => {
  it('tells VNNI from the saturating AVX2/AVX-512 path by the cpuinfo flags', () => {
    expect(int8DotInstructions(cpuinfo('fpu sse4_1 avx2 avx512f avx512bw avx512_vnni'))).toBe('AVX-512 VNNI');
    expect(int8DotInstructions(cpuinfo('fpu sse4_1 avx2 avx_vnni'))).toBe('AVX-VNNI');
    expect(int8DotInstructions(cpuinfo('fpu sse4_1 avx2 avx512f avx512bw'))).toBe('AVX-512 without VNNI');
    expect(int8DotInstructions(cpuinfo('fpu sse4_1 sse4_2 avx avx2 fma'))).toBe('AVX2 without VNNI');
    expect(int8DotInstructions(cpuinfo('fpu sse sse2 ssse3 sse4_1'))).toBe('SSE');
    expect(int8DotInstructions('no flags line')).toBeNull();
  });
  it('is recorded in this machine\'s provenance where it can be told, and shown in the report and summary', () => {
    const m = machineInfo();
    if (process.platform === 'linux' && process.arch === 'x64') expect(m.int8Dot).toMatch(/VNNI|SSE/);
    const r = exampleRecognizerReport();
    r.provenance.machine = { ...r.provenance.machine, int8Dot: 'AVX2 without VNNI' };
    expect(() => validateReport(r)).not.toThrow();
    expect(renderMarkdown(r)).toContain('(2 cores; int8 kernels: AVX2 without VNNI)');
    expect(terminalSummary(r, 'reports/x')).toContain('(2 cores, int8 kernels: AVX2 without VNNI)');
    // an older report without the field still validates and reads as before
    const old = exampleRecognizerReport();
    expect(() => validateReport(old)).not.toThrow();
    expect(renderMarkdown(old)).toContain('(2 cores) |');
  });
});

describe('serving an int8 variant on another kind of CPU', () => {
  it('notes a report measured with VNNI served where int8 sums saturate, unless its weights are 7-bit', () => {
    const r = exampleRecognizerReport();
    r.provenance.machine = { ...r.provenance.machine, int8Dot: 'AVX-512 VNNI' };
    expect(int8HostNote(r, 'AVX2 without VNNI')).toMatch(/with AVX-512 VNNI; this one has AVX2 without VNNI, where onnxruntime's int8 kernels can saturate.*--reduce-range/);
    expect(int8HostNote(r, 'AVX-512 VNNI')).toBeNull();
    expect(int8HostNote(r, 'AVX-VNNI')).toBeNull(); // exact sums either way
    expect(int8HostNote(r, null)).toBeNull(); // not told here (not Linux x86)
    const reduced = { ...r, provenance: { ...r.provenance, calibration: { ...r.provenance.calibration!, config: { ...r.provenance.calibration!.config, weightBits: 7 } } } };
    expect(int8HostNote(reduced, 'AVX2 without VNNI')).toBeNull();
    const narrower = { ...r, provenance: { ...r.provenance, calibration: { ...r.provenance.calibration!, config: { ...r.provenance.calibration!.config, weightBits: 6 } } } };
    expect(int8HostNote(narrower, 'AVX2 without VNNI')).toBeNull(); // 6-bit weights (library API) cannot saturate either
    const float = { ...r, variant: { ...r.variant, precision: 'fp32' } };
    expect(int8HostNote(float, 'AVX2 without VNNI')).toBeNull();
    const older = exampleRecognizerReport(); // no int8Dot recorded
    expect(int8HostNote(older, 'AVX2 without VNNI')).toBeNull();
  });
});
