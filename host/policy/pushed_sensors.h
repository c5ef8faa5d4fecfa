#pragma once
// Readings pushed in by the host program (the C API on Android, where an app reads BatteryManager and
// PowerManager and passes the values down). push() and read() may be called from any thread. Until the first
// push every reading is unknown, so the policy does not train.
#include <mutex>

#include "host/policy/sensor_source.h"

namespace pocketlora {

class PushedSensors final : public SensorSource {
 public:
  // Replaces every reading (a reading left unknown in `r` becomes unknown); values are passed through the same
  // plausibility filters as the other sources.
  void push(const SensorReadings& r);
  SensorReadings read() override;
  std::string describe() const override { return "pushed readings"; }

 private:
  std::mutex mu_;
  SensorReadings now_;
};

}  // namespace pocketlora
