#pragma once
// Where the policy's readings and its sense of time come from. Three sources implement SensorSource:
// SysfsSensors (Linux /sys), PushedSensors (readings pushed in by the host program: the C API on Android) and
// ScriptedTimeline (a JSON timeline for tests and demos, which is also its own PolicyClock so scripted runs never
// sleep for real). Small on purpose: the job queue and the C API build on these two interfaces.
#include <memory>
#include <string>

#include "host/policy/sensor_readings.h"

namespace pocketlora {

class SensorSource {
 public:
  virtual ~SensorSource() = default;
  // The readings now. Never throws for bad sensor data: what cannot be read is unknown.
  virtual SensorReadings read() = 0;
  // True once no reading will ever change again (a scripted timeline past its last event): a policy that waits
  // for a change would wait forever, so the trainer stops instead.
  virtual bool ended() const { return false; }
  virtual std::string describe() const = 0;  // "sysfs /sys", "scripted timeline.json", for messages
};

// The policy's time, in seconds from an arbitrary origin.
class PolicyClock {
 public:
  virtual ~PolicyClock() = default;
  virtual double now_s() const = 0;
  // Idle time (a throttle gap, a pause's poll interval). The real clock sleeps, returning early on a stop request
  // (Ctrl-C); a scripted clock advances its time.
  virtual void wait_s(double seconds) = 0;
  // A training step ran for `measured_s` real seconds; returns how long it took in this clock's time (the real
  // clock: measured_s, already elapsed; a scripted clock advances by its fixed step duration and returns it).
  virtual double step_done(double measured_s) = 0;
};

// The steady (monotonic) clock of the process; sleeps in slices of at most 0.25 s so Ctrl-C is prompt.
std::shared_ptr<PolicyClock> make_steady_clock();

}  // namespace pocketlora
