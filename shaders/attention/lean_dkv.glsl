// Lean variant backward, pass 2 (parallel over keys): one invocation per (block of KM consecutive keys, kv head
// g) loops over the query heads of its group and the queries i >= first key, recomputing P_ij from the saved
// lse, and accumulates dV_j = sum P_ij dout_i and dK_j = scale * sum P_ij (dout_i . v_j - D_i) q_i in registers;
// each q and dout row loaded serves KM keys. Each output row has one owner, so the sums over the group's heads
// need no atomics and are deterministic.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const uint HEAD_DIM = 64;
layout(constant_id = 2) const uint KM = 1;

#include "shaders/common/attention_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { AttentionPush p; };
PL_TENSOR(0, 3, readonly, q)
PL_TENSOR(1, 4, readonly, k)
PL_TENSOR(2, 5, readonly, v)
layout(set = 0, binding = 3) readonly buffer SegBuf { int seg[]; };
layout(set = 0, binding = 4) readonly buffer LseBuf { float lse[]; };
PL_TENSOR(5, 6, readonly, dout)
layout(set = 0, binding = 6) readonly buffer DBuf { float Dsum[]; };
PL_TENSOR(7, 7, writeonly, dk)
PL_TENSOR(8, 8, writeonly, dv)
#include "mask.glsl"

void main() {
  const uint blocks = (p.T + KM - 1u) / KM;
  const uint idx = gl_GlobalInvocationID.x;
  if (idx >= blocks * p.n_kv_heads) return;
  const uint j0 = (idx / p.n_kv_heads) * KM, g = idx % p.n_kv_heads;
  const uint group = p.n_heads / p.n_kv_heads;
  const uint qstride = p.n_heads * HEAD_DIM;
  const uint jlast = min(j0 + KM, p.T) - 1u;

  // Keys past T are clamped to the last key (computed, not stored) so the loops stay uniform.
  uint key[KM];
  float kr[KM][HEAD_DIM];
  float vr[KM][HEAD_DIM];
  float dkacc[KM][HEAD_DIM];
  float dvacc[KM][HEAD_DIM];
  for (uint c = 0u; c < KM; ++c) {
    key[c] = min(j0 + c, jlast);
    const uint kb = (key[c] * p.n_kv_heads + g) * HEAD_DIM;
    for (uint d = 0u; d < HEAD_DIM; ++d) {
      kr[c][d] = p.scale * PL_LD(k, kb + d);
      vr[c][d] = PL_LD(v, kb + d);
      dkacc[c][d] = 0.0;
      dvacc[c][d] = 0.0;
    }
  }
  for (uint i = j0; i < p.T; ++i) {
    for (uint h = g * group; h < (g + 1u) * group; ++h) {
      const uint qb = i * qstride + h * HEAD_DIM;
      float s[KM];
      float dp[KM];
      for (uint c = 0u; c < KM; ++c) {
        s[c] = 0.0;
        dp[c] = 0.0;
      }
      for (uint d = 0u; d < HEAD_DIM; ++d) {
        const float qv = PL_LD(q, qb + d), dov = PL_LD(dout, qb + d);
        for (uint c = 0u; c < KM; ++c) {
          s[c] = fma(qv, kr[c][d], s[c]);
          dp[c] = fma(dov, vr[c][d], dp[c]);
        }
      }
      const uint r = i * p.n_heads + h;
      const float L = lse[r], Di = Dsum[r];
      float pr[KM];
      float ds[KM];
      for (uint c = 0u; c < KM; ++c) {
        pr[c] = (key[c] <= i && visible(i, key[c])) ? exp(s[c] - L) : 0.0;
        ds[c] = pr[c] * (dp[c] - Di);
      }
      for (uint d = 0u; d < HEAD_DIM; ++d) {
        const float qv = PL_LD(q, qb + d), dov = PL_LD(dout, qb + d);
        for (uint c = 0u; c < KM; ++c) {
          dvacc[c][d] = fma(pr[c], dov, dvacc[c][d]);
          dkacc[c][d] = fma(ds[c], qv, dkacc[c][d]);
        }
      }
    }
  }
  for (uint c = 0u; c < KM; ++c) {
    if (j0 + c > jlast) break;
    const uint kb = (key[c] * p.n_kv_heads + g) * HEAD_DIM;
    for (uint d = 0u; d < HEAD_DIM; ++d) {
      PL_ST(dk, kb + d, p.scale * dkacc[c][d])
      PL_ST(dv, kb + d, dvacc[c][d])
    }
  }
}
