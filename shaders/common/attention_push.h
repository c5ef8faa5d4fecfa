#ifndef PL_SHADERS_COMMON_ATTENTION_PUSH_H
#define PL_SHADERS_COMMON_ATTENTION_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// Causal GQA attention (host/ops/attention.h). q/out/dq/dout [T, n_heads, head_dim], k/v/dk/dv
// [T, n_kv_heads, head_dim], lse and D [T, n_heads], score scratch [n_heads, T, T]. `alpha` scales the
// result of the two small GEMM kernels (rowmat / colmat) that the simple variant reuses for several products.
struct AttentionPush {
  uint T;
  uint n_heads;
  uint n_kv_heads;
  uint head_dim;
  uint has_segments;  // 0: plain causal mask, segment binding unused
  float scale;
  float alpha;
  uint pad;
};
PL_CHECK_PUSH_SIZE(AttentionPush, 32)
PL_SHADER_NAMESPACE_END
#endif
