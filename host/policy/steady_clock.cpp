// The real PolicyClock (host/policy/sensor_source.h): std::chrono and std::this_thread only, nothing
// glibc-specific (the policy runs on Android).
#include <algorithm>
#include <chrono>
#include <thread>

#include "host/policy/sensor_source.h"
#include "host/util/stop_request.h"

namespace pocketlora {
namespace {

class SteadyClock final : public PolicyClock {
 public:
  double now_s() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  }
  void wait_s(double seconds) override {
    const double until = now_s() + seconds;
    for (double left = seconds; left > 0 && !stop_requested(); left = until - now_s())
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min(left, 0.25)));
  }
  double step_done(double measured_s) override { return measured_s; }

 private:
  std::chrono::steady_clock::time_point origin_ = std::chrono::steady_clock::now();
};

}  // namespace

std::shared_ptr<PolicyClock> make_steady_clock() { return std::make_shared<SteadyClock>(); }

}  // namespace pocketlora
