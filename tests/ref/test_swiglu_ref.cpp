// The SwiGLU and add references (host/ref/swiglu.h) against hand-computed values; the backward's finite-difference
// check and the GPU comparison are op cases in tests/ops/test_swiglu.cpp.
#include <gtest/gtest.h>

#include "harness/op_harness.h"
#include "host/ref/swiglu.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(SwigluReference, ForwardByHand) {
  // h = silu(g) * u, silu(g) = g / (1 + e^-g). By hand (python3 for the digits): silu(0) = 0,
  // silu(1) = 1/(1 + e^-1) = 0.7310585786, silu(-2) = -2/(1 + e^2) = -0.2384058440, silu(3) = 3/(1 + e^-3) = 2.8577223805.
  Tensor g = Tensor::from_vector({0, 1, -2, 3}, {2, 2}), u = Tensor::from_vector({2, 3, 0.5f, -1}, {2, 2});
  Tensor h = Tensor::zeros({2, 2});
  ref::swiglu(g, u, h);
  const double want[4] = {0.0, 2.193175735890015, -0.11920292202211755, -2.8577223804672998};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(h.data<float>()[i], want[i], 1e-6) << "element " << i;
  // y = a + alpha * b with alpha = -0.5.
  Tensor y = Tensor::zeros({2, 2});
  ref::add(g, u, y, -0.5f);
  const float want_add[4] = {-1.0f, -0.5f, -2.25f, 3.5f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y.data<float>()[i], want_add[i]) << "element " << i;
}

}  // namespace
