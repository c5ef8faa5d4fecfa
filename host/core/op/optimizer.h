#pragma once
// Optimizers with fp32 state, and the global gradient norm / clipping / NaN-skip that precedes every step.
//   AdamW     — torch.optim.AdamW (decoupled weight decay, bias correction, eps outside the sqrt)
//   Lion      — Chen et al. 2023 (sign of the interpolated momentum; decoupled weight decay)
//   SGD       — torch.optim.SGD with momentum, dampening, nesterov, L2 weight decay
//   Adafactor — transformers.optimization.Adafactor with scale_parameter=False, relative_step=False,
//               warmup_init=False, beta1=None: factored second moment for matrices (row/column statistics),
//               beta2_t = 1 - t^decay_rate, update RMS clipping; matrices only (every LoRA parameter is one).
// A step whose gradients contain NaN/Inf is skipped as a whole (every tensor), and the first offending tensor
// is reported; gradients are multiplied by min(1, max_norm / (||g|| + 1e-6)) when max_norm > 0.
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/tensor.h"

namespace pocketlora {

enum class OptimizerKind { AdamW, Lion, SGD, Adafactor };
const char* optimizer_name(OptimizerKind k);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::AdamW;
  float lr = 1e-4f;
  float beta1 = 0.9f;   // AdamW/Lion beta1; SGD momentum
  float beta2 = 0.999f;  // AdamW/Lion beta2 (Lion default 0.99)
  float eps = 1e-8f;    // AdamW eps; Adafactor eps1 (1e-30)
  float weight_decay = 0.0f;
  float dampening = 0.0f;  // SGD
  bool nesterov = false;   // SGD
  float clip_threshold = 1.0f;  // Adafactor update RMS clip
  float decay_rate = -0.8f;     // Adafactor
  float max_grad_norm = 1.0f;   // global clipping; <= 0 disables
};

// Per-tensor optimizer state (fp32). Which members are used depends on the kind; all are zero-initialised.
struct OptimizerState {
  Tensor m, v;         // AdamW (m, v), Lion (m), SGD (m = momentum buffer)
  Tensor row, col;     // Adafactor factored statistics (matrices); vectors use v
};
OptimizerState make_optimizer_state(const OptimizerConfig& cfg, const Shape& param_shape);

struct GradStats {
  float norm = 0;
  float clip_scale = 1;
  bool skip = false;
  std::int64_t first_bad = -1;  // index into the gradient list
};

// Host constants of one step (computed in double, passed to the GPU as floats).
struct StepConstants {
  float bias_correction1 = 1, bias_correction2_sqrt = 1, beta2_t = 0;
};
StepConstants step_constants(const OptimizerConfig& cfg, std::int64_t step);

}  // namespace pocketlora
