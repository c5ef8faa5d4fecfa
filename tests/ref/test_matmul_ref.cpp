// The GEMM reference backward (host/ref/matmul.h) by central differences; runs in CPU-only builds too.
// The GPU kernels are compared with the reference in tests/ops/test_matmul.cpp.
#include <gtest/gtest.h>

#include "harness/op_harness.h"
#include "host/ref/matmul.h"
#include "host/ref/eigen_view.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(MatmulReference, BackwardMatchesFiniteDifferences) {
  // L = sum(W .* (alpha * A B^T)) for a fixed random W; dL/dA, dL/dB from ref::matmul_backward with dC = W.
  // Central differences in fp64 with h = 1e-6: truncation ~h^2, rounding ~1e-16/h => |error| < 1e-8.
  const MatmulOptions opt{0.75f, false};
  Tensor w = random_tensor({5, 4}, 9).to(DType::F64);
  auto loss = [&](const std::vector<Tensor>& in) {
    Tensor c = Tensor::zeros({5, 4}, DType::F64);
    ref::matmul(in[0], in[1], c, opt);
    return (as_matrix_d(c).array() * as_matrix_d(w).array()).sum();
  };
  auto analytic = [&](const std::vector<Tensor>& in) {
    Tensor da = Tensor::zeros(in[0].shape(), DType::F64), db = Tensor::zeros(in[1].shape(), DType::F64);
    ref::matmul_backward(in[0], in[1], w, da, db, opt);
    return std::vector<Tensor>{da, db};
  };
  auto r = gradcheck(loss, analytic, {random_tensor({5, 7}, 7), random_tensor({4, 7}, 8)});
  EXPECT_LT(r.max_abs, 1e-8) << r.worst;
}

}  // namespace
