// `pocketlora train --policy FILE --sensors scripted:TIMELINE` with the committed examples/ files: the demo
// timeline walks through every state and finishes; a timeline that never charges ends cleanly with nothing
// trained; bad policy options exit with their category.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/run_cli.h"
#include "common/test_data.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

const fs::path examples = fs::path(POCKETLORA_SOURCE_DIR) / "examples";

// `sensors`: a timeline file of examples/ ("scripted:" is prepended) or, with a ':' in it, a whole --sensors value.
std::string policy_args(const fs::path& out, const std::string& sensors,
                        const fs::path& policy = examples / "policy.json") {
  return "train --backend cpu --model " + test::data_path("models/stories260K/stories260K.bin").string() + " --data " +
         test::data_path("datasets/tinystories_sample.txt").string() +
         " --seq-len 32 --batch 2 --steps 30 --lr 1e-3 --out " + out.string() + " --policy " + policy.string() +
         " --sensors " +
         (sensors.find(':') != std::string::npos ? sensors : "scripted:" + (examples / sensors).string());
}

TEST(TrainPolicyCli, TheOvernightDemoWalksThroughEveryStateAndFinishes) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const test::CliResult r = run_cli(policy_args(tmp / "run", "timeline_overnight.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  // In order, one line each (docs/POLICY.md walks through the timing: 60 s per step, 60 s polls).
  std::size_t at = 0;
  for (const char* line :
       {"policy: idle -> training at t=600s", "policy: training -> cooldown-throttle at t=900s: 42.5 °C above 42 °C",
        "policy: cooldown-throttle -> cooldown-pause at t=1260s: 45.5 °C",
        "policy: cooldown-pause -> training at t=1500s: 37.0 °C below the resume limit 38 °C",
        "policy: training -> idle at t=1800s: not charging", "policy: idle -> training at t=1920s",
        "policy: training -> idle at t=2400s: battery temperature unknown", "policy: idle -> training at t=2520s",
        "policy: training -> done at t=3060s: all 30 steps done", "done: 30 of 30 steps"}) {
    const std::size_t found = r.out.find(line, at);
    ASSERT_NE(found, std::string::npos) << "missing or out of order: " << line << "\n" << r.out;
    at = found;
  }
  EXPECT_TRUE(fs::exists(tmp / "run" / "adapter_model.safetensors"));
}

TEST(TrainPolicyCli, NeverChargingEndsCleanlyWithNothingTrained) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  const test::CliResult r = run_cli(policy_args(tmp / "run", "timeline_never_charging.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("stopped by the device policy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not charging; 0 of 30 steps done"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing trained"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "run" / "adapter_model.safetensors"));
}

TEST(TrainPolicyCli, BadPolicyOptionsExitWithTheirCategory) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  test::TempDir tmp;
  test::CliResult r = run_cli(policy_args(tmp / "run", "battery:0"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error [invalid_input]: --sensors 'battery:0'"), std::string::npos) << r.out;
  std::ofstream(tmp / "typo.json") << R"({"cooldown_above": 41})";
  r = run_cli(policy_args(tmp / "run", "timeline_overnight.json", tmp / "typo.json"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("error [format]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unknown field 'cooldown_above'"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pocketlora
