// host/ref/blas.h splits each GEMM/GEMV into blocks of C computed by
// independent single-threaded BLAS calls on the backend's pool. These shapes
// are above the split threshold, along N (N > M) and along M (M > N), with
// every transpose combination, padded leading dimensions and an extent that is
// not a multiple of the 16-wide blocks, against a plain triple loop in double.
// Runs in CPU-only builds too.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "host/ref/blas.h"

using namespace pocketlora;

namespace {

template <typename T>
std::vector<T> filled(std::size_t n, std::uint32_t seed) {
  std::vector<T> v(n);
  std::uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<T>(static_cast<double>(s >> 8) / 16777216.0 - 0.5);
  }
  return v;
}

// C = alpha * op(A) * op(B) + beta * C0 with BLAS's row-major conventions, in
// double.
template <typename T>
double expected(bool ta, bool tb, std::int64_t K, double alpha, const std::vector<T>& A, std::int64_t lda,
                const std::vector<T>& B, std::int64_t ldb, double beta, double c0, std::int64_t m, std::int64_t n) {
  double acc = 0;
  for (std::int64_t k = 0; k < K; ++k) {
    const double a = ta ? A[static_cast<std::size_t>(k * lda + m)] : A[static_cast<std::size_t>(m * lda + k)];
    const double b = tb ? B[static_cast<std::size_t>(n * ldb + k)] : B[static_cast<std::size_t>(k * ldb + n)];
    acc += a * b;
  }
  return alpha * acc + beta * c0;
}

template <typename T>
void check_gemm(std::int64_t M, std::int64_t N, std::int64_t K, double tol) {
  const std::int64_t pad = 3;
  for (int mode = 0; mode < 4; ++mode) {
    const bool ta = mode & 1, tb = mode & 2;
    const std::int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    const auto A = filled<T>(static_cast<std::size_t>((ta ? K : M) * lda), 1);
    const auto B = filled<T>(static_cast<std::size_t>((tb ? N : K) * ldb), 2);
    auto C = filled<T>(static_cast<std::size_t>(M * ldc), 3);
    const auto C0 = C;
    ref::gemm(ta, tb, M, N, K, T(0.5), A.data(), lda, B.data(), ldb, T(0.25), C.data(), ldc);
    double worst = 0;
    for (std::int64_t m = 0; m < M; ++m) {
      for (std::int64_t n = 0; n < N; ++n) {
        const auto i = static_cast<std::size_t>(m * ldc + n);
        worst = std::max(worst, std::abs(C[i] - expected(ta, tb, K, 0.5, A, lda, B, ldb, 0.25, C0[i], m, n)));
      }
      for (std::int64_t n = N; n < ldc; ++n)  // padding is never written
        ASSERT_EQ(C[static_cast<std::size_t>(m * ldc + n)], C0[static_cast<std::size_t>(m * ldc + n)]);
    }
    EXPECT_LE(worst, tol) << "M=" << M << " N=" << N << " K=" << K << " trans_a=" << ta << " trans_b=" << tb;
  }
}

// Sums of K products of values in [-0.5, 0.5): the f32 error bound K * 2^-24 *
// sum|a*b| <= K^2 * 2^-26 is loose; use the usual sqrt(K) growth with margin.
// f64 is exact to ~1e-13 at these sizes.
TEST(BlasSplit, GemmAlongColumnsAndRowsMatchesLoopsF32) {
  check_gemm<float>(37, 301, 200, 2e-4);  // N > M: split along columns
  check_gemm<float>(300, 29, 250, 2e-4);  // M > N: split along rows
}

TEST(BlasSplit, GemmAlongColumnsAndRowsMatchesLoopsF64) {
  check_gemm<double>(37, 301, 200, 1e-12);
  check_gemm<double>(300, 29, 250, 1e-12);
}

TEST(BlasSplit, GemvMatchesLoop) {
  const std::int64_t M = 4001, N = 600, lda = N + 5;
  const auto A = filled<float>(static_cast<std::size_t>(M * lda), 4);
  const auto x = filled<float>(static_cast<std::size_t>(N), 5);
  auto y = filled<float>(static_cast<std::size_t>(M), 6);
  const auto y0 = y;
  ref::gemv(M, N, 2.0f, A.data(), lda, x.data(), 0.5f, y.data());
  double worst = 0;
  for (std::int64_t m = 0; m < M; ++m) {
    double acc = 0;
    for (std::int64_t n = 0; n < N; ++n)
      acc += static_cast<double>(A[static_cast<std::size_t>(m * lda + n)]) * x[static_cast<std::size_t>(n)];
    worst =
        std::max(worst, std::abs(y[static_cast<std::size_t>(m)] - (2.0 * acc + 0.5 * y0[static_cast<std::size_t>(m)])));
  }
  EXPECT_LE(worst, 2e-4);
}

// The same call twice gives the same bits (the split depends on the shape and
// thread count only).
TEST(BlasSplit, RepeatedCallsAreBitIdentical) {
  const std::int64_t M = 64, N = 700, K = 300;
  const auto A = filled<float>(static_cast<std::size_t>(M * K), 7),
             B = filled<float>(static_cast<std::size_t>(N * K), 8);
  std::vector<float> c1(static_cast<std::size_t>(M * N)), c2(c1.size());
  ref::gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, c1.data(), N);
  ref::gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, c2.data(), N);
  EXPECT_EQ(c1, c2);
}

}  // namespace
