// The device's memory budget is asked again when a run resumes after a policy pause (the backend, released at the
// pause, is made again): a budget that shrank meanwhile — a phone's other apps — is planned for like the start's
// (checkpointing turned on here, logged as a memory_plan event), and one nothing fits any more is an
// OutOfMemoryError naming it, with the pause's checkpoint on disk. The budget is set through the device profile
// (memory.heap_budget_mib), the one way a test sets what VK_EXT_memory_budget reports.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>

#include "common/error_message.h"
#include "common/scoped_env.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/policy/scripted_timeline.h"
#include "host/train/checkpoint.h"
#include "host/train/metrics_log.h"
#include "host/train/trainer.h"
#if POCKETLORA_HAS_VULKAN
#include "gpu/gpu_fixture.h"
#endif

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

#if POCKETLORA_HAS_VULKAN
constexpr std::uint64_t kMiB = 1 << 20;

void write_budget(const fs::path& profile, std::uint64_t mib) {
  std::ofstream(profile) << R"({"params": {"memory.budget_margin_mib": 0, "memory.heap_budget_mib": )" << mib << "}}";
}

TrainOptions stories_vulkan(const fs::path& out, CheckpointingMode mode) {
  TrainOptions o;
  o.model = test::data_path("models/stories260K/stories260K.bin");
  o.tokenizer = test::data_path("models/stories260K/tok512.bin");
  o.data.path = test::data_path("datasets/tinystories_sample.txt");
  o.data.seq_len = 64;
  o.out = out;
  o.batch = 8;
  o.steps = 3;
  o.save_every = 3;
  o.eval_every = 3;
  o.checkpointing = mode;
  o.backend = BackendKind::Vulkan;
  o.precision = Precision::F32;
  return o;
}

// 60 s of timeline time per step: 46 °C at t=100 pauses after step 2, 35 °C at t=200 resumes.
TrainPolicy pause_after_step_two() {
  auto tl = std::make_shared<ScriptedTimeline>(
      json{{"events",
            {{{"t", 0}, {"charging", true}, {"battery_percent", 80}, {"battery_temp_c", 30}},
             {{"t", 100}, {"battery_temp_c", 46}},
             {{"t", 200}, {"battery_temp_c", 35}}}}},
      "test timeline");
  return TrainPolicy{PolicyConfig{}, tl, tl};
}

std::vector<json> memory_plan_events(const fs::path& metrics) {
  std::vector<json> out;
  for (const json& e : read_metrics_events(metrics))
    if (e.at("event") == "memory_plan") out.push_back(e);
  return out;
}

// Devices made during a test read their profile from `profile` (POCKETLORA_PROFILE), which a test rewrites.
class VulkanResumeBudget : public ::testing::Test {
 protected:
  void SetUp() override {
    POCKETLORA_REQUIRE_GPU();
    POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
    POCKETLORA_REQUIRE_DATA(tok, "models/stories260K/tok512.bin");
    POCKETLORA_REQUIRE_DATA(data, "datasets/tinystories_sample.txt");
    watch_.emplace();
    env_.emplace("POCKETLORA_PROFILE", profile.string());
  }
  test::TempDir tmp;
  const fs::path profile = tmp / "profile.json";

 private:
  std::optional<test::ValidationWatch> watch_;
  std::optional<test::ScopedEnv> env_;
};

TEST_F(VulkanResumeBudget, ABudgetThatShrinksDuringAPauseIsPlannedForOnResume) {
  // The plain and the checkpointed step's plans; the budget starts at 4x the plain one and shrinks, during the
  // pause, to the checkpointed one rounded up to a MiB.
  write_budget(profile, 1 << 20);
  const MemoryReport off = Trainer(stories_vulkan(tmp / "unused", CheckpointingMode::Auto)).plan_memory();
  const MemoryReport on = Trainer(stories_vulkan(tmp / "unused", CheckpointingMode::On)).plan_memory();
  ASSERT_FALSE(off.checkpointing);
  const std::uint64_t large = 4 * off.planned_peak_bytes / kMiB, small = (on.planned_peak_bytes + kMiB - 1) / kMiB;
  ASSERT_LT(small * kMiB, off.planned_peak_bytes) << "the checkpointed and plain plans are within 1 MiB";
  write_budget(profile, large);

  TrainOptions o = stories_vulkan(tmp / "run", CheckpointingMode::Auto);
  o.policy = pause_after_step_two();
  Trainer t(o);
  EXPECT_FALSE(t.plan_memory().checkpointing);
  EXPECT_EQ(t.plan_memory().limit_bytes, large * kMiB);
  const TrainSummary s = t.run({}, [&](const PolicyTransition& tr) {
    if (tr.to == "cooldown-pause") write_budget(profile, small);
  });
  EXPECT_EQ(s.steps_done, 3);
  EXPECT_TRUE(s.memory.checkpointing);
  EXPECT_EQ(s.memory.micro_batch, 8);
  EXPECT_EQ(s.memory.limit_bytes, small * kMiB);
  EXPECT_TRUE(test::mentions(s.memory.limit_source, {"vulkan memory budget", "memory.heap_budget_mib " +
                                                                               std::to_string(small)}));
  const std::vector<json> plans = memory_plan_events(s.metrics);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].at("step"), 2);
  EXPECT_EQ(plans[0].at("checkpointing"), true);
  EXPECT_EQ(plans[0].at("limit_bytes"), small * kMiB);
  EXPECT_LE(plans[0].at("planned_peak_bytes").get<std::uint64_t>(), small * kMiB);
}

TEST_F(VulkanResumeBudget, ABudgetNothingFitsAnyMoreIsRefusedOnResumeWithThePauseCheckpointKept) {
  write_budget(profile, 1 << 20);
  TrainOptions o = stories_vulkan(tmp / "run", CheckpointingMode::Auto);
  o.policy = pause_after_step_two();
  Trainer t(o);
  const std::string msg = test::error_of<OutOfMemoryError>([&] {
    t.run({}, [&](const PolicyTransition& tr) {
      if (tr.to == "cooldown-pause") write_budget(profile, 1);
    });
  });
  EXPECT_TRUE(test::mentions(msg, {"resuming after a pause at step 2", "memory.heap_budget_mib 1",
                                   "1048576 bytes allowed", "resumes from"}))
      << msg;
  std::vector<std::int64_t> steps;
  for (const auto& [step, dir] : list_checkpoints(tmp / "run")) steps.push_back(step);
  EXPECT_EQ(steps, std::vector<std::int64_t>{2});
}
#endif

}  // namespace
}  // namespace pocketlora
