#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/optimizer.h.
#include "host/core/op/optimizer.h"

namespace pocketlora::ref {

GradStats grad_norm(const std::vector<const Tensor*>& grads, float max_norm);
// One update of `param` with this step's constants (step_constants(cfg, lr, step)). Does nothing when stats.skip.
void optimizer_step(const OptimizerConfig& cfg, const StepConstants& k, Tensor& param, const Tensor& grad,
                    OptimizerState& state, const GradStats& stats);

}  // namespace pocketlora::ref
