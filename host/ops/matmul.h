#pragma once
// GPU C = alpha * op(A) * op(B)^T (+C) (A, B and C each f32 or f16 storage,
// f32 accumulation; any f16 operand needs 16-bit storage, else DeviceLimitError), recorded into a Sequence.
#include "host/core/op/matmul.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

void matmul(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt = {});

}  // namespace pocketlora::ops
