#pragma once
// GPU chunked cross-entropy. Usage per micro-batch (or per row chunk of a step's logits):
//   DeviceTensor stats = make_cross_entropy_stats(arena, T);
//   for each vocabulary chunk c (logits_c [T, chunk], produced e.g. by a chunked output matmul):
//     cross_entropy_chunk(seq, logits_c, labels, vocab_offset_c, c == 0, stats);
//   cross_entropy_finalize(seq, labels, stats, lse, totals);  // lse [T]; totals f32 [2] += (loss sum, valid)
//   for each chunk again: cross_entropy_backward_chunk(seq, logits_c, labels, vocab_offset_c, lse, scale, dlogits_c);
// `totals` accumulates across calls (the trainer zeroes it once per step); `scale` f32 [1] is written by the host
// before each submit (1 / valid tokens of the optimizer step), so the recorded sequence replays unchanged. Nothing
// needs a host round trip; the host reads `totals` only when it wants to log the loss.
#include "host/core/op/cross_entropy.h"
#include "host/ops/device_tensor.h"

namespace pocketlora::ops {

// f32 [T, 4] per-row running statistics over vocabulary chunks: max, sum of exp, target logit, unused.
DeviceTensor make_cross_entropy_stats(vk::Arena& arena, std::int64_t tokens);
std::uint64_t cross_entropy_stats_bytes(const vk::Device& dev, std::int64_t tokens);  // what the above takes
void cross_entropy_chunk(vk::Sequence& seq, const DeviceTensor& logits, const DeviceTensor& labels,
                         std::int64_t vocab_offset, bool first_chunk, const DeviceTensor& stats);
void cross_entropy_finalize(vk::Sequence& seq, const DeviceTensor& labels, const DeviceTensor& stats,
                            const DeviceTensor& lse, const DeviceTensor& totals);
// dlogits_c = scale[0] * (softmax - onehot), zero rows for ignored labels; dlogits may be logits (in place).
void cross_entropy_backward_chunk(vk::Sequence& seq, const DeviceTensor& logits, const DeviceTensor& labels,
                                  std::int64_t vocab_offset, const DeviceTensor& lse, const DeviceTensor& scale,
                                  const DeviceTensor& dlogits);

}  // namespace pocketlora::ops
