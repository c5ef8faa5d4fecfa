#pragma once
// GPU RMSNorm forward / backward: x, w, y, dy, dx each f32 or f16 (f32 arithmetic); rstd and dw f32. Same argument
// order as host/ref/rmsnorm.h.
#include "host/core/op/rmsnorm.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {
void rmsnorm(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& w, const DeviceTensor& y,
             const DeviceTensor& rstd, float eps);
void rmsnorm_backward(vk::Sequence& seq, const DeviceTensor& x, const DeviceTensor& w, const DeviceTensor& rstd,
                      const DeviceTensor& dy, const DeviceTensor& dx, const DeviceTensor& dw,
                      bool accumulate_dw = false);
}  // namespace pocketlora::ops
