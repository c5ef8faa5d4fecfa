#include "host/policy/sensor_readings.h"

#include <cmath>

namespace pocketlora {

const char* user_override_name(UserOverride o) {
  switch (o) {
    case UserOverride::None: return "none";
    case UserOverride::Pause: return "pause";
    case UserOverride::Train: return "train";
  }
  return "?";
}

std::optional<double> plausible_temperature_c(std::optional<double> celsius) {
  if (!celsius || !std::isfinite(*celsius) || *celsius < -40.0 || *celsius > 150.0) return std::nullopt;
  return celsius;
}

std::optional<double> plausible_percent(std::optional<double> percent) {
  if (!percent || !std::isfinite(*percent) || *percent < 0.0 || *percent > 100.0) return std::nullopt;
  return percent;
}

nlohmann::json readings_json(const SensorReadings& r) {
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json zones = nlohmann::json::object();
  for (const ThermalZone& z : r.zones) zones[z.name] = opt(z.temperature_c);
  return {{"battery_percent", opt(r.battery_percent)},
          {"charging", opt(r.charging)},
          {"battery_temp_c", opt(r.battery_temp_c)},
          {"zones", zones},
          {"screen_on", opt(r.screen_on)},
          {"user_override", r.user_override ? nlohmann::json(user_override_name(*r.user_override)) : nlohmann::json()}};
}

}  // namespace pocketlora
