#include "host/core/op/optimizer.h"

#include <algorithm>
#include <cmath>

#include "host/core/error.h"

namespace pocketlora {

const char* optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::AdamW: return "adamw";
    case OptimizerKind::Lion: return "lion";
    case OptimizerKind::SGD: return "sgd";
    case OptimizerKind::Adafactor: return "adafactor";
  }
  return "?";
}

OptimizerState make_optimizer_state(const OptimizerConfig& cfg, const Shape& shape) {
  OptimizerState s;
  if (cfg.kind == OptimizerKind::Adafactor) {
    if (shape.size() != 2)
      throw ShapeError("adafactor factors matrices only; parameter shape " + shape_str(shape) + " is not 2-D");
    s.row = Tensor::zeros({shape[0]});
    s.col = Tensor::zeros({shape[1]});
  } else {
    s.m = Tensor::zeros(shape);
    if (cfg.kind == OptimizerKind::AdamW || cfg.kind == OptimizerKind::Adafactor) s.v = Tensor::zeros(shape);
  }
  return s;
}

StepConstants step_constants(const OptimizerConfig& cfg, std::int64_t step) {
  if (step < 1) throw InvalidArgument("optimizer step counts from 1, got " + std::to_string(step));
  const double t = static_cast<double>(step);
  StepConstants c;
  c.bias_correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(cfg.beta1), t));
  c.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(cfg.beta2), t)));
  c.beta2_t = static_cast<float>(1.0 - std::pow(t, static_cast<double>(cfg.decay_rate)));
  return c;
}

}  // namespace pocketlora
