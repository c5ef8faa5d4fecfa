#pragma once
// Timings of the CPU backend (host/ref) for the GEMM and NF4 benchmarks, shared by the CPU-only benches
// (cpu_bench_*.cpp, built without Vulkan too) and the CPU rows of the GPU benches.
#include <cstdint>

#include "host/core/nf4_quantize.h"
#include "host/core/tensor.h"
#include "host/ref/nf4_matmul.h"

namespace pocketlora::bench {

// Median ms of C = A * B^T through Eigen's own GEMM (OpenMP-threaded): the CPU path before OpenBLAS, kept as the
// baseline the OpenBLAS path is measured against.
double eigen_gemm_ms(const Tensor& a, const Tensor& b, Tensor& c, int reps);
// Median ms of the CPU backend's C = A * B^T (ref::matmul: cblas_sgemm, cblas_sgemv for M = 1).
double cpu_gemm_ms(const Tensor& a, const Tensor& b, Tensor& c, int reps);

// Synthetic double-quantized NF4 weight [N, K] (hashed codes and scales; values do not matter for timing).
Nf4Quantized synthetic_nf4(std::int64_t N, std::int64_t K);

// Median ms of ref::nf4_matmul (forward, X [M,K] -> Y [M,N]) or ref::nf4_matmul_backward (dY [M,N] -> dX [M,K]).
double cpu_nf4_ms(const Tensor& in, const Nf4Quantized& w, Tensor& out, bool forward, int reps);

}  // namespace pocketlora::bench
