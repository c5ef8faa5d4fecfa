#pragma once
// GPU C = alpha * op(A) * op(B)^T (+C) (A, B and C each f32 or f16 storage,
// f32 accumulation; any f16 operand needs 16-bit storage, else DeviceLimitError), recorded into a Sequence.
#include "host/core/op/lora.h"
#include "host/core/op/matmul.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

void matmul(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt = {});
// The same with B split by rows across bindings (an output head [vocab, dim] larger than one binding): one
// dispatch per chunk, each on a column block of C (plain B) or a column block of op(A), accumulated (trans_b).
void matmul(vk::Sequence& seq, const DeviceTensor& a, const RowChunkedTensor& b, const DeviceTensor& c,
            const MatmulOptions& opt = {});
// C = alpha * A B^T (+C) + scale * (A LA^T) LB^T in ONE dispatch — a linear and one LoRA adapter (LA [r, K],
// LB [N, r] f32) on the few-row GEMV (decoding: M <= matmul.gemv_max_m, A and C f32, B f32 or f16, M * r <=
// LORA_ROWS_MAX_MR, nothing transposed). Returns false, recording nothing, where that path does not apply: the
// caller then runs the linear and the LoRA product as two ops.
bool matmul_lora(vk::Sequence& seq, const DeviceTensor& a, const DeviceTensor& b, const DeviceTensor& c,
                 const DeviceTensor& la, const DeviceTensor& lb, float scale, const MatmulOptions& opt = {});

}  // namespace pocketlora::ops
