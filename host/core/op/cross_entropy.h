#pragma once
// Mean cross-entropy over tokens whose label is not ignore_index (-100, as PyTorch / HF), and its gradient
// w.r.t. the logits. The GPU computes the same over vocabulary chunks (online log-sum-exp), so full
// [tokens, vocab] logits never need to be resident.
#include "host/core/tensor.h"

namespace pocketlora {
constexpr std::int32_t kIgnoreIndex = -100;

struct CrossEntropyResult {
  double loss = 0;          // mean over valid tokens; 0 when there are none
  std::int64_t valid = 0;   // tokens that count
};

void check_cross_entropy(const char* op, const Shape& logits, const Shape& labels);

}  // namespace pocketlora
