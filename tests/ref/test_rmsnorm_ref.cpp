// The RMSNorm reference (host/ref/rmsnorm.h): forward against hand-computed values; runs in CPU-only builds too.
// The GPU kernels are compared with it, and its backward with finite differences, as op cases in
// tests/ops/test_rmsnorm.cpp.
#include <gtest/gtest.h>

#include "harness/op_harness.h"
#include "host/ref/rmsnorm.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(RmsNormReference, ForwardByHand) {
  // y = x * w / sqrt(mean(x^2) + eps), eps = 1 so it visibly counts. Worked out by hand (python3 for the digits):
  //   row 0 = (1, -1, 1, -1): mean(x^2) = 1, rstd = 1/sqrt(2) = 0.70710678...
  //   row 1 = (3, 0, 0, 4):   mean(x^2) = 25/4, rstd = 1/sqrt(7.25) = 0.37139067...
  Tensor x = Tensor::from_vector({1, -1, 1, -1, 3, 0, 0, 4}, {2, 4});
  Tensor w = Tensor::from_vector({1, 2, -1, 0.5f}, {4});
  Tensor y = Tensor::zeros({2, 4}), rstd = Tensor::zeros({2});
  ref::rmsnorm(x, w, y, rstd, 1.0f);
  const double want_rstd[2] = {0.7071067811865475, 0.3713906763541037};
  const double want_y[8] = {0.7071067811865475, -1.414213562373095, -0.7071067811865475, -0.35355339059327373,
                            1.1141720290623112, 0.0, 0.0, 0.7427813527082074};
  for (int r = 0; r < 2; ++r) EXPECT_NEAR(rstd.data<float>()[r], want_rstd[r], 1e-6) << "row " << r;
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(y.data<float>()[i], want_y[i], 1e-6) << "element " << i;
}

}  // namespace
