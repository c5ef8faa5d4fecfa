// The backward of an NF4 layer, checked on the library's own code: the weight is frozen, so the only gradient
// is dX = alpha * dY * dequant(W), which the library computes with ref::matmul_backward on the dequantized
// weight (the reference tests/ops/test_nf4_matmul.cpp holds the GPU nf4_matmul_backward to). Runs in CPU-only
// builds too.
#include <gtest/gtest.h>

#include <span>

#include "harness/op_harness.h"
#include "host/core/nf4_quantize.h"
#include "host/ref/eigen_view.h"
#include "host/ref/matmul.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(Nf4MatmulReference, LibraryBackwardMatchesFiniteDifferences) {
  // L = sum(R .* (alpha X dequant(W)^T)) with W quantized by the library (double quantization, 172 columns so
  // 64-blocks span rows); central differences in fp64, h = 1e-6: |error| < 1e-8.
  const Tensor w = random_tensor({6, 172}, 17);
  const Nf4Quantized q = quantize_nf4(std::span<const float>(w.data<float>(), static_cast<std::size_t>(w.numel())),
                                      w.shape(), true, "test.weight");
  const Tensor W = dequantize_nf4(q).to(DType::F64);
  const Tensor R = random_tensor({3, 6}, 18).to(DType::F64);
  const MatmulOptions opt{0.5f, false};
  auto loss = [&](const std::vector<Tensor>& in) {
    Tensor y = Tensor::zeros({3, 6}, DType::F64);
    ref::matmul(in[0], W, y, opt);
    return (as_matrix_d(y).array() * as_matrix_d(R).array()).sum();
  };
  auto analytic = [&](const std::vector<Tensor>& in) {
    Tensor dx = Tensor::zeros({3, 172}, DType::F64), dw = Tensor::zeros({6, 172}, DType::F64);
    ref::matmul_backward(in[0], W, R, dx, dw, opt);
    return std::vector<Tensor>{dx};  // dW is computed but unused: NF4 weights are frozen
  };
  auto r = gradcheck(loss, analytic, {random_tensor({3, 172}, 19)});
  EXPECT_LT(r.max_abs, 1e-8) << r.worst;
}

}  // namespace
