// The LoRA reference (host/ref/lora.h) by central differences and the Philox generator behind its dropout mask
// against the published known answer; runs in CPU-only builds too (GPU comparisons: tests/ops/test_lora.cpp).
#include <gtest/gtest.h>

#include "harness/op_harness.h"
#include "host/ref/lora.h"
#include "shaders/common/philox.h"
#include "host/ref/eigen_view.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(LoraReference, BackwardMatchesFiniteDifferences) {
  // L = sum(R .* Y) with dropout on (mask fixed by the seed): derivatives w.r.t. X, A, B in fp64.
  LoraOptions opt;
  opt.scale = lora_scale(8.0f, 3, true);
  opt.dropout = 0.3f;
  opt.seed = 99;
  Tensor R = random_tensor({4, 6}, 1).to(DType::F64);
  auto forward = [&](const std::vector<Tensor>& in, Tensor& t) {
    Tensor y = Tensor::zeros({4, 6}, DType::F64);
    ref::lora_forward(in[0], in[1], in[2], y, t, opt);
    return y;
  };
  auto loss = [&](const std::vector<Tensor>& in) {
    Tensor t = Tensor::zeros({4, 3}, DType::F64);
    Tensor y = forward(in, t);
    return (as_matrix_d(y).array() * as_matrix_d(R).array()).sum();
  };
  auto analytic = [&](const std::vector<Tensor>& in) {
    Tensor t = Tensor::zeros({4, 3}, DType::F64);
    forward(in, t);
    Tensor dx = Tensor::zeros({4, 5}, DType::F64), da = Tensor::zeros({3, 5}, DType::F64),
           db = Tensor::zeros({6, 3}, DType::F64);
    ref::lora_backward(in[0], in[1], in[2], t, R, dx, da, db, opt);
    return std::vector<Tensor>{dx, da, db};
  };
  auto r = gradcheck(loss, analytic, {random_tensor({4, 5}, 2), random_tensor({3, 5}, 3), random_tensor({6, 3}, 4)});
  EXPECT_LT(r.max_abs, 1e-8) << r.worst;
}

TEST(Philox, KnownAnswer) {
  // Random123's published known-answer vector for philox4x32_10: counter 0, key 0.
  auto r = philox4x32_10({0u, 0u, 0u, 0u}, 0u, 0u);
  EXPECT_EQ(r[0], 0x6627e8d5u);
  EXPECT_EQ(r[1], 0xe169c58du);
  EXPECT_EQ(r[2], 0xbc57ac4cu);
  EXPECT_EQ(r[3], 0x9b00dbd8u);
}

}  // namespace
