#pragma once
// Drives a DevicePolicy over a ScriptedTimeline the way the trainer does (host/train/trainer.cpp): ask before
// each step; Train: one step; Throttle: wait idle_s, then one step; Wait: stop if the timeline ended, else wait
// poll_seconds. Returns every transition as "from>to@time", so a test states the exact expected sequence.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "host/policy/device_policy.h"
#include "host/policy/scripted_timeline.h"

namespace pocketlora::test {

struct PolicyRun {
  std::vector<std::string> transitions;  // "idle>training@0"
  std::vector<std::string> reasons;
  int steps = 0;
};

inline PolicyRun drive_policy(DevicePolicy& policy, ScriptedTimeline& timeline, int steps_wanted) {
  PolicyRun run;
  double last_step_s = 0;
  for (int guard = 0; run.steps < steps_wanted && guard < 10000; ++guard) {
    const PolicyDecision d = policy.decide(timeline.read(), timeline.now_s(), last_step_s);
    if (d.transition) {
      run.transitions.push_back(fmt::format("{}>{}@{:g}", d.transition->from, d.transition->to, d.transition->time_s));
      run.reasons.push_back(d.transition->reason);
    }
    if (d.action == PolicyAction::Wait) {
      if (timeline.ended()) break;
      timeline.wait_s(policy.config().poll_seconds);
      continue;
    }
    if (d.action == PolicyAction::Throttle) timeline.wait_s(d.idle_s);
    last_step_s = timeline.step_done(0);
    ++run.steps;
  }
  return run;
}

}  // namespace pocketlora::test
