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

}  // namespace
