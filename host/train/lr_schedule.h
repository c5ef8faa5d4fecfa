#pragma once
// Learning-rate schedules with linear warmup, with the semantics of Hugging Face transformers'
// get_{constant,linear,cosine}_schedule_with_warmup (LambdaLR, one scheduler step per optimizer step, the
// step counted from 0, so step 0 of a warmup runs at lr 0 exactly as a transformers run does):
//   warmup   step < warmup:  lr · step / max(1, warmup)
//   constant afterwards:     lr
//   linear   afterwards:     lr · max(0, (total − step) / max(1, total − warmup))
//   cosine   afterwards:     lr · max(0, ½ (1 + cos(π · progress))),  progress = (step − warmup) / max(1, total − warmup)
//            (transformers' num_cycles = 0.5: one half cosine from lr down to 0 at `total`)
#include <cstdint>
#include <string_view>

namespace pocketlora {

enum class LrScheduleKind { Constant, Linear, Cosine };

// "constant", "linear", "cosine"; anything else is an InvalidArgument listing the accepted names.
LrScheduleKind parse_lr_schedule(std::string_view name);
const char* lr_schedule_name(LrScheduleKind kind);

class LrSchedule {
 public:
  // base_lr > 0 and finite, warmup_steps >= 0, total_steps >= 1 (the run's optimizer steps); else InvalidArgument.
  LrSchedule(LrScheduleKind kind, double base_lr, std::int64_t warmup_steps, std::int64_t total_steps);

  // The learning rate of optimizer step `step` (0-based); negative steps are an InvalidArgument.
  double lr(std::int64_t step) const { return base_lr_ * factor(step); }
  // The multiplier of base_lr (transformers' lr_lambda).
  double factor(std::int64_t step) const;

  LrScheduleKind kind() const { return kind_; }
  double base_lr() const { return base_lr_; }
  std::int64_t warmup_steps() const { return warmup_; }
  std::int64_t total_steps() const { return total_; }

 private:
  LrScheduleKind kind_;
  double base_lr_;
  std::int64_t warmup_, total_;
};

}  // namespace pocketlora
