// The optimizer references (host/ref/optimizer.h) against steps worked out by hand from each optimizer's
// published definition; runs in CPU-only builds too. The GPU kernels are compared with them in
// tests/ops/test_optimizers.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "common/optimizer_config.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ref/optimizer.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// The shared test settings with gradient clipping off (the step gets clip_scale 1).
OptimizerConfig hand_config(OptimizerKind k) {
  OptimizerConfig c = test_optimizer_config(k);
  c.max_grad_norm = 0;
  return c;
}

// Runs steps 1..n of `kind` on `p` with the given gradients and checks p after each step against `want`.
void expect_steps(OptimizerKind kind, Tensor p, const std::vector<Tensor>& grads,
                  const std::vector<std::vector<double>>& want) {
  const OptimizerConfig cfg = hand_config(kind);
  OptimizerState st = make_optimizer_state(cfg, p.shape());
  for (std::size_t s = 0; s < grads.size(); ++s) {
    ref::optimizer_step(cfg, step_constants(cfg, cfg.lr, static_cast<std::int64_t>(s + 1)), p, grads[s], st,
                        GradStats{});
    for (std::size_t i = 0; i < want[s].size(); ++i)
      EXPECT_NEAR(p.data<float>()[i], want[s][i], 2e-7 * std::max(1.0, std::abs(want[s][i])))
          << optimizer_name(kind) << " step " << s + 1 << " element " << i;
  }
}

TEST(OptimizerReference, AdamWFirstStepByHand) {
  // Step 1 with bias correction: m_hat = g, v_hat = g^2, so p1 = p0 (1 - lr wd) - lr * g / (|g| + eps).
  OptimizerConfig cfg = hand_config(OptimizerKind::AdamW);
  cfg.max_grad_norm = 0;
  Tensor p = Tensor::from_vector({1.0f, -2.0f}, {2}), g = Tensor::from_vector({0.5f, -0.25f}, {2});
  OptimizerState st = make_optimizer_state(cfg, {2});
  ref::optimizer_step(cfg, step_constants(cfg, cfg.lr, 1), p, g, st, GradStats{});
  EXPECT_NEAR(p.data<float>()[0], 1.0 * (1 - 1e-3) - 1e-2 * 0.5 / (0.5 + 1e-8), 1e-7);
  EXPECT_NEAR(p.data<float>()[1], -2.0 * (1 - 1e-3) + 1e-2 * 0.25 / (0.25 + 1e-8), 1e-7);
  EXPECT_THROW(make_optimizer_state(hand_config(OptimizerKind::Adafactor), {5}), ShapeError);
}

TEST(OptimizerReference, LionTwoStepsByHand) {
  // Lion (Chen et al. 2023): c = b1 m + (1 - b1) g; p = p (1 - lr wd) - lr sign(c); m = b2 m + (1 - b2) g,
  // b1 = 0.9, b2 = 0.99, sign(0) = 0. By hand: step 1 has m = 0, so c = 0.1 g and p = 0.999 p0 - 0.01 sign(g);
  // m1 = 0.01 g1 = (0.005, -0.0025, 0). Step 2: c = 0.9 m1 + 0.1 g2 = (-0.0955, 0.09775, 0.1), all signs from g2
  // (python3 for the digits).
  expect_steps(OptimizerKind::Lion, Tensor::from_vector({1, -2, 0.5f}, {3}),
               {Tensor::from_vector({0.5f, -0.25f, 0}, {3}), Tensor::from_vector({-1, 1, 1}, {3})},
               {{0.989, -1.988, 0.4995}, {0.998011, -1.996012, 0.4890005}});
}

