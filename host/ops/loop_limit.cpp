#include "host/ops/loop_limit.h"

#include <algorithm>
#include <limits>

#include "host/core/error.h"

namespace pocketlora::ops {

std::uint64_t loop_limit(const vk::Device& dev, const char* key) {
  const std::int64_t v = dev.profile().param(key);
  return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}

void check_loop_checks(const vk::Device& dev, const std::string& op, const std::string& what, std::uint64_t checks,
                       const char* key) {
  const std::uint64_t limit = loop_limit(dev, key);
  if (limit == 0 || checks <= limit) return;
  throw DeviceLimitError(op + ": " + what + " takes " + std::to_string(checks) +
                         " loop checks per invocation, above this device's limit of " + std::to_string(limit) +
                         " (profile '" + dev.profile().name() + "' " + key + ")");
}

std::uint64_t loop_span(const vk::Device& dev, const std::string& op, const std::string& what,
                        std::uint64_t per_iteration, std::uint64_t fixed, const char* key) {
  const std::uint64_t limit = loop_limit(dev, key);
  if (limit == 0) return std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t per = std::max<std::uint64_t>(per_iteration, 1);
  const std::uint64_t n = limit > fixed ? (limit - fixed) / per : 0;
  // n == 0: even one iteration is over budget, which check_loop_checks reports.
  if (n == 0) check_loop_checks(dev, op, what + " (one iteration)", fixed + per, key);
  return n;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> spans(std::uint64_t total, std::uint64_t span) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  const std::uint64_t step = std::max<std::uint64_t>(span, 1);
  for (std::uint64_t b = 0; b < total;) {
    const std::uint64_t e = total - b > step ? b + step : total;
    out.emplace_back(b, e);
    b = e;
  }
  if (out.empty()) out.emplace_back(0, 0);
  return out;
}

}  // namespace pocketlora::ops
