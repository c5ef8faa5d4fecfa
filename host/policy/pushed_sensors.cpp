#include "host/policy/pushed_sensors.h"

namespace pocketlora {

void PushedSensors::push(const SensorReadings& r) {
  SensorReadings clean = r;
  clean.battery_percent = plausible_percent(r.battery_percent);
  clean.battery_temp_c = plausible_temperature_c(r.battery_temp_c);
  for (ThermalZone& z : clean.zones) z.temperature_c = plausible_temperature_c(z.temperature_c);
  const std::lock_guard<std::mutex> lock(mu_);
  now_ = std::move(clean);
}

SensorReadings PushedSensors::read() {
  const std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

}  // namespace pocketlora
