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
// The reverse of optimizer_name; InvalidArgument naming the accepted words.
OptimizerKind parse_optimizer_kind(const std::string& s);

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

// The numbers of one optimizer step that change from step to step: the scheduled learning rate and what depends
// on the step count (computed in double on the host, used as floats by both backends). A recorded step reads
// them from a small f32 tensor the host writes before each run, so the same program replays every step.
struct StepConstants {
  float lr = 0;                     // the scheduled learning rate of this step
  float bias_correction1 = 1;       // AdamW: 1 - beta1^t
  float bias_correction2_sqrt = 1;  // AdamW: sqrt(1 - beta2^t)
  float beta2_t = 0;                // Adafactor: 1 - t^decay_rate
  float first_step = 0;             // 1 on step 1 (SGD's momentum buffer starts as the gradient), else 0
};
// Step counts from 1; `lr` is the learning rate the schedule gives this step (cfg.lr is its base value).
StepConstants step_constants(const OptimizerConfig& cfg, float lr, std::int64_t step);
// The f32 [kStepConstantWords] tensor a backend reads (word order: shaders/common/optim_push.h), and back.
extern const std::int64_t kStepConstantWords;
Tensor step_constants_tensor(const StepConstants& k);
StepConstants step_constants_from_tensor(const Tensor& t);

// Gradient statistics as the backends keep them: i32 [kGradStatsWords], the norm and clip scale as f32 bits
// (word order: shaders/common/optim_push.h), so both backends' tensors read back the same.
extern const std::int64_t kGradStatsWords;
Tensor grad_stats_tensor(const GradStats& s);
GradStats grad_stats_from_tensor(const Tensor& t);

}  // namespace pocketlora
