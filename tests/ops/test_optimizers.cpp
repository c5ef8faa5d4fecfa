#if POCKETLORA_HAS_VULKAN  // (not yet ported to op cases: tests/harness/op_case.h)
// Optimizers on the GPU vs the f64 reference over several steps; global grad norm, clipping and NaN skip.
#include <cmath>
#include <limits>

#include "common/optimizer_config.h"
#include "gpu/gpu_fixture.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/ops/optimizer.h"
#include "host/ref/optimizer.h"
#include "runtime/command.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

class Optimizer : public GpuTest, public ::testing::WithParamInterface<std::tuple<OptimizerKind, float>> {};

TEST_P(Optimizer, ThreeStepsMatchReference) {
  const auto [kind, max_norm] = GetParam();
  OptimizerConfig cfg = test_optimizer_config(kind);
  cfg.max_grad_norm = max_norm;
  const std::vector<Shape> shapes = {{7, 13}, {33, 20}, {1, 65}};
  std::vector<Tensor> params, grads_host;
  std::vector<OptimizerState> states;
  std::vector<ops::DeviceTensor> P, G;
  std::vector<ops::DeviceOptimizerState> S;
  vk::Arena state_arena(dev(), vk::Lifetime::Permanent, "optimizer state");
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    params.push_back(random_tensor(shapes[i], 10 + i));
    states.push_back(make_optimizer_state(cfg, shapes[i]));
    P.push_back(up(params.back()));
    std::string name = "p";  // not "p" + to_string: GCC 12 -O3 reports a false -Wrestrict on that
    name += std::to_string(i);
    S.push_back(ops::make_optimizer_state(dev(), state_arena, cfg, shapes[i], name));
  }
  auto stats = ops::make_grad_stats(arena());
  for (std::int64_t step = 1; step <= 3; ++step) {
    std::vector<Tensor> grads;
    G.clear();
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      grads.push_back(random_tensor(shapes[i], 100 * static_cast<std::uint64_t>(step) + i, -1, 1));
      G.push_back(up(grads.back()));
    }
    std::vector<const Tensor*> gp;
    for (auto& g : grads) gp.push_back(&g);
    GradStats want = ref::grad_norm(gp, cfg.max_grad_norm);
    for (std::size_t i = 0; i < shapes.size(); ++i) ref::optimizer_step(cfg, step, params[i], grads[i], states[i], want);
    vk::Sequence seq(dev());
    ops::grad_norm(seq, arena(), G, cfg.max_grad_norm, stats);
    for (std::size_t i = 0; i < shapes.size(); ++i) ops::optimizer_step(seq, cfg, step, P[i], G[i], S[i], stats);
    seq.submit();
    GradStats got = ops::read_grad_stats(dev(), stats);
    EXPECT_FALSE(got.skip);
    EXPECT_NEAR(got.norm, want.norm, 1e-5 * want.norm);  // f32 sum of ~1.3k squares vs f64
    EXPECT_NEAR(got.clip_scale, want.clip_scale, 1e-6);
    // Parameters: f32 updates of size ~lr vs f64; Lion's sign() can flip only when its argument is ~0, which
    // random gradients make vanishingly unlikely. Absolute 2e-6 (lr 1e-2, three steps).
    Tolerance tol;
    tol.max_abs = 2e-6;
    for (std::size_t i = 0; i < shapes.size(); ++i)
      EXPECT_TRUE(within(down(P[i]), params[i], tol)) << optimizer_name(kind) << " tensor " << i << " step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, Optimizer,
                         ::testing::Combine(::testing::Values(OptimizerKind::AdamW, OptimizerKind::Lion,
                                                              OptimizerKind::SGD, OptimizerKind::Adafactor),
                                            ::testing::Values(0.0f, 0.5f)),
                         [](const ::testing::TestParamInfo<std::tuple<OptimizerKind, float>>& p) {
                           return std::string(optimizer_name(std::get<0>(p.param))) +
                                  (std::get<1>(p.param) > 0 ? "_clipped" : "_unclipped");
                         });

TEST_F(GpuTest, NanGradientSkipsTheWholeStepAndNamesTheTensor) {
  OptimizerConfig cfg = test_optimizer_config(OptimizerKind::AdamW);
  Tensor p0 = random_tensor({4, 5}, 1), p1 = random_tensor({6}, 2);
  Tensor g0 = random_tensor({4, 5}, 3), g1 = random_tensor({6}, 4);
  g1.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  vk::Arena st(dev(), vk::Lifetime::Permanent, "state");
  auto P0 = up(p0), P1 = up(p1), G0 = up(g0), G1 = up(g1);
  auto S0 = ops::make_optimizer_state(dev(), st, cfg, {4, 5}, "a"), S1 = ops::make_optimizer_state(dev(), st, cfg, {6}, "b");
  auto stats = ops::make_grad_stats(arena());
  vk::Sequence seq(dev());
  ops::grad_norm(seq, arena(), {G0, G1}, 1.0f, stats);
  ops::optimizer_step(seq, cfg, 1, P0, G0, S0, stats);
  ops::optimizer_step(seq, cfg, 1, P1, G1, S1, stats);
  seq.submit();
  GradStats s = ops::read_grad_stats(dev(), stats);
  EXPECT_TRUE(s.skip);
  EXPECT_EQ(s.first_bad, 1);
  Tensor q0 = down(P0);
  EXPECT_EQ(std::memcmp(q0.raw(), p0.raw(), p0.nbytes()), 0) << "a skipped step must not touch any parameter";
  Tensor m0 = down(S0.m);
  for (std::int64_t i = 0; i < m0.numel(); ++i) ASSERT_EQ(m0.data<float>()[i], 0.0f);
  std::vector<const Tensor*> gp = {&g0, &g1};
  auto r = ref::grad_norm(gp, 1.0f);
  EXPECT_TRUE(r.skip);
  EXPECT_EQ(r.first_bad, 1);
}

}  // namespace
#endif  // POCKETLORA_HAS_VULKAN
