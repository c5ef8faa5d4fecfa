#include "host/policy/policy_config.h"

#include <fmt/format.h>

#include <cmath>

#include "host/core/error.h"
#include "host/util/json_field.h"
#include "host/util/read_file.h"

namespace pocketlora {

void PolicyConfig::validate(const std::string& origin) const {
  auto require = [&](bool ok, const char* field, double v, const std::string& rule) {
    if (!ok) throw InvalidArgument(fmt::format("{}: field '{}' = {}: {}", origin, field, v, rule));
  };
  for (auto [name, v] : {std::pair{"start_battery_percent", start_battery_percent},
                         std::pair{"stop_battery_percent", stop_battery_percent}})
    require(std::isfinite(v) && v >= 0 && v <= 100, name, v, "expected a percentage 0..100");
  for (auto [name, v] : {std::pair{"start_below_c", start_below_c}, std::pair{"cooldown_above_c", cooldown_above_c},
                         std::pair{"resume_below_c", resume_below_c}, std::pair{"pause_above_c", pause_above_c},
                         std::pair{"throttle_target_c", throttle_target_c}})
    require(std::isfinite(v) && v >= -40 && v <= 150, name, v, "expected a temperature in -40..150 °C");
  require(stop_battery_percent <= start_battery_percent, "stop_battery_percent", stop_battery_percent,
          fmt::format("must not exceed start_battery_percent ({})", start_battery_percent));
  require(resume_below_c < cooldown_above_c, "resume_below_c", resume_below_c,
          fmt::format("must be below cooldown_above_c ({}): the gap is the hysteresis", cooldown_above_c));
  require(start_below_c <= cooldown_above_c, "start_below_c", start_below_c,
          fmt::format("must not exceed cooldown_above_c ({})", cooldown_above_c));
  require(pause_above_c >= cooldown_above_c, "pause_above_c", pause_above_c,
          fmt::format("must be at least cooldown_above_c ({})", cooldown_above_c));
  require(throttle_target_c < pause_above_c, "throttle_target_c", throttle_target_c,
          fmt::format("must be below pause_above_c ({})", pause_above_c));
  require(std::isfinite(min_duty) && min_duty > 0 && min_duty <= 1, "min_duty", min_duty, "expected 0 < min_duty <= 1");
  require(std::isfinite(poll_seconds) && poll_seconds > 0, "poll_seconds", poll_seconds, "expected seconds > 0");
}

PolicyConfig parse_policy_config(const nlohmann::json& j, const std::string& origin) {
  if (!j.is_object()) throw FormatError(origin + ": expected a JSON object of policy fields");
  PolicyConfig c;
  const nlohmann::json known = policy_config_json(c);
  for (const auto& [key, v] : j.items())
    if (!known.contains(key))
      throw FormatError(fmt::format("{}: unknown field '{}' (docs/POLICY.md lists the fields)", origin, key));
  auto num = [&](const char* key, double& dst) {
    if (auto v = json_field::opt_number(j, key, origin)) dst = *v;
  };
  auto flag = [&](const char* key, bool& dst) {
    if (auto v = json_field::opt_bool(j, key, origin)) dst = *v;
  };
  flag("require_charging", c.require_charging);
  num("start_battery_percent", c.start_battery_percent);
  num("stop_battery_percent", c.stop_battery_percent);
  num("start_below_c", c.start_below_c);
  num("cooldown_above_c", c.cooldown_above_c);
  num("resume_below_c", c.resume_below_c);
  num("pause_above_c", c.pause_above_c);
  num("throttle_target_c", c.throttle_target_c);
  num("min_duty", c.min_duty);
  num("poll_seconds", c.poll_seconds);
  flag("train_with_screen_on", c.train_with_screen_on);
  if (const auto it = j.find("thermal_zones"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw FormatError(origin + ": field 'thermal_zones': expected an array of strings");
    c.thermal_zones.clear();
    for (std::size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string())
        throw FormatError(
            fmt::format("{}: field 'thermal_zones[{}]': expected a string, found {}", origin, i, (*it)[i].type_name()));
      c.thermal_zones.push_back((*it)[i].get<std::string>());
    }
  }
  c.validate(origin);
  return c;
}

PolicyConfig load_policy_config(const std::filesystem::path& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_text(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(fmt::format("{}: not JSON: {}", path.string(), e.what()));
  }
  return parse_policy_config(j, path.string());
}

nlohmann::json policy_config_json(const PolicyConfig& c) {
  return {{"require_charging", c.require_charging},
          {"start_battery_percent", c.start_battery_percent},
          {"stop_battery_percent", c.stop_battery_percent},
          {"start_below_c", c.start_below_c},
          {"cooldown_above_c", c.cooldown_above_c},
          {"resume_below_c", c.resume_below_c},
          {"pause_above_c", c.pause_above_c},
          {"throttle_target_c", c.throttle_target_c},
          {"min_duty", c.min_duty},
          {"poll_seconds", c.poll_seconds},
          {"train_with_screen_on", c.train_with_screen_on},
          {"thermal_zones", c.thermal_zones}};
}

}  // namespace pocketlora
