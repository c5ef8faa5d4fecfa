#pragma once
// Mean cross-entropy over tokens whose label is not ignore_index (-100, as PyTorch / HF), and its gradient
// w.r.t. the logits. The GPU computes the same over vocabulary chunks (online log-sum-exp), so full
// [tokens, vocab] logits never need to be resident.
#include "host/ref/tensor.h"

namespace pocketlora {
constexpr std::int32_t kIgnoreIndex = -100;

struct CrossEntropyResult {
  double loss = 0;          // mean over valid tokens; 0 when there are none
  std::int64_t valid = 0;   // tokens that count
};

void check_cross_entropy(const char* op, const Shape& logits, const Shape& labels);
namespace ref {
// logits [T, V], labels i32 [T]; lse [T] saved for the backward.
CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& lse);
// dlogits = grad_scale * (softmax - onehot) / valid; zero rows for ignored tokens.
void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& lse, Tensor& dlogits,
                            float grad_scale = 1.0f);
}  // namespace ref
}  // namespace pocketlora
