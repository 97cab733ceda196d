/**
 * CPU facts that change what an int8 model computes (kept free of onnxruntime, so the test setup can
 * read them without loading it).
 */
import { readFileSync } from 'node:fs';

/**
 * The x86 instructions onnxruntime's CPU int8 kernels multiply with, from /proc/cpuinfo's flags: with
 * VNNI (VPDPBUSD) uint8 x int8 sums are exact; without it they add pairs of products in a saturating
 * int16 (VPMADDUBSW), so a model measured here may compute otherwise there (`--reduce-range`). Null where
 * it cannot be told (not Linux x86).
 */
export function int8DotInstructions(cpuinfo?: string): string | null {
  if (process.arch !== 'x64' && cpuinfo === undefined) return null;
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return null;
    }
  }
  const flags = new Set((/^flags\s*:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/));
  if (flags.has('avx512_vnni')) return 'AVX-512 VNNI';
  if (flags.has('avx_vnni')) return 'AVX-VNNI';
  if (flags.has('avx512bw')) return 'AVX-512 without VNNI';
  if (flags.has('avx2')) return 'AVX2 without VNNI';
  return flags.size > 1 ? 'SSE' : null;
}

/** Whether onnxruntime's uint8 x int8 sums saturate with these instructions (as int8DotInstructions names them). */
export function int8SumsSaturate(dot: string | null | undefined): boolean {
  return dot?.includes('without VNNI') ?? false;
}
