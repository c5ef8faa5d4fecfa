#ifndef PL_SHADERS_COMMON_ATTENTION_PUSH_H
#define PL_SHADERS_COMMON_ATTENTION_PUSH_H
#include "shaders/common/host_shared.h"
PL_SHADER_NAMESPACE_BEGIN
// Causal GQA attention (host/ops/attention.h). q/out/dq/dout [T, n_heads, head_dim], k/v/dk/dv
// [T, n_kv_heads, head_dim], lse and D [T, n_heads]. `alpha` scales the result of the two small GEMM kernels
// (rowmat / colmat) that the simple variant reuses for several products. The simple variant runs over a chunk of
// whole kv-head groups at a time, query heads [head_base, head_base + head_count), with a [head_count, T, T]
// score scratch indexed by the head's place in the chunk (the lean kernels take every head: 0, n_heads).
struct AttentionPush {
  uint T;
  uint n_heads;
  uint n_kv_heads;
  uint head_dim;
  uint has_segments;  // 0: plain causal mask, segment binding unused
  float scale;
  float alpha;
  uint head_base;
  uint head_count;
  uint pad0;
  uint pad1;
  uint pad2;
};
PL_CHECK_PUSH_SIZE(AttentionPush, 48)
PL_SHADER_NAMESPACE_END
#endif
