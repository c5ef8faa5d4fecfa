#pragma once
// CPU matmuls through a frozen NF4 weight W [N,K] (host representation, see host/core/nf4_quantize.h), with the
// argument order and semantics of the GPU ops (host/ops/nf4_matmul.h):
//   nf4_matmul:          Y[M,N]  = alpha * X[M,K] * dequant(W)^T (+Y)
//   nf4_matmul_backward: dX[M,K] = alpha * dY[M,N] * dequant(W)  (+dX)  — input gradient only: W is frozen
// X/Y are f32, f16 or bf16 (f32 accumulation, rounded once into Y's dtype). Results equal dequantize_nf4 followed
// by ref::matmul up to the order of the f32 accumulation (host/ref/nf4_decode.h).
//   M <= kNf4GemvMaxM: a GEMV that reads every 4-bit code once per call on the persistent pool (host/ref/parallel.h),
//                      threaded over output rows (forward) or over K (backward). K a multiple of 64 (every real
//                      layer): fused decode + FMA in registers (host/ref/nf4_gemv_kernels.h); otherwise W is decoded
//                      a row at a time into an L1-sized buffer.
//   M >  kNf4GemvMaxM: W is decoded a panel of rows at a time into a ~4 MiB f32 buffer that feeds cblas_sgemm.
#include <cstdint>

#include "host/core/nf4_quantize.h"
#include "host/ref/matmul.h"

namespace pocketlora::ref {

constexpr std::int64_t kNf4GemvMaxM = 4;

void nf4_matmul(const Tensor& x, const Nf4Quantized& w, Tensor& y, const MatmulOptions& opt = {});
void nf4_matmul_backward(const Nf4Quantized& w, const Tensor& dy, Tensor& dx, const MatmulOptions& opt = {});

}  // namespace pocketlora::ref
