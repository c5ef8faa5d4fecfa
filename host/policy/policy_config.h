#pragma once
// The thresholds of the device policy (host/policy/device_policy.h), read from a JSON policy file whose fields
// are these members' names; a field left out keeps its default (docs/POLICY.md has the schema).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pocketlora {

struct PolicyConfig {
  bool require_charging = true;
  double start_battery_percent = 50;  // start (from Idle) only at or above this charge
  double stop_battery_percent = 45;   // stop (to Idle) below this: hysteresis against the start level
  double start_below_c = 40;          // start only below this temperature
  double cooldown_above_c = 42;       // Training -> Cooldown above this
  double resume_below_c = 38;         // Cooldown -> Training below this
  double pause_above_c = 45;          // in Cooldown at or above this: pause (checkpoint, free memory), not throttle
  double throttle_target_c = 40;      // the duty-cycle controller's target temperature
  double min_duty = 0.1;              // the least share of time the throttled trainer spends training
  double poll_seconds = 30;           // how long a waiting trainer sleeps between readings
  bool train_with_screen_on = true;   // false: the screen must be known to be off
  // Thermal zones that count, as case-insensitive substrings of the zone name; the temperature the policy acts on
  // is the hottest of the battery and these zones.
  std::vector<std::string> thermal_zones = {"battery", "skin", "gpu"};

  // Throws InvalidArgument naming the field and the rule when the thresholds contradict each other.
  void validate(const std::string& origin = "policy") const;
};

// Fields not named keep their defaults; an unknown field, a wrong type or a failed validate() is a FormatError /
// InvalidArgument naming `origin` and the field.
PolicyConfig parse_policy_config(const nlohmann::json& j, const std::string& origin);
PolicyConfig load_policy_config(const std::filesystem::path& path);
nlohmann::json policy_config_json(const PolicyConfig& c);

}  // namespace pocketlora
