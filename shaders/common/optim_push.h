#ifndef PL_SHADERS_COMMON_OPTIM_PUSH_H
#define PL_SHADERS_COMMON_OPTIM_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// Global gradient statistics shared by every optimizer kernel of a step (uint buffer, floats as bits):
#define GRAD_STATS_NORM 0u        // global L2 norm of all gradients (before clipping)
#define GRAD_STATS_CLIP_SCALE 1u  // min(1, max_norm / (norm + 1e-6)); 1 when clipping is off
#define GRAD_STATS_SKIP 2u        // 1 when any gradient element is NaN/Inf: every update of the step is skipped
#define GRAD_STATS_FIRST_BAD 3u   // index of the first tensor holding a NaN/Inf, or 0xffffffff
#define GRAD_STATS_WORDS 4u

struct GradNormPush {
  uint n;           // elements of this tensor
  uint chunk_base;  // first partial slot of this tensor
  uint chunk_size;  // elements per partial
  uint tensors;     // reduce: number of tensors in the table
  float max_norm;   // reduce: clipping threshold (<= 0: no clipping)
  uint pad0;
  uint pad1;
  uint pad2;
};
PL_CHECK_PUSH_SIZE(GradNormPush, 32)

// The step constants (f32 buffer the host writes before each run, host/core/op/optimizer.h StepConstants): what
// changes from step to step lives here and not in push constants, so one recorded step replays every step.
#define STEP_CONST_LR 0u                     // scheduled learning rate
#define STEP_CONST_BIAS_CORRECTION1 1u       // AdamW: 1 - beta1^t
#define STEP_CONST_BIAS_CORRECTION2_SQRT 2u  // AdamW: sqrt(1 - beta2^t)
#define STEP_CONST_BETA2_T 3u                // Adafactor: 1 - t^decay_rate
#define STEP_CONST_FIRST_STEP 4u             // 1.0 on step 1 (SGD momentum buffer starts as g), else 0.0
#define STEP_CONST_WORDS 5u

// One optimizer step on one tensor of n elements (rows x cols for Adafactor): the optimizer's fixed settings.
struct OptimPush {
  uint n;
  uint rows;
  uint cols;
  uint flags;   // SGD: bit 0 nesterov; Adafactor RMS: ADAFACTOR_RMS_*
  float beta1;  // Adam/Lion beta1, SGD momentum
  float beta2;  // Adam/Lion beta2, SGD dampening
  float eps;    // Adam eps, Adafactor eps1 (added to g^2)
  float weight_decay;
  float clip_threshold;  // Adafactor update clipping (RMS), e.g. 1.0
  uint row_begin;        // Adafactor RMS: this pass sums u^2 over rows [row_begin, row_end)
  uint row_end;
  uint pad0;
};
PL_CHECK_PUSH_SIZE(OptimPush, 48)
// The Adafactor RMS runs in passes over row ranges where the device caps loop iterations per invocation.
#define ADAFACTOR_RMS_FIRST 1u  // compute mean(R), start the sum
#define ADAFACTOR_RMS_LAST 2u   // turn the sum into rms(u)
PL_SHADER_NAMESPACE_END
#endif
