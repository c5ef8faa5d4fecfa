#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/optimizer.h.
#include "host/core/op/optimizer.h"

namespace pocketlora::ref {

GradStats grad_norm(const std::vector<const Tensor*>& grads, float max_norm);
// One update of `param` (step counts from 1). Does nothing when stats.skip.
void optimizer_step(const OptimizerConfig& cfg, std::int64_t step, Tensor& param, const Tensor& grad,
                    OptimizerState& state, const GradStats& stats);

}  // namespace pocketlora::ref
