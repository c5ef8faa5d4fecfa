// Simple variant, forward step 1: S[h, i, j] = scale * q[i, h, :] . k[j, h / group, :] for j <= i, into the
// chunk's [head_count, T, T] scratch. Entries above the diagonal are left unwritten (softmax reads only j <= i). Register
// tiles (TM queries x TN keys per invocation, no shared memory) as in nn/matmul: fastest on lavapipe and Mali.
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
layout(constant_id = 2) const uint TM = 4;
layout(constant_id = 3) const uint TN = 4;

#include "shaders/common/attention_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { AttentionPush p; };
PL_TENSOR(0, 4, readonly, q)
PL_TENSOR(1, 5, readonly, k)
layout(set = 0, binding = 2) writeonly buffer SBuf { float s[]; };

void main() {
  const uint hc = gl_WorkGroupID.z, h = p.head_base + hc;  // place in the chunk, head
  const uint row0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
  const uint col0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TN;
  if (row0 >= p.T || col0 >= p.T || col0 > min(row0 + TM - 1u, p.T - 1u)) return;  // above the diagonal
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint D = p.head_dim;

  // Out-of-range rows/keys are clamped so the inner loop stays uniform; they are not stored.
  uint qrow[TM];
  uint krow[TN];
  for (uint a = 0u; a < TM; ++a) qrow[a] = (min(row0 + a, p.T - 1u) * p.n_heads + h) * D;
  for (uint b = 0u; b < TN; ++b) krow[b] = (min(col0 + b, p.T - 1u) * p.n_kv_heads + g) * D;
  float acc[TM][TN];
  for (uint a = 0u; a < TM; ++a)
    for (uint b = 0u; b < TN; ++b) acc[a][b] = 0.0;
  for (uint d = 0u; d < D; ++d) {
    float qv[TM];
    float kv[TN];
    for (uint a = 0u; a < TM; ++a) qv[a] = PL_LD(q, qrow[a] + d);
    for (uint b = 0u; b < TN; ++b) kv[b] = PL_LD(k, krow[b] + d);
    for (uint a = 0u; a < TM; ++a)
      for (uint b = 0u; b < TN; ++b) acc[a][b] = fma(qv[a], kv[b], acc[a][b]);
  }
  for (uint a = 0u; a < TM; ++a) {
    const uint i = row0 + a;
    if (i >= p.T) break;
    for (uint b = 0u; b < TN; ++b) {
      const uint j = col0 + b;
      if (j > i) break;
      s[(hc * p.T + i) * p.T + j] = p.scale * acc[a][b];
    }
  }
}
