#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// RMSNorm: GPU vs reference (forward, backward) (reference checks: tests/ref/test_rmsnorm_ref.cpp).
#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/rmsnorm.h"
#include "host/ref/rmsnorm.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// f32 on the GPU vs f64 reference: a row sum of D squares (relative error ~D * 2^-24 worst case, ~sqrt(D) typ.)
// then O(1) products: max relative error 1e-5 against max(|ref|, 1e-2) for D <= 1000.
Tolerance f32_tol() {
  Tolerance t;
  t.max_rel = 1e-5;
  t.rel_floor = 1e-2;
  return t;
}

class RmsNorm : public GpuTest, public ::testing::WithParamInterface<std::array<std::int64_t, 2>> {};

TEST_P(RmsNorm, ForwardBackwardMatchReference) {
  const auto [rows, dim] = GetParam();
  const float eps = 1e-5f;
  Tensor x = random_tensor({rows, dim}, 1, -2, 2), w = random_tensor({dim}, 2, 0.5f, 1.5f);
  Tensor dy = random_tensor({rows, dim}, 3), dw0 = random_tensor({dim}, 4);
  Tensor y = Tensor::zeros({rows, dim}), rstd = Tensor::zeros({rows});
  ref::rmsnorm(x, w, y, rstd, eps);
  Tensor dx = Tensor::zeros({rows, dim}), dw = dw0.clone();
  ref::rmsnorm_backward(x, w, rstd, dy, dx, dw, /*accumulate_dw=*/true);

  auto gx = up(x), gw = up(w), gy = up(Tensor::zeros({rows, dim})), gr = up(Tensor::zeros({rows}));
  auto gdy = up(dy), gdx = up(Tensor::zeros({rows, dim})), gdw = up(dw0);
  vk::Sequence seq(dev());
  ops::rmsnorm(seq, gx, gw, gy, gr, eps);
  ops::rmsnorm_backward(seq, gx, gw, gr, gdy, gdx, gdw, true);
  seq.submit();
  EXPECT_TRUE(within(down(gy), y, f32_tol()));
  EXPECT_TRUE(within(down(gr), rstd, f32_tol()));
  // dx = rstd*g*w - k*x subtracts two O(1) terms (inputs in [-2, 2], w in [0.5, 1.5]): judge it relative to
  // that O(1) scale (rel_floor 1), not to the possibly tiny difference.
  Tolerance dx_tol = f32_tol();
  dx_tol.rel_floor = 1.0;
  EXPECT_TRUE(within(down(gdx), dx, dx_tol));
  // dw = dw0 + a sum of `rows` O(1) products, typical magnitude sqrt(rows): relative to that scale.
  Tolerance dw_tol = f32_tol();
  dw_tol.rel_floor = std::sqrt(static_cast<double>(rows));
  EXPECT_TRUE(within(down(gdw), dw, dw_tol));
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNorm,
                         ::testing::Values(std::array<std::int64_t, 2>{1, 64}, std::array<std::int64_t, 2>{7, 172},
                                           std::array<std::int64_t, 2>{33, 257}, std::array<std::int64_t, 2>{130, 96}));

TEST_F(GpuTest, RmsNormRejectsBadShapes) {
  auto x = ops::allocate(arena(), {4, 8}, DType::F32, "x"), w = ops::allocate(arena(), {7}, DType::F32, "w");
  auto y = ops::allocate(arena(), {4, 8}, DType::F32, "y"), r = ops::allocate(arena(), {4}, DType::F32, "r");
  vk::Sequence seq(dev());
  try {
    ops::rmsnorm(seq, x, w, y, r, 1e-5f);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 8]"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("[7]"), std::string::npos);
  }
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
