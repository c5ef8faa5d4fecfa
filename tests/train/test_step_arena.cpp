// The step's tensors at their planned offsets (TrainStepEngine with planned_arena: Backend::reserve_step of the
// layout plan_step_memory makes), where tensors whose lifetimes do not overlap share bytes: the same losses,
// gradient norms, validation loss and trained adapter as with every tensor in its own memory, on both backends,
// and the memory the backend holds within the plan.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "common/test_data.h"
#include "host/model/llama_model.h"
#include "host/ref/cpu_backend.h"
#include "host/train/step_engine.h"
#include "host/util/splitmix64.h"
#include "train/random_token_batch.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#include "host/ops/vulkan_backend.h"
#endif

namespace pocketlora {
namespace {

constexpr std::int64_t kBatch = 2, kSeq = 32;

// r=8 on all seven linears with a nonzero B (so every A gets a gradient at step 1) and dropout on; SGD without
// momentum, so the adapter after a step is the gradient scaled: equal adapters mean equal gradients.
LoraAdapter adapter(const LlamaModel& m) {
  LoraConfig c;
  c.dropout = 0.1f;
  LoraAdapter ad = init_lora_adapter(m.config, m.rope_layout, c, 1);
  std::uint64_t s = 9;
  for (auto& mod : ad.modules)
    for (std::int64_t i = 0; i < mod.b.numel(); ++i)
      mod.b.data<float>()[i] = static_cast<float>((static_cast<double>(splitmix64(s) >> 11) * 0x1.0p-53 - 0.5) * 0.2);
  return ad;
}

struct Trained {
  std::vector<double> losses, norms;
  std::optional<double> validation;
  std::vector<std::pair<std::string, Tensor>> adapter;
  std::uint64_t device_bytes = 0;
  std::vector<Backend::MemoryUse> breakdown;  // where device_bytes goes
  StepMemoryPlan plan;
};

// Two optimizer steps of two micro-batches each, then a validation loss.
Trained train(Backend& be, const LlamaModel& m, const LoraAdapter& ad, bool planned, bool checkpointing) {
  StepEngineOptions o;
  o.micro_batch = kBatch;
  o.seq_len = kSeq;
  o.dropout_seed = 7;
  o.checkpointing = checkpointing;
  o.planned_arena = planned;
  o.optimizer.kind = OptimizerKind::SGD;
  TrainStepEngine engine(be, m, ad, o);
  Trained t;
  t.plan = engine.memory_plan();
  for (std::int64_t step = 1; step <= 2; ++step) {
    const auto seed = static_cast<std::uint64_t>(10 * step);
    const StepResult r = engine.step(
        {test::random_token_batch(kBatch, kSeq, seed), test::random_token_batch(kBatch, kSeq, seed + 1)}, 0.05, step);
    t.losses.push_back(r.loss);
    t.norms.push_back(r.stats.norm);
  }
  std::vector<Example> windows(3);
  std::uint64_t s = 5;
  for (auto& w : windows)
    for (std::int64_t i = 0; i < kSeq; ++i) {
      w.ids.push_back(static_cast<std::int32_t>(1 + splitmix64(s) % 500));
      w.labels.push_back(w.ids.back());
    }
  t.validation = engine.loss(windows, 0);
  t.adapter = engine.adapter_tensors();
  t.device_bytes = be.memory_in_use();
  t.breakdown = be.memory_breakdown();
  return t;
}

void expect_identical(const Trained& planned, const Trained& own) {
  EXPECT_EQ(planned.losses, own.losses);
  EXPECT_EQ(planned.norms, own.norms);
  ASSERT_TRUE(planned.validation && own.validation);
  EXPECT_EQ(*planned.validation, *own.validation);
  ASSERT_EQ(planned.adapter.size(), own.adapter.size());
  for (std::size_t i = 0; i < own.adapter.size(); ++i) {
    const Tensor &p = planned.adapter[i].second, &o = own.adapter[i].second;
    ASSERT_EQ(p.shape(), o.shape());
    EXPECT_EQ(0, std::memcmp(p.raw(), o.raw(), o.nbytes())) << own.adapter[i].first;
  }
}

void print(const char* what, const Trained& planned, const Trained& own) {
  const auto mib = [](std::uint64_t b) { return static_cast<double>(b) / 1048576.0; };
  std::printf(
      "%s: plan %.2f MiB resident + %.2f MiB step arena (%.2f MiB without reuse); measured %.2f MiB "
      "with the plan, %.2f MiB without\n",
      what, mib(planned.plan.resident_bytes), mib(planned.plan.step_arena_bytes),
      mib(planned.plan.step_unplanned_bytes), mib(planned.device_bytes), mib(own.device_bytes));
}

class StepArena : public ::testing::TestWithParam<bool> {};

// CPU: bit-identical, and the backend holds the plan's bytes: resident tensors and one arena.
TEST_P(StepArena, CpuStepMatchesUnplannedAndHoldsThePlan) {
  POCKETLORA_REQUIRE_DATA(path, "models/stories260K/stories260K.bin");
  const LlamaModel m = load_llama_model(path, BaseQuant::Nf4);
  const LoraAdapter ad = adapter(m);
  ref::CpuBackend a, b;
  const Trained planned = train(a, m, ad, true, GetParam()), own = train(b, m, ad, false, GetParam());
  print(GetParam() ? "cpu, checkpointing" : "cpu", planned, own);
  expect_identical(planned, own);
  EXPECT_LT(planned.plan.step_arena_bytes, planned.plan.step_unplanned_bytes);
  // The CPU backend holds exactly what the plan counts: resident bytes as uploaded (of each double-quantized NF4
  // weight also the first-level fp32 absmax it decodes with, which the plan counts too) and the arena as planned —
  // so a --max-memory the plan fits, the run fits.
  EXPECT_EQ(planned.device_bytes, planned.plan.peak_bytes());
  EXPECT_LT(planned.device_bytes, own.device_bytes);
}

INSTANTIATE_TEST_SUITE_P(Checkpointing, StepArena, ::testing::Bool());

#if POCKETLORA_HAS_VULKAN
using VulkanStepArena = test::GpuTest;

// Vulkan (lavapipe in CI): bit-identical too — the kernels and their order are the same, only the bindings'
// offsets move, and a tensor that takes another's bytes is ordered after the other's last reader by the barriers
// the sequence derives from byte ranges (the validation layer's synchronization checks are on in the tests).
// Memory: as below.
TEST_F(VulkanStepArena, StepMatchesUnplannedAndHoldsThePlan) {
  POCKETLORA_REQUIRE_DATA(path, "models/stories260K/stories260K.bin");
  const LlamaModel m = load_llama_model(path, BaseQuant::Nf4);
  const LoraAdapter ad = adapter(m);
  ops::VulkanBackend a(dev());
  const Trained planned = train(a, m, ad, true, /*checkpointing=*/true);
  ops::VulkanBackend b(dev());
  const Trained own = train(b, m, ad, false, /*checkpointing=*/true);
  print("vulkan, checkpointing", planned, own);
  expect_identical(planned, own);
  const StepArenaLimits lim = a.step_arena_limits();
  EXPECT_EQ(planned.plan.layout.limits.alignment, lim.alignment);
  EXPECT_EQ(planned.plan.layout.limits.block_bytes, lim.block_bytes);
  // The step arena and the op scratch are held exactly as planned (the op scratch: the largest op's, here the
  // LoRA backward's G, drop(X) and dX of a projection), nothing outside the plan is allocated for the
  // step but grad_norm's small table (one 64 KiB block), and the weights arena holds the resident bytes (its blocks
  // sized to the plan's resident bytes, StepLayout::resident_bytes).
  EXPECT_GT(planned.plan.op_scratch_bytes, 0u);
  std::uint64_t weights_held = 0, unplanned_held = 0;
  for (const auto& u : planned.breakdown) {
    std::printf("  %-18s held %10llu used %10llu\n", u.name.c_str(), static_cast<unsigned long long>(u.held),
                static_cast<unsigned long long>(u.used));
    if (u.name == "step (planned)") {
      EXPECT_EQ(u.held, planned.plan.step_arena_bytes);
    }
    if (u.name == "op scratch") {
      EXPECT_EQ(u.held, planned.plan.op_scratch_bytes);
    }
    if (u.name == "step (unplanned)") {  // only grad_norm's chunk table, which the host writes while recording
      EXPECT_LE(u.used, 65536u);
      EXPECT_EQ(u.held, 65536u);
      unplanned_held = u.held;
    }
    if (u.name == "weights") {
      EXPECT_GE(u.used, planned.plan.resident_bytes);
      weights_held = u.held;
    }
  }
  EXPECT_EQ(weights_held, planned.plan.resident_bytes);
  EXPECT_EQ(planned.device_bytes,
            weights_held + unplanned_held + planned.plan.step_arena_bytes + planned.plan.op_scratch_bytes);
}
#endif

}  // namespace
}  // namespace pocketlora
