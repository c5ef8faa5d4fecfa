// The trainer under a device policy (host/train/trainer.h TrainPolicy, host/policy/): a scripted timeline that
// forces two cooldown pauses (checkpoint, engine released, rebuilt from the checkpoint) ends with the adapter an
// uninterrupted run ends with, bit for bit on the CPU backend, and logs exactly the expected transitions; a
// timeline that never allows training ends cleanly with nothing trained.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/policy/scripted_timeline.h"
#include "host/train/checkpoint.h"
#include "host/train/metrics_log.h"
#include "host/train/trainer.h"
#include "train/small_run.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The shared small run, keeping every checkpoint (the pauses' included) for the test to list.
TrainOptions policy_run(const fs::path& out) {
  TrainOptions o = test::small_run(out);
  o.keep_checkpoints = 10;
  return o;
}

TrainPolicy scripted(const json& timeline) {
  auto tl = std::make_shared<ScriptedTimeline>(timeline, "test timeline");
  return TrainPolicy{PolicyConfig{}, tl, tl};
}

std::vector<std::string> transitions(const fs::path& metrics) {
  std::vector<std::string> out;
  for (const json& e : read_metrics_events(metrics)) {
    EXPECT_EQ(e.at("event"), "policy");
    EXPECT_TRUE(e.at("readings").is_object());
    out.push_back(e.at("from").get<std::string>() + ">" + e.at("to").get<std::string>() + "@step" +
                  std::to_string(e.at("step").get<std::int64_t>()));
  }
  return out;
}

// 60 s of timeline time per step, 30 s per wait: 46 °C at t=100 pauses after step 2 (t=120), 35 °C at t=200
// resumes at t=210; 47 °C at t=300 pauses after step 4 (t=330), 35 °C at t=400 resumes at t=420.
TEST(TrainerPolicy, TwoCooldownPausesEndWithTheUninterruptedAdapterBitForBit) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  std::uint64_t whole_device_bytes = 0;
  {
    Trainer t(policy_run(tmp / "whole"));
    const TrainSummary s = t.run();
    EXPECT_EQ(s.steps_done, 6);
    whole_device_bytes = s.memory.measured_device_bytes;
  }
  TrainOptions o = policy_run(tmp / "paused");
  o.policy = scripted({{"events",
                        {{{"t", 0}, {"charging", true}, {"battery_percent", 80}, {"battery_temp_c", 30}},
                         {{"t", 100}, {"battery_temp_c", 46}},
                         {{"t", 200}, {"battery_temp_c", 35}},
                         {{"t", 300}, {"battery_temp_c", 47}},
                         {{"t", 400}, {"battery_temp_c", 35}}}}});
  std::vector<std::string> seen, statuses;
  Trainer t(o);
  const TrainSummary s = t.run([&](const StepReport& r) { statuses.push_back(r.policy_status); },
                               [&](const PolicyTransition& tr) { seen.push_back(tr.from + ">" + tr.to); });
  EXPECT_EQ(s.steps_done, 6);
  EXPECT_TRUE(s.policy_stop.empty());
  const std::vector<std::string> want = {"idle>training@step0",           "training>cooldown-pause@step2",
                                         "cooldown-pause>training@step2", "training>cooldown-pause@step4",
                                         "cooldown-pause>training@step4", "training>done@step6"};
  EXPECT_EQ(transitions(s.metrics), want);
  EXPECT_EQ(seen.size(), want.size());
  ASSERT_EQ(statuses.size(), 6u);
  EXPECT_EQ(statuses[0], "training 30.0 °C");
  // A pause releases the backend with the engine: resuming does not hold the weights twice.
  EXPECT_EQ(s.memory.measured_device_bytes, whole_device_bytes);

  // The pauses wrote checkpoints at steps 2 and 4 (save_every alone would write 3 and 6 only).
  std::vector<std::int64_t> steps;
  for (const auto& [step, dir] : list_checkpoints(tmp / "paused")) steps.push_back(step);
  EXPECT_EQ(steps, (std::vector<std::int64_t>{2, 3, 4, 6}));
  std::vector<std::int64_t> logged;
  for (const StepMetrics& m : read_metrics_log(s.metrics)) logged.push_back(m.step);
  EXPECT_EQ(logged, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));

  const auto a = test::final_adapter(tmp / "whole"), b = test::final_adapter(tmp / "paused");
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second.nbytes(), b[i].second.nbytes());
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()), 0) << a[i].first;
  }
}

TEST(TrainerPolicy, ATimelineThatNeverAllowsTrainingEndsCleanlyWithNothingTrained) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  TrainOptions o = policy_run(tmp / "run");
  o.policy = scripted(
      {{"end_s", 600}, {"events", {{{"t", 0}, {"charging", false}, {"battery_percent", 90}, {"battery_temp_c", 30}}}}});
  Trainer t(o);
  const TrainSummary s = t.run();
  EXPECT_EQ(s.steps_done, 0);
  EXPECT_FALSE(s.interrupted);
  EXPECT_TRUE(test::mentions(s.policy_stop, {"scripted test timeline", "ended", "idle", "not charging", "0 of 6"}));
  EXPECT_TRUE(s.checkpoint.empty());
  EXPECT_TRUE(list_checkpoints(tmp / "run").empty());
  EXPECT_FALSE(fs::exists(tmp / "run" / "adapter_model.safetensors"));
  EXPECT_TRUE(read_metrics_log(s.metrics).empty());
  EXPECT_EQ(transitions(s.metrics), std::vector<std::string>{"idle>failed@step0"});
}

// An error mid-run (here thrown by the step callback) ends the policy in Failed, logged, and still propagates.
TEST(TrainerPolicy, AnErrorMidRunIsLoggedAsFailed) {
  POCKETLORA_REQUIRE_DATA(p, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  TrainOptions o = policy_run(tmp / "run");
  o.policy = scripted({{"events", {{{"t", 0}, {"charging", true}, {"battery_percent", 80}, {"battery_temp_c", 30}}}}});
  Trainer t(o);
  EXPECT_THROW(t.run([](const StepReport& r) {
    if (r.step == 2) throw IoError("disk full");
  }),
               IoError);
  EXPECT_EQ(transitions(tmp / "run" / "metrics.jsonl"),
            (std::vector<std::string>{"idle>training@step0", "training>failed@step2"}));
}

}  // namespace
}  // namespace pocketlora
