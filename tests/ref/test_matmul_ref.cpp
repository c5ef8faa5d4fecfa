// The GEMM reference (host/ref/matmul.h) on its own: the transposed forms against explicit transposes into the
// plain form; runs in CPU-only builds too. The backward's finite-difference check and the GPU comparison are op
// cases in tests/ops/test_matmul.cpp.
#include <gtest/gtest.h>

#include <array>

#include "harness/op_harness.h"
#include "host/ref/eigen_view.h"
#include "host/ref/matmul.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(MatmulReference, TransposedOperandsEqualExplicitTransposes) {
  for (auto [M, N, K] : {std::array<std::int64_t, 3>{7, 13, 5}, {33, 9, 70}, {64, 16, 128}}) {
    for (int mode = 1; mode < 4; ++mode) {
      MatmulOptions opt;
      opt.trans_a = mode & 1;
      opt.trans_b = mode & 2;
      opt.alpha = 0.25f;
      Tensor a = opt.trans_a ? random_tensor({K, M}, 40) : random_tensor({M, K}, 40);
      Tensor b = opt.trans_b ? random_tensor({K, N}, 41) : random_tensor({N, K}, 41);
      Tensor got = Tensor::zeros({M, N});
      ref::matmul(a, b, got, opt);
      Tensor at = a, bt = b;
      if (opt.trans_a) {
        at = Tensor::zeros({M, K});
        as_matrix(at) = as_matrix(a).transpose();
      }
      if (opt.trans_b) {
        bt = Tensor::zeros({N, K});
        as_matrix(bt) = as_matrix(b).transpose();
      }
      Tensor plain = Tensor::zeros({M, N});
      ref::matmul(at, bt, plain, {0.25f, false});
      // Both are f32 sums of the same K products in possibly different orders (BLAS picks kernels per layout).
      EXPECT_TRUE(within(got, plain, dot_product_tolerance(K, 1.0, DType::F32))) << "M=" << M << " N=" << N << " K=" << K << " mode=" << mode;
    }
  }
}

}  // namespace
