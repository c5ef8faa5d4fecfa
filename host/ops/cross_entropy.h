#pragma once
// GPU chunked cross-entropy. Usage per micro-batch:
//   CrossEntropyState st = make_cross_entropy_state(arena, T);
//   for each vocabulary chunk c (logits_c [T, chunk], produced e.g. by a chunked output matmul):
//     cross_entropy_chunk(seq, logits_c, labels, vocab_offset_c, c == 0, st);
//   cross_entropy_finalize(seq, labels, st);          // st.lse [T], st.result = (mean loss, valid, sum, 0)
//   for each chunk again: cross_entropy_backward_chunk(seq, logits_c, labels, vocab_offset_c, st, dlogits_c);
// Everything stays on the GPU; the host reads st.result only when it wants to log the loss.
#include "host/core/op/cross_entropy.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

struct CrossEntropyState {
  DeviceTensor stats;   // f32 [T, 4]: running max, running sum, target logit, unused
  DeviceTensor lse;     // f32 [T]
  DeviceTensor result;  // f32 [4]: mean loss, valid count, loss sum, 0
};

CrossEntropyState make_cross_entropy_state(vk::Arena& arena, std::int64_t tokens);
void cross_entropy_chunk(vk::Sequence& seq, const DeviceTensor& logits, const DeviceTensor& labels,
                         std::int64_t vocab_offset, bool first_chunk, const CrossEntropyState& st);
void cross_entropy_finalize(vk::Sequence& seq, const DeviceTensor& labels, const CrossEntropyState& st);
void cross_entropy_backward_chunk(vk::Sequence& seq, const DeviceTensor& logits, const DeviceTensor& labels,
                                  std::int64_t vocab_offset, const CrossEntropyState& st, const DeviceTensor& dlogits,
                                  float grad_scale = 1.0f);

}  // namespace pocketlora::ops
