#pragma once
// The loss the LoRA step tests differentiate, computed on the host in f64 from the read logits (the backend
// cross-entropy op is tested on its own): mean over labels >= 0 of -log softmax(logits[i])[label[i]].
#include <cstdint>
#include <vector>

#include "host/core/tensor.h"

namespace pocketlora::test {

// logits [N, V] (f32 or f64); labels [N], -100 (any negative) masks a row. When `dlogits` is given it receives the
// gradient of the loss, [N, V] in the logits' dtype.
double host_cross_entropy(const Tensor& logits, const std::vector<std::int32_t>& labels, Tensor* dlogits);

// Next-token labels for `ids` laid out as sequences of seq_len: label[i] = ids[i + 1] within a sequence, the last
// token of each sequence masked.
std::vector<std::int32_t> next_token_labels(const std::vector<std::int32_t>& ids, std::int64_t seq_len);

}  // namespace pocketlora::test
