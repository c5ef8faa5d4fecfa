#pragma once
// Fused NF4 decode + FMA kernels of the CPU GEMV (host/ref/nf4_matmul.cpp, M <= kNf4GemvMaxM, K a multiple of 64):
// each 64-weight block is decoded in registers (4-bit codes -> 16-entry codebook by a register permute) and used
// at once by up to 4 tokens, so W's codes are read once and no decoded row is ever stored.
//
// Kernel order: a SIMD kernel widens code bytes so that each lane holds the codes of `per_lane` consecutive
// elements and takes one nibble at a time by a shift, giving vectors whose lane j is element per_lane*j + e. Rather
// than re-interleave those (several shuffles per vector), the kernels read activations and accumulators in the same
// order: within each group of lanes*per_lane elements, out[e*lanes + j] = natural[per_lane*j + e] (AVX-512: 16 x 4,
// AVX2: 8 x 2, scalar: 1 x 2 = natural order; the scalar set is the semantic reference).
// nf4_gemv_to/from_kernel_order convert, once per call.
#include <cstdint>

namespace pocketlora::ref {

// out[m] = sum_b scales[b] * sum_i code[b, i] * x[m*ldx + b*64 + i] over `blocks` whole blocks (x in kernel order;
// code[b, i] the unscaled codebook value: each block's sum is scaled once).
using Nf4GemvDot = void (*)(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* x,
                            std::int64_t ldx, int M, float* out);
// acc[m*ldacc + b*64 + i] += (dy[m*ldy] * scales[b]) * code[b, i] (acc in kernel order) — one row of dX = dY * W.
using Nf4GemvAxpy = void (*)(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* dy,
                             std::int64_t ldy, int M, float* acc, std::int64_t ldacc);

struct Nf4KernelOrder {
  std::int64_t lanes, per_lane;  // lanes * per_lane divides 64
};

struct Nf4GemvKernels {
  Nf4KernelOrder order;
  Nf4GemvDot dot;
  Nf4GemvAxpy axpy;
};

// The set matching nf4_isa() (host/ref/nf4_decode.h); M <= 4.
const Nf4GemvKernels& nf4_gemv_kernels();

// n a multiple of lanes * per_lane.
void nf4_gemv_to_kernel_order(const float* in, float* out, std::int64_t n, Nf4KernelOrder order);
void nf4_gemv_from_kernel_order(const float* in, float* out, std::int64_t n, Nf4KernelOrder order);

}  // namespace pocketlora::ref
