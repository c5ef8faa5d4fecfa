#include "host/policy/device_policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace pocketlora {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string policy_state_name(PolicyState s, CooldownMode m) {
  switch (s) {
    case PolicyState::Idle: return "idle";
    case PolicyState::Training: return "training";
    case PolicyState::Cooldown: return m == CooldownMode::Pause ? "cooldown-pause" : "cooldown-throttle";
    case PolicyState::Done: return "done";
    case PolicyState::Failed: return "failed";
  }
  return "?";
}

DevicePolicy::DevicePolicy(PolicyConfig config) : cfg_(std::move(config)) { cfg_.validate(); }

std::optional<double> DevicePolicy::temperature_c(const SensorReadings& r) const {
  if (!r.battery_temp_c) return std::nullopt;
  double hottest = *r.battery_temp_c;
  for (const ThermalZone& z : r.zones) {
    if (!z.temperature_c) continue;
    const std::string name = lower(z.name);
    if (std::any_of(cfg_.thermal_zones.begin(), cfg_.thermal_zones.end(),
                    [&](const std::string& w) { return name.find(lower(w)) != std::string::npos; }))
      hottest = std::max(hottest, *z.temperature_c);
  }
  return hottest;
}

double DevicePolicy::duty(double temp_c) const {
  const double span = cfg_.pause_above_c - cfg_.throttle_target_c;
  return std::clamp(1.0 - (temp_c - cfg_.throttle_target_c) / span, cfg_.min_duty, 1.0);
}

// Why training may not start (starting) or go on (!starting), ignoring temperature limits; nullopt: it may.
std::optional<std::string> DevicePolicy::blocker(const SensorReadings& r, bool starting) const {
  const UserOverride user = r.user_override.value_or(UserOverride::None);
  if (user == UserOverride::Pause) return "user override: pause";
  if (!temperature_c(r)) return "battery temperature unknown";
  if (!cfg_.train_with_screen_on && r.screen_on != false) return r.screen_on ? "screen on" : "screen state unknown";
  if (user == UserOverride::Train) return std::nullopt;  // the user lifts the charging and battery conditions
  if (cfg_.require_charging) {
    if (!r.charging) return "charging state unknown";
    if (!*r.charging) return "not charging";
  }
  if (!r.battery_percent) return "battery level unknown";
  const double need = starting ? cfg_.start_battery_percent : cfg_.stop_battery_percent;
  if (*r.battery_percent < need) return fmt::format("battery {:.0f}% below {:.0f}%", *r.battery_percent, need);
  return std::nullopt;
}

PolicyTransition DevicePolicy::move(PolicyState to, CooldownMode mode, std::string reason, double now_s,
                                    const SensorReadings& r) {
  PolicyTransition t{state_name(), policy_state_name(to, mode), reason, now_s, r};
  state_ = to;
  mode_ = mode;
  reason_ = std::move(reason);
  return t;
}

PolicyDecision DevicePolicy::decide(const SensorReadings& r, double now_s, double last_step_s) {
  if (state_ == PolicyState::Done || state_ == PolicyState::Failed)
    throw std::logic_error("DevicePolicy::decide after the run ended (" + state_name() + ")");
  PolicyDecision d;
  const std::optional<double> temp = temperature_c(r);
  if (state_ == PolicyState::Idle) {
    if (auto why = blocker(r, true)) {
      reason_ = *why;
    } else if (*temp >= cfg_.start_below_c) {
      reason_ = fmt::format("{:.1f} °C not below the start limit {:.0f} °C", *temp, cfg_.start_below_c);
    } else {
      const bool user = r.user_override == UserOverride::Train;
      d.transition =
          move(PolicyState::Training, CooldownMode::Throttle,
               user ? fmt::format("user override: train; {:.1f} °C", *temp)
                    : fmt::format("charging, battery {:.0f}%, {:.1f} °C", r.battery_percent.value_or(0), *temp),
               now_s, r);
    }
  } else if (auto why = blocker(r, false)) {
    d.transition = move(PolicyState::Idle, CooldownMode::Throttle, *why, now_s, r);
  } else if (state_ == PolicyState::Training) {
    if (*temp > cfg_.cooldown_above_c) {
      const bool pause = *temp >= cfg_.pause_above_c;
      d.transition =
          move(PolicyState::Cooldown, pause ? CooldownMode::Pause : CooldownMode::Throttle,
               pause ? fmt::format("{:.1f} °C at or above the pause limit {:.0f} °C", *temp, cfg_.pause_above_c)
                     : fmt::format("{:.1f} °C above {:.0f} °C", *temp, cfg_.cooldown_above_c),
               now_s, r);
    }
  } else {  // Cooldown
    if (*temp < cfg_.resume_below_c) {
      d.transition =
          move(PolicyState::Training, CooldownMode::Throttle,
               fmt::format("{:.1f} °C below the resume limit {:.0f} °C", *temp, cfg_.resume_below_c), now_s, r);
    } else if (mode_ == CooldownMode::Throttle && *temp >= cfg_.pause_above_c) {
      d.transition = move(
          PolicyState::Cooldown, CooldownMode::Pause,
          fmt::format("{:.1f} °C at or above the pause limit {:.0f} °C while throttled", *temp, cfg_.pause_above_c),
          now_s, r);
    }
  }
  if (state_ == PolicyState::Training) {
    d.action = PolicyAction::Train;
  } else if (state_ == PolicyState::Cooldown && mode_ == CooldownMode::Throttle) {
    // Training a share `duty` of the time: after a step of length s, idle s * (1 - duty) / duty.
    const double u = duty(*temp);
    d.action = PolicyAction::Throttle;
    d.idle_s = std::max(0.0, last_step_s) * (1.0 - u) / u;
  } else {
    d.action = PolicyAction::Wait;
  }
  return d;
}

PolicyTransition DevicePolicy::finish(const std::string& reason, double now_s, const SensorReadings& r) {
  return move(PolicyState::Done, CooldownMode::Throttle, reason, now_s, r);
}

PolicyTransition DevicePolicy::fail(const std::string& reason, double now_s, const SensorReadings& r) {
  return move(PolicyState::Failed, CooldownMode::Throttle, reason, now_s, r);
}

}  // namespace pocketlora
