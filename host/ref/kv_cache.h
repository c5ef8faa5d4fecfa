#pragma once
// CPU backend implementation of the op whose contract (semantics, shape checks) is host/core/op/kv_cache.h.
// f32 tensors; scores and sums in double.
#include "host/core/op/kv_cache.h"

namespace pocketlora::ref {

void kv_cache_write(const Tensor& k, const Tensor& v, const Tensor& positions, Tensor& k_cache, Tensor& v_cache);
void kv_cache_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& positions,
                        Tensor& out, float scale = 0.0f);

}  // namespace pocketlora::ref
