#include "host/ref/blas.h"

#include <cstdlib>
#include <mutex>

#include <cblas.h>
#include <omp.h>

namespace pocketlora::ref {

namespace {
// One pool size for OpenMP and OpenBLAS (see blas.h). An explicit OPENBLAS_NUM_THREADS is left alone.
void configure_threads_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!std::getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(omp_get_max_threads());
  });
}

blasint to_blas(std::int64_t v) { return static_cast<blasint>(v); }
// BLAS rejects a leading dimension of 0 even when the matrix is empty (K = 0).
blasint ld(std::int64_t v) { return static_cast<blasint>(v < 1 ? 1 : v); }
}  // namespace

int cpu_threads() { return omp_get_max_threads(); }

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
          std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  if (M == 0 || N == 0) return;
  configure_threads_once();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, to_blas(M),
              to_blas(N), to_blas(K), alpha, A, ld(lda), B, ld(ldb), beta, C, ld(ldc));
}

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
          std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
  if (M == 0 || N == 0) return;
  configure_threads_once();
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, to_blas(M),
              to_blas(N), to_blas(K), alpha, A, ld(lda), B, ld(ldb), beta, C, ld(ldc));
}

void gemv(std::int64_t M, std::int64_t N, float alpha, const float* A, std::int64_t lda, const float* x, float beta,
          float* y) {
  if (M == 0) return;
  configure_threads_once();
  cblas_sgemv(CblasRowMajor, CblasNoTrans, to_blas(M), to_blas(N), alpha, A, ld(lda), x, 1, beta, y, 1);
}

}  // namespace pocketlora::ref
