#pragma once
// Attention over a KV cache, for generation (prefill a prompt, then one token at a time):
//   kv_cache_write      k_cache[positions[i]] = k[i], v_cache[positions[i]] = v[i]
//   kv_cache_attention  out[i] = softmax_j(scale * q[i] . k_cache[j]) v_cache[j] over j <= positions[i]
// q/out [T, n_heads, head_dim], k/v [T, n_kv_heads, head_dim], caches [capacity, n_kv_heads, head_dim], positions
// i32 [T]; query head h reads kv head h / (n_heads / n_kv_heads), as in attention.h. Masking by position (not by
// row) is what lets one recorded decode step be replayed for every token: the host writes the position, the
// kernels read it. Every position must lie in [0, capacity) and the cache rows up to it must have been written —
// the caller's contract (host/infer/decoder.h checks it); the kernels clamp to stay in bounds.
// Forward only, f32: inference keeps no lse and no gradient.
#include <cstdint>

#include "host/core/tensor.h"

namespace pocketlora {

struct KvCacheDims {
  std::int64_t T = 0, capacity = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
};

// ShapeError naming the op and every shape unless k, v [T, n_kv_heads, head_dim], positions [T] and both caches
// [capacity, n_kv_heads, head_dim] agree (n_heads is left 0).
KvCacheDims check_kv_cache_write_shapes(const char* op, const Shape& k, const Shape& v, const Shape& positions,
                                        const Shape& k_cache, const Shape& v_cache);
// ShapeError naming the op and every shape unless q/out [T, n_heads, head_dim], positions [T] and the caches
// [capacity, n_kv_heads, head_dim] agree with n_heads a multiple of n_kv_heads.
KvCacheDims check_kv_cache_attention_shapes(const char* op, const Shape& q, const Shape& k_cache,
                                            const Shape& v_cache, const Shape& positions, const Shape& out);
// 1/sqrt(head_dim) when scale is 0.
float kv_cache_attention_scale(const KvCacheDims& d, float scale);

}  // namespace pocketlora
