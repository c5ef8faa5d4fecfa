#pragma once
// GPU C = alpha * op(A) * op(B)^T (+C) (f32 or f16 storage, f32 accumulation), recorded into a Sequence.
#include "host/core/op/matmul.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

void matmul(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt = {});

}  // namespace pocketlora::ops
