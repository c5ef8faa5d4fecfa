#include "host/core/op/optimizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "host/core/error.h"
#include "shaders/common/optim_push.h"

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

OptimizerKind parse_optimizer_kind(const std::string& s) {
  for (OptimizerKind k : {OptimizerKind::AdamW, OptimizerKind::Lion, OptimizerKind::SGD, OptimizerKind::Adafactor})
    if (s == optimizer_name(k)) return k;
  throw InvalidArgument("optimizer '" + s + "': expected adamw, lion, sgd or adafactor");
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

StepConstants step_constants(const OptimizerConfig& cfg, float lr, std::int64_t step) {
  if (step < 1) throw InvalidArgument("optimizer step counts from 1, got " + std::to_string(step));
  const double t = static_cast<double>(step);
  StepConstants c;
  c.lr = lr;
  c.bias_correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(cfg.beta1), t));
  c.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(cfg.beta2), t)));
  c.beta2_t = static_cast<float>(1.0 - std::pow(t, static_cast<double>(cfg.decay_rate)));
  c.first_step = step == 1 ? 1.0f : 0.0f;
  return c;
}

const std::int64_t kStepConstantWords = STEP_CONST_WORDS;
const std::int64_t kGradStatsWords = GRAD_STATS_WORDS;

Tensor step_constants_tensor(const StepConstants& k) {
  Tensor t = Tensor::zeros({kStepConstantWords});
  float* w = t.data<float>();
  w[STEP_CONST_LR] = k.lr;
  w[STEP_CONST_BIAS_CORRECTION1] = k.bias_correction1;
  w[STEP_CONST_BIAS_CORRECTION2_SQRT] = k.bias_correction2_sqrt;
  w[STEP_CONST_BETA2_T] = k.beta2_t;
  w[STEP_CONST_FIRST_STEP] = k.first_step;
  return t;
}

StepConstants step_constants_from_tensor(const Tensor& t) {
  if (t.dtype() != DType::F32 || t.shape() != Shape{kStepConstantWords})
    throw ShapeError("step constants: tensor " + shape_str(t.shape()) + " " + dtype_name(t.dtype()) +
                     ", expected f32 [" + std::to_string(kStepConstantWords) + "]");
  const Tensor c = t.is_contiguous() ? t : t.clone();
  const float* w = c.data<float>();
  return {w[STEP_CONST_LR], w[STEP_CONST_BIAS_CORRECTION1], w[STEP_CONST_BIAS_CORRECTION2_SQRT],
          w[STEP_CONST_BETA2_T], w[STEP_CONST_FIRST_STEP]};
}

Tensor grad_stats_tensor(const GradStats& s) {
  Tensor t = Tensor::zeros({kGradStatsWords}, DType::I32);
  std::uint32_t w[GRAD_STATS_WORDS] = {};
  w[GRAD_STATS_NORM] = std::bit_cast<std::uint32_t>(s.norm);
  w[GRAD_STATS_CLIP_SCALE] = std::bit_cast<std::uint32_t>(s.clip_scale);
  w[GRAD_STATS_SKIP] = s.skip ? 1u : 0u;
  w[GRAD_STATS_FIRST_BAD] = s.first_bad < 0 ? 0xffffffffu : static_cast<std::uint32_t>(s.first_bad);
  std::memcpy(t.raw(), w, sizeof w);
  return t;
}

GradStats grad_stats_from_tensor(const Tensor& t) {
  if (t.dtype() != DType::I32 || t.shape() != Shape{kGradStatsWords})
    throw ShapeError("gradient statistics: tensor " + shape_str(t.shape()) + " " + dtype_name(t.dtype()) +
                     ", expected i32 [" + std::to_string(kGradStatsWords) + "]");
  std::uint32_t w[GRAD_STATS_WORDS];
  const Tensor c = t.is_contiguous() ? t : t.clone();
  std::memcpy(w, c.raw(), sizeof w);
  GradStats s;
  s.norm = std::bit_cast<float>(w[GRAD_STATS_NORM]);
  s.clip_scale = std::bit_cast<float>(w[GRAD_STATS_CLIP_SCALE]);
  s.skip = w[GRAD_STATS_SKIP] != 0;
  s.first_bad = w[GRAD_STATS_FIRST_BAD] == 0xffffffffu ? -1 : static_cast<std::int64_t>(w[GRAD_STATS_FIRST_BAD]);
  return s;
}

}  // namespace pocketlora
