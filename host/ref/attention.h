#pragma once
// CPU backend implementation of the op whose contract (semantics, options, shape checks) is
// host/core/op/attention.h.
#include "host/core/op/attention.h"

namespace pocketlora::ref {

// `segments` may be null (plain causal mask).
void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* segments, Tensor& out, Tensor& lse,
               const AttentionOptions& opt = {});
// Gradients of sum(dout .* out) from the saved out and lse (probabilities are recomputed, as the GPU does);
// dk/dv sum over the query heads that share each kv head. Same argument order as the forward, gradients last.
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* segments, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv,
                        const AttentionOptions& opt = {});

}  // namespace pocketlora::ref
