#include "host/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "host/core/error.h"

namespace pocketlora {

LrScheduleKind parse_lr_schedule(std::string_view name) {
  if (name == "constant") return LrScheduleKind::Constant;
  if (name == "linear") return LrScheduleKind::Linear;
  if (name == "cosine") return LrScheduleKind::Cosine;
  throw InvalidArgument("unknown learning-rate schedule '" + std::string(name) +
                        "' (expected constant, linear or cosine)");
}

const char* lr_schedule_name(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::Constant: return "constant";
    case LrScheduleKind::Linear: return "linear";
    case LrScheduleKind::Cosine: return "cosine";
  }
  return "unknown";
}

LrSchedule::LrSchedule(LrScheduleKind kind, double base_lr, std::int64_t warmup_steps, std::int64_t total_steps)
    : kind_(kind), base_lr_(base_lr), warmup_(warmup_steps), total_(total_steps) {
  if (!(base_lr > 0) || !std::isfinite(base_lr))
    throw InvalidArgument("learning rate: expected a positive finite value, found " + std::to_string(base_lr));
  if (warmup_steps < 0)
    throw InvalidArgument("warmup steps: expected >= 0, found " + std::to_string(warmup_steps));
  if (total_steps < 1)
    throw InvalidArgument("schedule total steps: expected >= 1, found " + std::to_string(total_steps));
}

double LrSchedule::factor(std::int64_t step) const {
  if (step < 0) throw InvalidArgument("learning-rate schedule: step " + std::to_string(step) + " is negative");
  const auto d = [](std::int64_t v) { return static_cast<double>(v); };
  if (step < warmup_) return d(step) / d(std::max<std::int64_t>(1, warmup_));
  const double span = d(std::max<std::int64_t>(1, total_ - warmup_));
  switch (kind_) {
    case LrScheduleKind::Constant: return 1.0;
    case LrScheduleKind::Linear: return std::max(0.0, d(total_ - step) / span);
    case LrScheduleKind::Cosine: {
      const double progress = d(step - warmup_) / span;
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
    }
  }
  return 1.0;
}

}  // namespace pocketlora