TEST(OptimizerReference, SgdNesterovTwoStepsByHand) {
  // torch.optim.SGD (momentum 0.9, dampening 0.1, nesterov, weight_decay 0.1 as L2): g' = g + wd p; step 1
  // buf = g', later buf = 0.9 buf + (1 - 0.1) g'; p -= lr (g' + 0.9 buf). By hand: step 1 g' = (0.6, -0.45),
  // update 1.9 g' = (1.14, -0.855); step 2 g' = (0.19886, 0.000855), buf = (0.718974, -0.4042305) (python3 for
  // the digits).
  expect_steps(OptimizerKind::SGD, Tensor::from_vector({1, -2}, {2}),
               {Tensor::from_vector({0.5f, -0.25f}, {2}), Tensor::from_vector({0.1f, 0.2f}, {2})},
               {{0.9886, -1.99145}, {0.9801406340000001, -1.9878204755}});
}

TEST(OptimizerReference, AdafactorTwoStepsByHand) {
  // transformers' Adafactor (scale_parameter=False, relative_step=False, beta1=None, eps1 = 1e-30, clip 1,
  // decay_rate -0.8) on a 2x3 matrix, worked out in python3 from the transformers source: beta2_t = 1 - t^-0.8
  // (0 at step 1, 0.4256508225 at step 2); row/col = beta2_t row/col + (1 - beta2_t) mean(g^2 + eps1) over
  // columns/rows; u = g / sqrt(row / mean(row)) / sqrt(col); u /= max(1, rms(u)); p = p (1 - lr wd) - lr u.
  // Step 1: rms(u) = 1.1650757 (clipped), step 2: rms(u) = 0.9717435 (not clipped).
  expect_steps(OptimizerKind::Adafactor, Tensor::from_vector({1, 2, -1, 0.5f, -0.5f, 3}, {2, 3}),
               {Tensor::from_vector({0.1f, -0.2f, 0.3f, 0.4f, 0, -0.6f}, {2, 3}),
                Tensor::from_vector({-0.3f, 0.1f, 0.2f, 0.05f, 0.5f, -0.1f}, {2, 3})},
               {{0.9944800946620518, 2.0166360471261533, -1.0073342936411938, 0.49011894511924453, -0.4995,
                 3.0056489052529427},
                {1.0096826595724169, 2.009930249226081, -1.0144773304017964, 0.48797299615092715,
                 -0.5133817435737512, 3.0051429028735157}});
}

}  // namespace

// AdamW on f32 tensors runs in place (no f64 copies): its bits must be those of the f64 path run on f64 copies of
// the same f32 values and rounded back to f32 once per step, as the f64-copy path did on f32 tensors.
TEST(OptimizerReference, AdamWOnF32StorageIsTheF64PathRoundedOncePerStep) {
  const OptimizerConfig cfg = test_optimizer_config(OptimizerKind::AdamW);
  Tensor p = random_tensor({13, 7}, 5);
  OptimizerState st = make_optimizer_state(cfg, p.shape());
  Tensor p64 = p.clone();
  OptimizerState st64 = make_optimizer_state(cfg, p.shape());
  GradStats clipped;
  clipped.clip_scale = 0.37f;
  for (int step = 1; step <= 3; ++step) {
    const Tensor g = random_tensor(p.shape(), 10 + static_cast<std::uint64_t>(step));
    const StepConstants k = step_constants(cfg, cfg.lr, step);
    ref::optimizer_step(cfg, k, p, g, st, clipped);
    Tensor pd = p64.to(DType::F64);
    OptimizerState sd;
    sd.m = st64.m.to(DType::F64);
    sd.v = st64.v.to(DType::F64);
    ref::optimizer_step(cfg, k, pd, g.to(DType::F64), sd, clipped);
    p64 = pd.to(DType::F32);
    st64.m = sd.m.to(DType::F32);
    st64.v = sd.v.to(DType::F32);
    for (const auto& [got, want] : {std::pair<const Tensor*, const Tensor*>{&p, &p64}, {&st.m, &st64.m},
                                    {&st.v, &st64.v}})
      ASSERT_EQ(std::memcmp(got->raw(), want->raw(), got->nbytes()), 0) << "step " << step;
  }
}
