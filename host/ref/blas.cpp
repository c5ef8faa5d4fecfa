#include "host/ref/blas.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "host/ref/parallel.h"

namespace pocketlora::ref {

namespace {

// OpenBLAS runs single-threaded inside the pool's chunks (see blas.h). Called
// before every BLAS entry point.
void configure_threads_once() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

blasint to_blas(std::int64_t v) { return static_cast<blasint>(v); }
// BLAS rejects a leading dimension of 0 even when the matrix is empty (K = 0).
blasint ld(std::int64_t v) { return static_cast<blasint>(v < 1 ? 1 : v); }

void call_gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
               std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, to_blas(M), to_blas(N),
              to_blas(K), alpha, A, ld(lda), B, ld(ldb), beta, C, ld(ldc));
}
void call_gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
               std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, to_blas(M), to_blas(N),
              to_blas(K), alpha, A, ld(lda), B, ld(ldb), beta, C, ld(ldc));
}

// Below this much work a split costs more (the other operand is packed once per
// chunk, a worker wakes) than it saves.
constexpr double kMinSplitFlops = 4.0e6;
// Columns/rows per chunk stay a multiple of the GEMM kernels' register block.
constexpr std::int64_t kSplitAlign = 16;

std::int64_t split_chunks(std::int64_t extent, double flops) {
  const std::int64_t threads = cpu_threads();
  if (threads <= 1 || flops < kMinSplitFlops) return 1;
  // Two chunks per thread: a worker that wakes late on a loaded machine leaves
  // less work to the others.
  return std::clamp<std::int64_t>(extent / kSplitAlign, 1, 2 * threads);
}

// [begin, end) of chunk c when `extent` is split in `chunks` aligned parts.
std::pair<std::int64_t, std::int64_t> chunk_range(std::int64_t extent, std::int64_t chunks, std::int64_t c) {
  const std::int64_t per = (extent + chunks - 1) / chunks, step = (per + kSplitAlign - 1) / kSplitAlign * kSplitAlign;
  return {std::min(extent, c * step), std::min(extent, (c + 1) * step)};
}

// C = alpha * op(A) * op(B) + beta * C, split along the longer of M and N: each
// chunk is an independent single-threaded BLAS call on a block of C, so the
// result does not depend on which thread ran it.
template <typename T>
void split_gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A, std::int64_t lda,
                const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  if (M == 0 || N == 0) return;
  configure_threads_once();
  const bool by_columns = N >= M;
  const std::int64_t extent = by_columns ? N : M;
  const std::int64_t chunks =
      split_chunks(extent, 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
  parallel_chunks(chunks, [&](std::int64_t c) {
    const auto [b, e] = chunk_range(extent, chunks, c);
    if (b >= e) return;
    if (by_columns)  // op(B) columns b..e: rows of B stored [N,K] (tb) or
                     // columns of B stored [K,N]
      call_gemm(ta, tb, M, e - b, K, alpha, A, lda, tb ? B + b * ldb : B + b, ldb, beta, C + b, ldc);
    else  // op(A) rows b..e: rows of A stored [M,K] or columns of A stored [K,M]
          // (ta)
      call_gemm(ta, tb, e - b, N, K, alpha, ta ? A + b : A + b * lda, lda, B, ldb, beta, C + b * ldc, ldc);
  });
}

}  // namespace

int cpu_threads() { return omp_get_max_threads(); }

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
          std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  split_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
          std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
  split_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemv(std::int64_t M, std::int64_t N, float alpha, const float* A, std::int64_t lda, const float* x, float beta,
          float* y) {
  if (M == 0) return;
  configure_threads_once();
  const std::int64_t chunks = split_chunks(M, 2.0 * static_cast<double>(M) * static_cast<double>(N));
  parallel_chunks(chunks, [&](std::int64_t c) {
    const auto [b, e] = chunk_range(M, chunks, c);
    if (b < e)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, to_blas(e - b), to_blas(N), alpha, A + b * lda, ld(lda), x, 1, beta,
                  y + b, 1);
  });
}

void with_openblas_threads(const std::function<void()>& fn) {
  configure_threads_once();
  openblas_set_num_threads(cpu_threads());
  fn();
  openblas_set_num_threads(1);
  // Its workers spin-wait after each call (OPENBLAS_THREAD_TIMEOUT, read once
  // at library load: 2^28 cycles by default) on the cores the pool needs; give
  // them time to go to sleep.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
}

}  // namespace pocketlora::ref
