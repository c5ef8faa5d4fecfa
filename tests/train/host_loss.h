#pragma once
// The loss the LoRA step tests differentiate, computed on the host in f64 from the read logits (the backend
// cross-entropy op is tested on its own), and a step run around it.
#include <cstdint>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/tensor.h"
#include "host/train/llama_lora_step.h"

namespace pocketlora::test {

// Sum over labels >= 0 of -log softmax(logits[i])[label[i]], divided by `denominator` (0: the number of such
// labels). logits [N, V] f32 or f64; a negative label (-100) masks its row. When `dlogits` is given it receives
// the gradient, [N, V] in the logits' dtype.
double host_cross_entropy(const Tensor& logits, const std::vector<std::int32_t>& labels, Tensor* dlogits,
                          std::int64_t denominator = 0);

// Next-token labels for `ids` laid out as sequences of seq_len: label[i] = ids[i + 1] within a sequence, the last
// token of each sequence masked.
std::vector<std::int32_t> next_token_labels(const std::vector<std::int32_t>& ids, std::int64_t seq_len);

// Runs the whole step with the mean cross-entropy over `labels` computed here between the head's forward and
// backward, chunk by chunk when the step's head is chunked; returns the loss. The gradients stay in the backend.
double run_step_with_host_loss(Backend& be, LlamaLoraStep& step, const std::vector<std::int32_t>& labels);

}  // namespace pocketlora::test
