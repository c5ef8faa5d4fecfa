#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/cross_entropy.h.
#include "host/core/op/cross_entropy.h"

namespace pocketlora::ref {

// logits [T, V], labels i32 [T]; lse [T] saved for the backward.
CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& lse);
// dlogits = scale * (softmax - onehot); zero rows for ignored tokens (the mean's gradient: scale = 1 / valid).
// dlogits may be logits itself.
void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& lse, Tensor& dlogits,
                            double scale);

}  // namespace pocketlora::ref
