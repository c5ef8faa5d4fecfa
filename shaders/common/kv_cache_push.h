#ifndef PL_SHADERS_COMMON_KV_CACHE_PUSH_H
#define PL_SHADERS_COMMON_KV_CACHE_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// Attention over a KV cache (host/core/op/kv_cache.h): q/out [T, n_heads, head_dim], k/v [T, n_kv_heads,
// head_dim], caches [capacity, n_kv_heads, head_dim], positions i32 [T].
struct KvCachePush {
  uint T;
  uint capacity;
  uint n_heads;
  uint n_kv_heads;
  uint head_dim;
  float scale;
  uint pad0;
  uint pad1;
};
PL_CHECK_PUSH_SIZE(KvCachePush, 32)
PL_SHADER_NAMESPACE_END
#endif
