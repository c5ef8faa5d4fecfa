#pragma once
// GPU SwiGLU (h = silu(g) * u) forward/backward and the residual add y = a + alpha * b (y may alias a). Each
// operand f32 or f16 (f32 arithmetic).
#include "host/core/op/swiglu.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {
void swiglu(vk::Sequence& seq, const DeviceTensor& g, const DeviceTensor& u, const DeviceTensor& h);
void swiglu_backward(vk::Sequence& seq, const DeviceTensor& g, const DeviceTensor& u, const DeviceTensor& dh,
                     const DeviceTensor& dg, const DeviceTensor& du);
void add(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& y, float alpha = 1.0f);
}  // namespace pocketlora::ops
