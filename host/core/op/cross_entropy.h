#pragma once
// Cross-entropy over tokens whose label is not ignore_index (-100, as PyTorch / HF), and its gradient w.r.t. the
// logits, scale * (softmax - onehot): with scale = 1 / valid tokens it is the gradient of the mean. The GPU
// computes the same over vocabulary chunks (online log-sum-exp), so full [tokens, vocab] logits never need to be
// resident; the trainer calls it on row chunks of a step's logits, summing losses and counts across calls.
#include "host/core/tensor.h"

namespace pocketlora {
constexpr std::int32_t kIgnoreIndex = -100;

struct CrossEntropyResult {
  double loss = 0;          // mean over valid tokens; 0 when there are none
  double sum = 0;           // sum over valid tokens
  std::int64_t valid = 0;   // tokens that count
};

void check_cross_entropy(const char* op, const Shape& logits, const Shape& labels);

}  // namespace pocketlora
