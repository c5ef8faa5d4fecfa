// The device policy's state machine (host/policy/device_policy.h) under scripted timelines: exact transition
// sequences and times for hysteresis, throttle -> pause, unknown readings, unplugging mid-run and the user
// override. Timeline time: 60 s per step (step_seconds), 30 s per wait (the default poll_seconds).
#include <gtest/gtest.h>

#include "common/error_message.h"
#include "host/core/error.h"
#include "host/policy/device_policy.h"
#include "host/policy/policy_config.h"
#include "host/policy/scripted_timeline.h"
#include "policy/policy_driver.h"

namespace pocketlora {
namespace {

using nlohmann::json;
using Seq = std::vector<std::string>;

test::PolicyRun run_timeline(const json& timeline, int steps, PolicyConfig cfg = {}) {
  ScriptedTimeline tl(timeline, "timeline");
  DevicePolicy policy(cfg);
  return test::drive_policy(policy, tl, steps);
}

TEST(DevicePolicy, DefaultsAreTheDocumentedThresholds) {
  const PolicyConfig c;
  EXPECT_TRUE(c.require_charging);
  EXPECT_EQ(c.start_battery_percent, 50);
  EXPECT_EQ(c.start_below_c, 40);
  EXPECT_EQ(c.cooldown_above_c, 42);
  EXPECT_EQ(c.resume_below_c, 38);
}

// 43 °C: throttle (duty 1 - 3/5 = 0.4, so 90 s idle after a 60 s step); 39 °C is inside the hysteresis band and
// keeps Cooldown (duty 1: no idle); 37 °C resumes.
TEST(DevicePolicy, CooldownHysteresisAndThrottleDuty) {
  const json tl = {{"events",
                    {{{"t", 0}, {"charging", true}, {"battery_percent", 80}, {"battery_temp_c", 30}},
                     {{"t", 100}, {"battery_temp_c", 43}},
                     {{"t", 200}, {"battery_temp_c", 39}},
                     {{"t", 300}, {"battery_temp_c", 37}}}}};
  const auto run = run_timeline(tl, 6);
  EXPECT_EQ(run.transitions,
            (Seq{"idle>training@0", "training>cooldown-throttle@120", "cooldown-throttle>training@330"}));
  EXPECT_EQ(run.steps, 6);
  EXPECT_TRUE(test::mentions(run.reasons[1], {"43.0 °C", "42"}));
  EXPECT_TRUE(test::mentions(run.reasons[2], {"37.0 °C", "38"}));
}

TEST(DevicePolicy, ThrottleEscalatesToPauseAndResumesBelowTheResumeLimit) {
  const json tl = {{"events",
                    {{{"t", 0}, {"charging", true}, {"battery_percent", 80}, {"battery_temp_c", 30}},
                     {{"t", 100}, {"battery_temp_c", 43}},
                     {{"t", 200}, {"battery_temp_c", 46}},
                     {{"t", 400}, {"battery_temp_c", 35}}}}};
  const auto run = run_timeline(tl, 5);
  EXPECT_EQ(run.transitions, (Seq{"idle>training@0", "training>cooldown-throttle@120",
                                  "cooldown-throttle>cooldown-pause@270", "cooldown-pause>training@420"}));
}

TEST(DevicePolicy, TooHotToStartStaysIdle) {
  const json tl = {{"end_s", 300},
                   {"events", {{{"t", 0}, {"charging", true}, {"battery_percent", 90}, {"battery_temp_c", 40}}}}};
  const auto run = run_timeline(tl, 3);
  EXPECT_TRUE(run.transitions.empty());
  EXPECT_EQ(run.steps, 0);
}

// A missing and an absurd (500 °C) battery temperature are both unknown: never start, stop when it goes.
TEST(DevicePolicy, UnknownReadingsDoNotTrain) {
  const json tl = {{"end_s", 400},
                   {"events",
                    {{{"t", 0}, {"charging", true}, {"battery_percent", 80}},
                     {{"t", 60}, {"battery_temp_c", 30}},
                     {{"t", 200}, {"battery_temp_c", 500}}}}};
  const auto run = run_timeline(tl, 10);
  EXPECT_EQ(run.transitions, (Seq{"idle>training@60", "training>idle@240"}));
  EXPECT_EQ(run.reasons[1], "battery temperature unknown");
  EXPECT_EQ(run.steps, 3);
}

// Unplugged mid-run: Idle. Plugged back at 48 %: below the start level, stays Idle until 55 %. Meanwhile 47 %
// while training (above the 45 % stop level) did not stop it: the battery hysteresis.
TEST(DevicePolicy, UnplugMidRunAndBatteryHysteresis) {
  const json tl = {{"events",
                    {{{"t", 0}, {"charging", true}, {"battery_percent", 80}, {"battery_temp_c", 30}},
                     {{"t", 60}, {"battery_percent", 47}},
                     {{"t", 150}, {"charging", false}},
                     {{"t", 300}, {"charging", true}, {"battery_percent", 48}},
                     {{"t", 400}, {"battery_percent", 55}}}}};
  const auto run = run_timeline(tl, 4);
  EXPECT_EQ(run.transitions, (Seq{"idle>training@0", "training>idle@180", "idle>training@420"}));
  EXPECT_EQ(run.reasons[1], "not charging");
  EXPECT_EQ(run.steps, 4);
}

// The user's Train lifts the charging and battery conditions but not the temperature ones; Pause stops at once.
TEST(DevicePolicy, UserOverride) {
  const json tl = {
      {"end_s", 400},
      {"events",
       {{{"t", 0}, {"charging", false}, {"battery_percent", 30}, {"battery_temp_c", 30}, {"user_override", "train"}},
        {{"t", 100}, {"user_override", "pause"}},
        {{"t", 200}, {"user_override", "none"}},
        {{"t", 300}, {"user_override", "train"}, {"battery_temp_c", 41}}}}};
  ScriptedTimeline timeline(tl, "timeline");
  DevicePolicy policy{PolicyConfig{}};
  const auto run = test::drive_policy(policy, timeline, 10);
  EXPECT_EQ(run.transitions, (Seq{"idle>training@0", "training>idle@120"}));
  EXPECT_TRUE(test::mentions(run.reasons[0], {"user override: train"}));
  EXPECT_EQ(run.reasons[1], "user override: pause");
  EXPECT_TRUE(test::mentions(policy.reason(), {"41.0 °C not below the start limit 40"}));
}

TEST(DevicePolicy, HotGpuZoneCountsAndOtherZonesDoNot) {
  const json tl = {{"events",
                    {{{"t", 0},
                      {"charging", true},
                      {"battery_percent", 80},
                      {"battery_temp_c", 30},
                      {"zones", {{"cpu-package", 90}, {"gpu-thermal", 30}}}},
                     {{"t", 100}, {"zones", {{"gpu-thermal", 44}}}}}}};
  const auto run = run_timeline(tl, 3);
  EXPECT_EQ(run.transitions, (Seq{"idle>training@0", "training>cooldown-throttle@120"}));
}

TEST(DevicePolicy, ScreenOnBlocksWhenConfigured) {
  PolicyConfig cfg;
  cfg.train_with_screen_on = false;
  const json tl = {
      {"events",
       {{{"t", 0}, {"charging", true}, {"battery_percent", 80}, {"battery_temp_c", 30}, {"screen_on", true}},
        {{"t", 90}, {"screen_on", false}}}}};
  const auto run = run_timeline(tl, 1, cfg);
  EXPECT_EQ(run.transitions, (Seq{"idle>training@90"}));
}

TEST(DevicePolicy, DecideAfterDoneIsAnError) {
  DevicePolicy policy{PolicyConfig{}};
  const PolicyTransition t = policy.finish("all steps done", 5, {});
  EXPECT_EQ(t.from, "idle");
  EXPECT_EQ(t.to, "done");
  EXPECT_THROW(policy.decide({}, 6, 0), std::logic_error);
}

TEST(PolicyConfig, FileFieldsOverrideDefaultsAndErrorsNameTheField) {
  const PolicyConfig c = parse_policy_config(json{{"cooldown_above_c", 45}, {"thermal_zones", {"skin"}}}, "p.json");
  EXPECT_EQ(c.cooldown_above_c, 45);
  EXPECT_EQ(c.resume_below_c, 38);
  EXPECT_EQ(c.thermal_zones, std::vector<std::string>{"skin"});
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([] {
                               parse_policy_config(json{{"resume_below_c", 43}}, "p.json");
                             }),
                             {"p.json", "resume_below_c", "43", "cooldown_above_c"}));
  EXPECT_TRUE(test::mentions(test::error_of<FormatError>([] {
                               parse_policy_config(json{{"cooldown_above_c", "hot"}}, "p.json");
                             }),
                             {"p.json", "cooldown_above_c", "string"}));
  EXPECT_TRUE(test::mentions(test::error_of<FormatError>([] {
                               parse_policy_config(json{{"cooldown_abov_c", 1}}, "p.json");
                             }),
                             {"p.json", "unknown field", "cooldown_abov_c"}));
  EXPECT_TRUE(test::mentions(test::error_of<InvalidArgument>([] {
                               parse_policy_config(json{{"start_battery_percent", 120}}, "p.json");
                             }),
                             {"start_battery_percent", "120", "0..100"}));
}

}  // namespace
}  // namespace pocketlora
