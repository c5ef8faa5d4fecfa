#pragma once
// The CPU backend's BLAS entry points (OpenBLAS, row-major). Every GEMM/GEMV in host/ref goes through here so the
// thread setup below happens once, before the first call.
//
// Threads: OpenBLAS (pthreads build) and OpenMP (element-wise ops, NF4 decode) each keep a pool. They never run
// at the same time (host/ref calls are sequential and no BLAS call is made inside an OpenMP region), so both
// pools are sized to the same core count and do not oversubscribe.
#include <cstdint>

namespace pocketlora::ref {

// Threads both pools use: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS if set, else the cores this process may run on.
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

}  // namespace pocketlora::ref
