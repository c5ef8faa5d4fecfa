#pragma once
// lavapipe's gallivm gives each shader invocation one counter of loop-condition checks, shared by all its loops
// (a loop running n times checks n + 1 times; constant-bounded inner loops are unrolled and do not count), and
// silently leaves every loop once it reaches 65535. The profile's `loop_limit` (65000 on lavapipe, 0 = none)
// is that budget; attention keeps its own key (`attention.loop_limit`). Every op whose per-invocation loops
// grow with a tensor dimension either splits the work so each invocation fits (loop_span + spans) or refuses
// with DeviceLimitError (check_loop_checks).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/device.h"

namespace pocketlora::ops {

inline constexpr const char* kLoopLimitKey = "loop_limit";

// The device's budget of loop-condition checks per invocation; 0 = unlimited.
std::uint64_t loop_limit(const vk::Device& dev, const char* key = kLoopLimitKey);

// Loop-condition checks of one loop running n times.
constexpr std::uint64_t loop_checks(std::uint64_t n) { return n + 1; }

// Throws DeviceLimitError naming the op, what loops, the count and the profile key when `checks` is over budget.
void check_loop_checks(const vk::Device& dev, const std::string& op, const std::string& what, std::uint64_t checks,
                       const char* key = kLoopLimitKey);

// Largest n such that an invocation making n * per_iteration + fixed loop checks stays within budget
// (UINT64_MAX when unlimited); e.g. two loops over the same n columns: per_iteration 2, fixed 2. Throws
// DeviceLimitError when not even n = 1 fits.
std::uint64_t loop_span(const vk::Device& dev, const std::string& op, const std::string& what,
                        std::uint64_t per_iteration, std::uint64_t fixed, const char* key = kLoopLimitKey);

// [begin, end) ranges of at most `span` covering [0, total), in order; one empty range when total is 0.
std::vector<std::pair<std::uint64_t, std::uint64_t>> spans(std::uint64_t total, std::uint64_t span);

}  // namespace pocketlora::ops
