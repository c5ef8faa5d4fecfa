// Simple variant backward: out[j, g, :] = alpha * sum over the query heads h of kv head g, sum_i A[h, i, j] *
// B[i, h, :], with A the chunk's [head_count, T, T] scratch, zero where key j is invisible to query i (so i starts at the tile's first
// key). dK: A = dS, B = q, alpha = scale. dV: A = P, B = dout, alpha = 1. Each invocation owns TM keys x TD
// dims of one kv head and sums its group's heads itself: deterministic, no atomics.
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
layout(constant_id = 2) const uint TM = 4;
layout(constant_id = 3) const uint TD = 4;

#include "shaders/common/attention_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { AttentionPush p; };
layout(set = 0, binding = 0) readonly buffer ABuf { float A[]; };
PL_TENSOR(1, 4, readonly, B)
PL_TENSOR(2, 5, writeonly, o)

void main() {
  const uint group = p.n_heads / p.n_kv_heads;
  const uint g = p.head_base / group + gl_WorkGroupID.z;  // the chunk holds whole groups
  const uint j0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
  const uint d0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TD;
  const uint D = p.head_dim;
  if (j0 >= p.T || d0 >= D) return;
  const uint bstride = p.n_heads * D;

  uint acol[TM];
  uint dcol[TD];
  for (uint a = 0u; a < TM; ++a) acol[a] = min(j0 + a, p.T - 1u);
  for (uint c = 0u; c < TD; ++c) dcol[c] = min(d0 + c, D - 1u);
  float acc[TM][TD];
  for (uint a = 0u; a < TM; ++a)
    for (uint c = 0u; c < TD; ++c) acc[a][c] = 0.0;
  for (uint h = g * group; h < (g + 1u) * group; ++h) {
    for (uint i = j0; i < p.T; ++i) {
      const uint arow = ((h - p.head_base) * p.T + i) * p.T;
      const uint brow = i * bstride + h * D;
      float av[TM];
      float bv[TD];
      for (uint a = 0u; a < TM; ++a) av[a] = A[arow + acol[a]];
      for (uint c = 0u; c < TD; ++c) bv[c] = PL_LD(B, brow + dcol[c]);
      for (uint a = 0u; a < TM; ++a)
        for (uint c = 0u; c < TD; ++c) acc[a][c] = fma(av[a], bv[c], acc[a][c]);
    }
  }
  for (uint a = 0u; a < TM; ++a) {
    const uint j = j0 + a;
    if (j >= p.T) break;
    for (uint c = 0u; c < TD; ++c) {
      if (d0 + c >= D) break;
      PL_ST(o, (j * p.n_kv_heads + g) * D + d0 + c, p.alpha * acc[a][c])
    }
  }
}
