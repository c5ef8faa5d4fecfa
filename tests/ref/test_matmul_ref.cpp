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

TEST(MatmulReference, MixedDtypesMatchF64) {
  // A, B and C each f32 or f16 (the f16 output head: B f16, A and C f32), plain, accumulated and transposed,
  // against the f64 product of the same f16-exact inputs. The inputs are equal on both sides, so the error is the
  // f32 accumulation (dot_product_tolerance) plus, for an f16 C, its one rounding (2^-11).
  const std::int64_t M = 33, N = 19, K = 70;
  for (int bits = 0; bits < 8; ++bits) {
    const DType da = bits & 1 ? DType::F16 : DType::F32, db = bits & 2 ? DType::F16 : DType::F32;
    const DType dc = bits & 4 ? DType::F16 : DType::F32;
    for (int mode = 0; mode < 5; ++mode) {
      MatmulOptions opt;
      opt.trans_a = mode == 1 || mode == 3;
      opt.trans_b = mode == 2 || mode == 3;
      opt.accumulate = mode == 4;
      opt.alpha = opt.accumulate ? 0.5f : 1.0f;
      const Tensor a = random_tensor(opt.trans_a ? Shape{K, M} : Shape{M, K}, 40, -1, 1, da);
      const Tensor b = random_tensor(opt.trans_b ? Shape{K, N} : Shape{N, K}, 41, -1, 1, db);
      const Tensor c0 = random_tensor({M, N}, 42, -1, 1, dc);
      Tensor got = c0.clone(), want = c0.to(DType::F64);
      ref::matmul(a, b, got, opt);
      ref::matmul(a.to(DType::F64), b.to(DType::F64), want, opt);
      EXPECT_EQ(got.dtype(), dc);
      EXPECT_TRUE(within(got, want, dot_product_tolerance(K, 1.0, dc)))
          << "A " << dtype_name(da) << " B " << dtype_name(db) << " C " << dtype_name(dc) << " mode " << mode;
    }
  }
}

TEST(MatmulReference, LargeF16BIsWidenedInPanelsWithTheSameResult) {
  // An f16 B over 2^20 elements is widened a panel of rows at a time (the f16 head); both of its forms, written
  // and accumulated, against the f64 product: the panels split C's columns (plain) or the reduction (trans_b).
  const std::int64_t M = 3, rows = 1100, cols = 1000;  // 1.1M elements: two panels of 1048 rows
  for (bool trans_b : {false, true})
    for (bool acc : {false, true}) {
      MatmulOptions opt;
      opt.trans_b = trans_b;
      opt.accumulate = acc;
      opt.alpha = 0.5f;
      const std::int64_t N = trans_b ? cols : rows, K = trans_b ? rows : cols;
      const Tensor a = random_tensor({M, K}, 50), b = random_tensor({rows, cols}, 51, -1, 1, DType::F16);
      const Tensor c0 = random_tensor({M, N}, 52);
      Tensor got = c0.clone(), want = c0.to(DType::F64);
      ref::matmul(a, b, got, opt);
      ref::matmul(a.to(DType::F64), b.to(DType::F64), want, opt);
      EXPECT_TRUE(within(got, want, dot_product_tolerance(K, 1.0, DType::F32))) << "trans_b " << trans_b << " acc " << acc;
    }
}

}  // namespace
