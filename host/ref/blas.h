#pragma once
// The CPU backend's BLAS entry points (OpenBLAS, row-major). Every GEMM/GEMV in host/ref goes through here so the
// thread setup below happens once, before the first call.
//
// Threads: one pool runs everything (host/ref/parallel.h). OpenBLAS is set to one thread and a GEMM/GEMV is split
// into blocks of C that the pool's threads compute with independent single-threaded BLAS calls. Why not
// OpenBLAS's own threads: after every call its idle workers spin-wait (OPENBLAS_THREAD_TIMEOUT, 2^28 cycles by
// default, fixed at library load) on the cores the pool's next kernel needs; measured on 2 cores, the NF4 GEMV
// that follows an sgemv got ~10% from its second thread instead of ~2x (docs/ARCHITECTURE.md, CPU backend).
#include <cstdint>
#include <functional>

namespace pocketlora::ref {

// Threads of the pool and of OpenMP's element-wise loops: OMP_NUM_THREADS if set, else the cores this process may
// run on.
int cpu_threads();

// C[M,N] = alpha * op(A) * op(B) + beta * C, row-major with leading dimensions lda/ldb/ldc (elements).
// op(A) is [M,K] (A stored [K,M] when trans_a), op(B) is [K,N] (B stored [N,K] when trans_b).
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
          std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc);
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
          std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc);

// y[M] = alpha * A[M,N] * x + beta * y (row-major A with leading dimension lda).
void gemv(std::int64_t M, std::int64_t N, float alpha, const float* A, std::int64_t lda, const float* x, float beta,
          float* y);

// Runs fn with OpenBLAS's own threading (cpu_threads() threads) instead of the pool's split, and waits for its
// workers to go idle afterwards: for benchmarks that measure the library as a user would call it.
void with_openblas_threads(const std::function<void()>& fn);

}  // namespace pocketlora::ref
