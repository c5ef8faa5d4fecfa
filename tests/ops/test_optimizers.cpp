// Optimizers as op cases (tests/ops/optimizer_case.h): three steps of global grad norm (clipping on and off) and
// each optimizer's update over three tensors, GPU vs the f64 reference after every step; perf rows. A NaN
// gradient skipping the whole step stays a plain test. Hand-computed steps: tests/ref/test_optimizers_ref.cpp.
#include <cmath>
#include <cstring>
#include <limits>

#include "common/optimizer_config.h"
#include "ops/optimizer_case.h"

#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/optimizer.h"
#endif

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

std::vector<OpCasePtr> optimizer_cases() {
  std::vector<OpCasePtr> v;
  for (auto kind : {OptimizerKind::AdamW, OptimizerKind::Lion, OptimizerKind::SGD, OptimizerKind::Adafactor})
    for (float max_norm : {0.0f, 0.5f}) {
      OptimizerCase::Spec s;
      s.cfg = test_optimizer_config(kind);
      s.cfg.max_grad_norm = max_norm;
      s.shapes = {{7, 13}, {33, 20}, {1, 65}};
      s.steps = 3;
      v.push_back(std::make_shared<OptimizerCase>(
          std::string("optimizer/") + optimizer_name(kind) + (max_norm > 0 ? "_clipped" : "_unclipped"), s));
    }
  return v;
}

POCKETLORA_OP_CASES(Optimizer, optimizer_cases)

#if POCKETLORA_HAS_VULKAN
TEST_F(GpuTest, NanGradientSkipsTheWholeStepAndNamesTheTensor) {
  OptimizerConfig cfg = test_optimizer_config(OptimizerKind::AdamW);
  Tensor p0 = random_tensor({4, 5}, 1), p1 = random_tensor({6}, 2);
  Tensor g0 = random_tensor({4, 5}, 3), g1 = random_tensor({6}, 4);
  g1.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  vk::Arena st(dev(), vk::Lifetime::Permanent, "state");
  auto P0 = up(p0), P1 = up(p1), G0 = up(g0), G1 = up(g1);
  auto S0 = ops::make_optimizer_state(dev(), st, cfg, {4, 5}, "a"), S1 = ops::make_optimizer_state(dev(), st, cfg, {6}, "b");
  auto stats = ops::make_grad_stats(arena());
  auto consts = up(step_constants_tensor(step_constants(cfg, cfg.lr, 1)));
  vk::Sequence seq(dev());
  ops::grad_norm(seq, arena(), {G0, G1}, 1.0f, stats);
  ops::optimizer_step(seq, cfg, consts, P0, G0, S0, stats);
  ops::optimizer_step(seq, cfg, consts, P1, G1, S1, stats);
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
#endif

}  // namespace
