#pragma once
// Readings from Linux sysfs, read afresh on every call (a sensor may appear or disappear at any time):
//   ROOT/class/power_supply/*/type      "Battery": capacity (%), status (Charging/Full/Discharging/Not charging),
//                                       temp (tenths of °C); "Mains"/"USB"/"Wireless": online (0/1)
//   ROOT/class/thermal/thermal_zone*/   type (the zone's name), temp (millidegrees C)
//   ROOT/class/backlight/*/bl_power     0: screen on, else off (brightness 0/non-0 when bl_power is absent)
// ROOT is the directory that stands for /sys, so tests read a fake tree. Charging means on external power: any
// Mains/USB/Wireless supply online, or when none reports, a battery status of Charging or Full. A missing file,
// a non-numeric or absurd value is an unknown reading; nothing here throws for what the files hold. The user
// override has no sysfs source and is always unknown (none).
#include <filesystem>

#include "host/policy/sensor_source.h"

namespace pocketlora {

class SysfsSensors final : public SensorSource {
 public:
  explicit SysfsSensors(std::filesystem::path root = "/sys");
  SensorReadings read() override;
  std::string describe() const override;

 private:
  std::filesystem::path root_;
};

}  // namespace pocketlora
