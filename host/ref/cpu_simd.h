#pragma once
// Which build of the CPU backend's runtime-dispatched f32 loops runs: the AVX2 build (each such loop is compiled
// twice, once under __attribute__((target("avx2"))), and picked when the CPU has AVX2) or the baseline (SSE2 on
// x86-64). The loops that use this are written so that both builds give the same bits: the same operations in
// the same order, sums over fixed lanes, and no FMA contraction (-std=c++20 turns it off).
namespace pocketlora::ref {

// True when the AVX2 builds run: an x86-64 CPU with AVX2, and not turned off by set_cpu_simd_avx2(false).
bool cpu_simd_avx2();
// Tests: false runs the baseline builds, to check that both give the same bits.
void set_cpu_simd_avx2(bool allowed);

}  // namespace pocketlora::ref
