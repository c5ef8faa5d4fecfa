#pragma once
// GPU embedding lookup / backward over a row-chunked table (tables larger than one binding are split; one
// dispatch per chunk). The lookup reads an f32 or f16 table into f32 rows (f16: 16-bit storage, else
// DeviceLimitError); the backward's dtable is f32 (a gradient summed into f16 would drop small contributions, and
// the trainer's table is frozen). Token ids must already be validated against the vocabulary (check_token_ids).
#include "host/core/op/embedding.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {
void embedding(vk::Sequence& seq, const DeviceTensor& ids, const RowChunkedTensor& table, const DeviceTensor& out);
// dtable += scatter(dout); deterministic (tokens summed in order per column).
void embedding_backward(vk::Sequence& seq, const DeviceTensor& ids, const DeviceTensor& dout,
                        const RowChunkedTensor& dtable);
}  // namespace pocketlora::ops
