// Simple variant: out[i, h, :] = alpha * sum_j A[h, i, j] * B[j, h / group, :] with A the chunk's
// [head_count, T, T] scratch matrix that is zero above the diagonal (so j stops at the tile's last row). Forward: A = P, B = v,
// alpha = 1. Backward: A = dS, B = k, alpha = scale gives dQ. Register tile: TM query rows x TD dims.
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
  const uint hc = gl_WorkGroupID.z, h = p.head_base + hc;  // place in the chunk, head
  const uint row0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
  const uint d0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TD;
  const uint D = p.head_dim;
  if (row0 >= p.T || d0 >= D) return;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint bstride = p.n_kv_heads * D;

  uint arow[TM];
  uint bcol[TD];
  for (uint a = 0u; a < TM; ++a) arow[a] = (hc * p.T + min(row0 + a, p.T - 1u)) * p.T;
  for (uint c = 0u; c < TD; ++c) bcol[c] = g * D + min(d0 + c, D - 1u);
  float acc[TM][TD];
  for (uint a = 0u; a < TM; ++a)
    for (uint c = 0u; c < TD; ++c) acc[a][c] = 0.0;
  const uint jend = min(row0 + TM, p.T);
  for (uint j = 0u; j < jend; ++j) {
    float av[TM];
    float bv[TD];
    for (uint a = 0u; a < TM; ++a) av[a] = A[arow[a] + j];
    for (uint c = 0u; c < TD; ++c) bv[c] = PL_LD(B, j * bstride + bcol[c]);
    for (uint a = 0u; a < TM; ++a)
      for (uint c = 0u; c < TD; ++c) acc[a][c] = fma(av[a], bv[c], acc[a][c]);
  }
  for (uint a = 0u; a < TM; ++a) {
    const uint i = row0 + a;
    if (i >= p.T) break;
    for (uint c = 0u; c < TD; ++c) {
      if (d0 + c >= D) break;
      PL_ST(o, (i * p.n_heads + h) * D + d0 + c, p.alpha * acc[a][c])
    }
  }
}
