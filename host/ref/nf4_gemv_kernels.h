#pragma once
// Fused NF4 decode + FMA kernels of the CPU GEMV (host/ref/nf4_matmul.cpp, M <= kNf4GemvMaxM, K a multiple of 64):
// each 64-weight block is decoded in registers (4-bit codes -> 16-entry codebook by a register permute) and used
// at once by up to 4 tokens, so W's codes are read once and no decoded row is ever stored.
//
// Kernel order: a byte holds elements 2i (high nibble) and 2i+1 (low nibble), so one vector of code bytes yields
// the even elements and, with a shift, the odd ones. Rather than re-interleave the weights (several shuffles per
// vector), the kernels read activations and accumulators in that order: within each group of `group` elements,
// the even positions first, then the odd ones (group 32 on AVX-512, 16 on AVX2, 2 = natural order in the scalar
// set, which is the semantic reference). nf4_gemv_to/from_kernel_order convert, once per call.
#include <cstdint>

namespace pocketlora::ref {

// out[m] = sum_b scales[b] * sum_i code[b, i] * x[m*ldx + b*64 + i] over `blocks` whole blocks (x in kernel order;
// code[b, i] the unscaled codebook value: each block's sum is scaled once).
using Nf4GemvDot = void (*)(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* x,
                            std::int64_t ldx, int M, float* out);
// acc[m*ldacc + b*64 + i] += (dy[m*ldy] * scales[b]) * code[b, i] (acc in kernel order) — one row of dX = dY * W.
using Nf4GemvAxpy = void (*)(const std::uint8_t* codes, const float* scales, std::int64_t blocks, const float* dy,
                             std::int64_t ldy, int M, float* acc, std::int64_t ldacc);

struct Nf4GemvKernels {
  std::int64_t group;  // divides 64
  Nf4GemvDot dot;
  Nf4GemvAxpy axpy;
};

// The set matching nf4_isa() (host/ref/nf4_decode.h); M <= 4.
const Nf4GemvKernels& nf4_gemv_kernels();

// n a multiple of group.
void nf4_gemv_to_kernel_order(const float* in, float* out, std::int64_t n, std::int64_t group);
void nf4_gemv_from_kernel_order(const float* in, float* out, std::int64_t n, std::int64_t group);

}  // namespace pocketlora::ref
