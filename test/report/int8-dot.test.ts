/**
 * The instructions onnxruntime's int8 kernels multiply with (provenance.machine.int8Dot): read from
 * /proc/cpuinfo's flags, shown in the report's CPU row and the summary, optional in the schema (older
 * reports have none).
 */
import { describe, expect, it } from 'vitest';
import { int8DotInstructions, machineInfo } from '../../pipeline/evaluate/evaluate.js';
import { renderMarkdown } from '../../pipeline/report/markdown.js';
import { terminalSummary } from '../../pipeline/report/summary.js';
import { validateReport } from '../../pipeline/report/index.js';
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
