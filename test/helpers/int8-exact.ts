/**
 * Tests that compare int8 outputs tightly (bit-identical, or within a tolerance only exact int32 sums
 * meet) hold on CPUs whose onnxruntime uint8 x int8 kernels multiply with VNNI (VPDPBUSD). On x86 CPUs
 * without it (AVX2, AVX-512 without VNNI) the kernels add pairs of products in a saturating int16
 * (VPMADDUBSW), so those outputs differ there (docs/int8.md, "CPUs without VNNI"). Such tests use
 * `itExactInt8`: skipped on those CPUs, with one printed reason per test file.
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { int8DotInstructions, int8SumsSaturate } from '../../pipeline/cpu-features.js';

/**
 * The int8 multiply instructions of this CPU, as `int8DotInstructions()` names them. FACEOPT_TEST_INT8_DOT
 * (e.g. 'AVX2 without VNNI'), read here and nowhere else, overrides /proc/cpuinfo: under qemu-user
 * (`qemu-x86_64 -cpu Haswell`) /proc/cpuinfo is the host's, so a run that emulates a CPU without VNNI
 * says so with it. The global setup keeps it in the environment.
 */
export const INT8_DOT: string | null = process.env.FACEOPT_TEST_INT8_DOT || int8DotInstructions();

/** True where onnxruntime's uint8 x int8 sums saturate (no VNNI): int8-exact checks do not hold. */
export const INT8_SATURATES: boolean = int8SumsSaturate(INT8_DOT);

let told = false; // per test file: vitest evaluates this module anew for each file
/** `it` for a check of int8 outputs that needs exact int32 sums; skipped (reason printed once) without VNNI. */
export const itExactInt8: typeof it = (INT8_SATURATES ? (name: string, ...rest: unknown[]) => {
  if (!told) {
    told = true;
    const file = expect.getState().testPath;
    const where = file ? path.relative(process.cwd(), file) : 'this file';
    console.log(`[faceopt tests] ${where}: int8-exact checks skipped: this CPU multiplies int8 with ${INT8_DOT}, where onnxruntime's uint8 x int8 kernels add product pairs in a saturating int16 (docs/int8.md, "CPUs without VNNI")`);
  }
  return (it.skip as (n: string, ...r: unknown[]) => void)(name, ...rest);
} : it) as typeof it;
