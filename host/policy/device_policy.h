#pragma once
// The device policy: when a training run may use the phone. Pure logic over readings and times (no clock, no
// sensors, no Vulkan), asked by the trainer before every training step:
//
//   Idle --(charging, battery >= start %, temp < start_below)--> Training
//   Training --(temp > cooldown_above)--> Cooldown (throttle, or pause when temp >= pause_above)
//   Cooldown --(temp < resume_below)--> Training;   Cooldown throttle --(temp >= pause_above)--> Cooldown pause
//   Training / Cooldown --(unplugged, battery < stop %, a needed reading unknown, user pause)--> Idle
//   any --finish()--> Done;   any --fail()--> Failed
//
// The temperature acted on is the hottest of the battery and the configured thermal zones; an unknown battery
// temperature makes it unknown. Unknown readings never allow training. Each transition carries a reason string
// with the values that caused it. In Cooldown throttle, a duty-cycle controller (proportional: full duty at
// throttle_target_c, min_duty at pause_above_c) spaces the steps with idle time to hold the target.
#include <optional>
#include <string>

#include "host/policy/policy_config.h"
#include "host/policy/sensor_readings.h"

namespace pocketlora {

enum class PolicyState { Idle, Training, Cooldown, Done, Failed };
enum class CooldownMode { Throttle, Pause };

// What the trainer does next: Train now; Throttle: wait idle_s, then train one step; Wait: do not train (release
// the step's memory after a checkpoint), wait, and ask again.
enum class PolicyAction { Train, Throttle, Wait };

struct PolicyTransition {
  std::string from, to;  // state names (policy_state_name)
  std::string reason;
  double time_s = 0;
  SensorReadings readings;
};

struct PolicyDecision {
  PolicyAction action = PolicyAction::Wait;
  double idle_s = 0;                           // Throttle only
  std::optional<PolicyTransition> transition;  // set when this call changed the state
};

// "idle", "training", "cooldown-throttle", "cooldown-pause", "done", "failed".
std::string policy_state_name(PolicyState s, CooldownMode m = CooldownMode::Throttle);

class DevicePolicy {
 public:
  explicit DevicePolicy(PolicyConfig config);  // validates the config; starts Idle

  // `last_step_s`: how long the last training step took (in the caller's clock), the throttle's unit of idle time.
  // Throws std::logic_error once Done or Failed.
  PolicyDecision decide(const SensorReadings& r, double now_s, double last_step_s);
  PolicyTransition finish(const std::string& reason, double now_s, const SensorReadings& r);
  PolicyTransition fail(const std::string& reason, double now_s, const SensorReadings& r);

  PolicyState state() const { return state_; }
  CooldownMode cooldown_mode() const { return mode_; }
  std::string state_name() const { return policy_state_name(state_, mode_); }
  const std::string& reason() const { return reason_; }  // why the policy is in (or stays in) its state
  const PolicyConfig& config() const { return cfg_; }
  // The hottest of the battery and the configured zones; unknown when the battery temperature is.
  std::optional<double> temperature_c(const SensorReadings& r) const;
  // The throttle's share of time spent training at `temp_c`.
  double duty(double temp_c) const;

 private:
  std::optional<std::string> blocker(const SensorReadings& r, bool starting) const;
  PolicyTransition move(PolicyState to, CooldownMode mode, std::string reason, double now_s, const SensorReadings& r);
  PolicyConfig cfg_;
  PolicyState state_ = PolicyState::Idle;
  CooldownMode mode_ = CooldownMode::Throttle;
  std::string reason_ = "not started";
};

}  // namespace pocketlora
