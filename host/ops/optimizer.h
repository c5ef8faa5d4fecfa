#pragma once
// GPU optimizer steps (semantics: host/ref/optimizer.h). A step is recorded as:
//   ops::grad_norm(seq, scratch, grads, max_norm, stats);            // global norm, clip scale, skip flag
//   for each tensor: ops::optimizer_step(seq, cfg, step_consts, param, grad, state, stats);
// Every kernel reads the clip scale and the skip flag from `stats` on the GPU: no host round trip inside a step.
// What changes from step to step (scheduled lr, bias corrections, beta2_t) is read from `step_consts` (f32
// [STEP_CONST_WORDS], step_constants_tensor() written by the host before each submit), so a recorded sequence
// replays unchanged every step.
// After the submit, read_grad_stats() tells the host whether the step was skipped and which tensor was bad.
#include <vector>

#include "host/core/op/optimizer.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

struct DeviceOptimizerState {
  DeviceTensor m, v, row, col, scratch;  // as OptimizerState; scratch: Adafactor (mean(R), rms(u))
};
// Zero-initialised state in `arena` (Permanent lifetime: it lives as long as the adapter trains).
DeviceOptimizerState make_optimizer_state(vk::Device& dev, vk::Arena& arena, const OptimizerConfig& cfg,
                                          const Shape& param_shape, const std::string& name);
// The uint32 [GRAD_STATS_WORDS] buffer the norm writes and the optimizers read.
DeviceTensor make_grad_stats(vk::Arena& arena);

void grad_norm(vk::Sequence& seq, vk::Arena& scratch, const std::vector<DeviceTensor>& grads, float max_norm,
               const DeviceTensor& stats);
void optimizer_step(vk::Sequence& seq, const OptimizerConfig& cfg, const DeviceTensor& step_consts,
                    const DeviceTensor& param, const DeviceTensor& grad, const DeviceOptimizerState& state,
                    const DeviceTensor& stats);

GradStats read_grad_stats(vk::Device& dev, const DeviceTensor& stats);

}  // namespace pocketlora::ops
