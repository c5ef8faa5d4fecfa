#pragma once
// A sensor timeline from a JSON file, for tests and demos; it is also the run's clock, advanced by the caller, so
// a scripted run is instant and deterministic:
//   {"step_seconds": 60,            training step duration in timeline time (default 60)
//    "end_s": 900,                  optional: when the timeline ends (default: its last event's time)
//    "events": [{"t": 0, "charging": true, "battery_percent": 80, "battery_temp_c": 31,
//                "zones": {"skin": 30}, "screen_on": false, "user_override": "none"},
//               {"t": 200, "battery_temp_c": 46}, ...]}
// An event sets the readings it names at time t (seconds, non-decreasing); the others keep their value; null makes
// a reading unknown; before the first event everything is unknown. Time starts at 0 and moves only through
// PolicyClock: wait_s(x) adds x, step_done() adds step_seconds. ended() once the time has reached end_s.
// A malformed file (wrong type, unknown field, time going backwards) is a FormatError naming the file and the
// field; an absurd value (a temperature of -300 or 500 °C) is accepted and read as unknown, as from a real sensor.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "host/policy/sensor_source.h"

namespace pocketlora {

class ScriptedTimeline final : public SensorSource, public PolicyClock {
 public:
  // `origin` names the source in errors (the file path).
  ScriptedTimeline(const nlohmann::json& timeline, std::string origin);
  static std::shared_ptr<ScriptedTimeline> load(const std::filesystem::path& path);

  SensorReadings read() override;
  bool ended() const override { return now_ >= end_s_; }
  std::string describe() const override { return "scripted " + origin_; }

  double now_s() const override { return now_; }
  void wait_s(double seconds) override;
  double step_done(double measured_s) override;
  double step_seconds() const { return step_seconds_; }

 private:
  struct Event {
    double t = 0;
    SensorReadings set;             // the readings this event sets...
    std::vector<std::string> keys;  // ...named by these keys ("zones.gpu" for a zone)
  };
  std::string origin_;
  double step_seconds_ = 60, end_s_ = 0, now_ = 0;
  std::vector<Event> events_;
};

}  // namespace pocketlora
