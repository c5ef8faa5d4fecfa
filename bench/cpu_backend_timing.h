#pragma once
// Timings of the CPU backend (host/ref) for the GEMM and NF4 benchmarks, shared by the CPU-only benches
// (cpu_bench_*.cpp, built without Vulkan too) and the CPU rows of the GPU benches.
#include <cstdint>
#include <functional>
#include <utility>

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

// Cold-weight timing (`bench cpu-nf4`): a 1B model's layer weights are evicted from the last-level cache between
// uses, so each timed call reads its weight from a different copy, cycling through enough copies that the bytes
// touched between two uses of one copy exceed twice the LLC.
// LLC bytes: `llc_mib` if > 0, else the OS's L3 size (sysconf), else 32 MiB.
std::int64_t last_level_cache_bytes(std::int64_t llc_mib);
// Copies of a `weight_bytes` weight to cycle through (>= 2; 1 when `warm`).
int cold_copies(double weight_bytes, std::int64_t llc_bytes, bool warm);

// Medians (ms) of a() and b(), called alternately after one warm-up call each, so both see the same machine load
// (timings on a shared machine drift by 2x within seconds).
std::pair<double, double> paired_median_ms(const std::function<void()>& a, const std::function<void()>& b, int reps);

}  // namespace pocketlora::bench
