// host/train/planning_backend.h: the step recorded without running, for its
// memory plan.
#include <gtest/gtest.h>

#include "common/test_data.h"
#include "host/model/llama_forward.h"
#include "host/model/llama_model.h"
#include "host/train/planning_backend.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

TEST(PlanningBackend, ForwardOfStories260KIsPlannedWithoutRunning) {
  POCKETLORA_REQUIRE_DATA(path, "models/stories260K/stories260K.bin");
  const LlamaModel m = load_llama_model(path);
  PlanningBackend plan(256);
  const BackendLlama w = upload_llama(plan, m);
  // Resident: every parameter once (the head is tied to the embedding), f32.
  // Counted here from the config.
  const auto& c = m.config;
  const std::int64_t q_dim = c.n_heads * c.head_dim, kv = c.kv_dim();
  const std::int64_t per_layer = 2 * c.dim + c.dim * q_dim + 2 * c.dim * kv + q_dim * c.dim + 3 * c.dim * c.hidden_dim;
  const std::int64_t params = c.vocab_size * c.dim + c.n_layers * per_layer + c.dim;
  EXPECT_EQ(plan.resident_bytes(), static_cast<std::uint64_t>(params) * 4);

  const std::vector<std::int32_t> ids{1, 403, 407, 261, 378};
  const Tensor logits = llama_forward_logits(plan, w, ids);
  EXPECT_EQ(logits.shape(), (Shape{5, c.vocab_size}));
  const auto tensors = plan.step_tensors();
  ASSERT_FALSE(tensors.empty());
  const MemoryPlan p = plan.step_plan();
  // Reuse: the logits are made after the last layer's MLP tensors die, so they
  // share their bytes.
  EXPECT_LT(p.arena_bytes, plan.step_tensor_bytes());
  EXPECT_GE(p.arena_bytes, p.live_peak_bytes);
  std::uint64_t largest = 0;
  for (const auto& t : tensors) largest = std::max(largest, t.bytes);
  EXPECT_GE(p.arena_bytes, largest);
  EXPECT_GT(plan.ops(), 5 * 10);  // ~15 ops per layer
}

// The loss and optimizer ops are recorded like any other; AdamW's state (m and v), the gradient statistics and the
// step constants are resident.
TEST(PlanningBackend, LossAndOptimizerStateArePlanned) {
  PlanningBackend plan(256);
  OptimizerConfig cfg;  // AdamW
  const BTensor p = plan.alloc({8, 16}, DType::F32, Lifetime::Weights, "p");
  const std::uint64_t before = plan.resident_bytes();
  const BOptimizerState st = plan.alloc_optimizer_state(cfg, {8, 16}, "p");
  const BTensor stats = plan.alloc_grad_stats(), consts = plan.alloc_step_constants();
  EXPECT_EQ(plan.resident_bytes() - before, 2u * 8 * 16 * 4 + 4 * 4 + 5 * 4);
  const BTensor logits = plan.alloc({4, 10}, DType::F32, Lifetime::Step, "logits");
  const BTensor labels = plan.alloc({4}, DType::I32, Lifetime::Step, "labels");
  const BTensor lse = plan.alloc({4}, DType::F32, Lifetime::Step, "lse");
  const BTensor totals = plan.alloc({2}, DType::F32, Lifetime::Step, "totals");
  const BTensor scale = plan.alloc({1}, DType::F32, Lifetime::Step, "scale");
  const BTensor g = plan.alloc({8, 16}, DType::F32, Lifetime::Step, "g");
  const std::int64_t ops0 = plan.ops();
  plan.begin();
  plan.cross_entropy(logits, labels, lse, totals);
  plan.cross_entropy_backward(logits, labels, lse, scale, logits);
  plan.grad_norm({g}, 1.0f, stats);
  plan.optimizer_step(cfg, consts, p, g, st, stats);
  plan.end();
  EXPECT_EQ(plan.ops() - ops0, 4);
  // The gradient lives from the norm to the update; the logits from the loss to its backward.
  int checked = 0;
  for (const auto& t : plan.step_tensors())
    if (t.name == "g" || t.name == "logits") {
      EXPECT_EQ(t.last - t.first, 1) << t.name;
      ++checked;
    }
  EXPECT_EQ(checked, 2);
}

// Lifetimes per program: "forward" is used by programs 1 and 3 (the micro-batch and the evaluation) and dead in
// program 2 (the update), whose "scratch" takes its bytes; what the host writes ("ids") lives through every
// program; what it reads ("out") lives to the read. step_layout() lists every Step allocation in order with the
// plan's offsets, views not included.
TEST(PlanningBackend, LifetimesArePerProgramAndHostInputsLiveThroughout) {
  PlanningBackend plan(256);
  const BTensor ids = plan.alloc({64}, DType::I32, Lifetime::Step, "ids");
  const BTensor fwd = plan.alloc({1024}, DType::F32, Lifetime::Step, "forward");
  const BTensor scratch = plan.alloc({1024}, DType::F32, Lifetime::Step, "scratch");
  const BTensor out = plan.alloc({1024}, DType::F32, Lifetime::Step, "out");
  const BTensor half = plan.view_rows(fwd, 0, 512);
  plan.begin();
  plan.fill(half, 1.0f);  // op 0
  plan.add(fwd, fwd, out, 1.0f);  // op 1
  plan.end();
  plan.begin();
  plan.fill(scratch, 2.0f);  // op 2
  plan.end();
  plan.begin();
  plan.fill(fwd, 3.0f);  // op 3
  plan.end();
  plan.write(ids, Tensor::zeros({64}, DType::I32));
  plan.read(out);  // op 4
  const auto ts = plan.step_tensors();
  ASSERT_EQ(ts.size(), 4u);
  EXPECT_EQ(ts[0].name, "ids");
  EXPECT_EQ(ts[0].first, 0);
  EXPECT_EQ(ts[0].last, 4);
  EXPECT_EQ(ts[1].first, 0);
  EXPECT_EQ(ts[1].last, 1);
  ASSERT_EQ(ts[1].also_live.size(), 1u);
  EXPECT_EQ(ts[1].also_live[0], (std::pair<std::int64_t, std::int64_t>{3, 3}));
  EXPECT_EQ(ts[3].first, 1);
  EXPECT_EQ(ts[3].last, 4);
  const StepLayout layout = plan.step_layout();
  ASSERT_EQ(layout.tensors.size(), 4u);
  EXPECT_EQ(layout.tensors[2].name, "scratch");
  EXPECT_EQ(layout.tensors[2].shape, (Shape{1024}));
  EXPECT_EQ(layout.tensors[1].offset, layout.tensors[2].offset) << "the update's scratch takes the forward's bytes";
  EXPECT_NE(layout.tensors[1].offset, layout.tensors[3].offset);
  EXPECT_EQ(layout.arena_bytes, 2 * 4096u + 256u);
}

}  // namespace
