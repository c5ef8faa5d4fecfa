#pragma once
// What the device policy knows about the phone at one moment. Every reading may be unknown (std::nullopt): a
// sensor the device lacks, a file that vanished, a value that is not a number or is physically absurd. The policy
// treats an unknown reading it needs as "do not train" (docs/POLICY.md).
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pocketlora {

// The user's say, above the automatic rules: Pause stops training now; Train lifts the charging and battery
// conditions (temperature limits still hold: the battery is never cooked, whatever the user says).
enum class UserOverride { None, Pause, Train };
const char* user_override_name(UserOverride o);  // "none", "pause", "train"

struct ThermalZone {
  std::string name;                     // the zone's type as the kernel names it ("battery", "gpu-thermal", "skin")
  std::optional<double> temperature_c;  // unknown when unreadable or absurd
};

struct SensorReadings {
  std::optional<double> battery_percent;  // 0..100
  std::optional<bool> charging;           // on external power
  std::optional<double> battery_temp_c;
  std::vector<ThermalZone> zones;
  std::optional<bool> screen_on;
  std::optional<UserOverride> user_override;
};

// The plausibility filters every source applies: a temperature outside [-40, 150] °C (a disconnected thermistor
// reads -273 or 500) or a percentage outside [0, 100] is unknown, as is a NaN.
std::optional<double> plausible_temperature_c(std::optional<double> celsius);
std::optional<double> plausible_percent(std::optional<double> percent);

// The readings as one JSON object for the metrics log; unknown readings are null.
nlohmann::json readings_json(const SensorReadings& r);

}  // namespace pocketlora
