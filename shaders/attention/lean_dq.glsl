// Lean variant backward, pass 1 (parallel over query rows): one invocation per (block of QM consecutive queries,
// head h) computes D_i = dout_i . out_i (saved for pass 2), then recomputes each visible probability from the
// saved lse and accumulates dQ_i = scale * sum_j P_ij (dout_i . v_j - D_i) k_j in registers; each k and v row
// loaded serves QM queries. Must run before lean_dkv.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const uint HEAD_DIM = 64;
layout(constant_id = 2) const uint QM = 1;

#include "shaders/common/attention_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { AttentionPush p; };
PL_TENSOR(0, 3, readonly, q)
PL_TENSOR(1, 4, readonly, k)
PL_TENSOR(2, 5, readonly, v)
layout(set = 0, binding = 3) readonly buffer SegBuf { int seg[]; };
PL_TENSOR(4, 6, readonly, o)
layout(set = 0, binding = 5) readonly buffer LseBuf { float lse[]; };
PL_TENSOR(6, 7, readonly, dout)
layout(set = 0, binding = 7) writeonly buffer DBuf { float Dsum[]; };
PL_TENSOR(8, 8, writeonly, dq)
#include "mask.glsl"

void main() {
  const uint blocks = (p.T + QM - 1u) / QM;
  const uint idx = gl_GlobalInvocationID.x;
  if (idx >= blocks * p.n_heads) return;
  const uint i0 = (idx / p.n_heads) * QM, h = idx % p.n_heads;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint kstride = p.n_kv_heads * HEAD_DIM;
  const uint ilast = min(i0 + QM, p.T) - 1u;

  // Rows past T are clamped to the last row (computed, not stored) so the loops stay uniform.
  uint row[QM];
  float qr[QM][HEAD_DIM];
  float dor[QM][HEAD_DIM];
  float acc[QM][HEAD_DIM];
  float Di[QM];
  float L[QM];
  for (uint a = 0u; a < QM; ++a) {
    row[a] = min(i0 + a, ilast);
    const uint r = row[a] * p.n_heads + h;
    Di[a] = 0.0;
    for (uint d = 0u; d < HEAD_DIM; ++d) {
      qr[a][d] = p.scale * PL_LD(q, r * HEAD_DIM + d);
      dor[a][d] = PL_LD(dout, r * HEAD_DIM + d);
      Di[a] = fma(dor[a][d], PL_LD(o, r * HEAD_DIM + d), Di[a]);
      acc[a][d] = 0.0;
    }
    L[a] = lse[r];
  }
  for (uint a = 0u; a < QM; ++a)
    if (i0 + a <= ilast) Dsum[row[a] * p.n_heads + h] = Di[a];
  for (uint j = 0u; j <= ilast; ++j) {
    const uint kb = j * kstride + g * HEAD_DIM;
    float s[QM];
    float dp[QM];
    for (uint a = 0u; a < QM; ++a) {
      s[a] = 0.0;
      dp[a] = 0.0;
    }
    for (uint d = 0u; d < HEAD_DIM; ++d) {
      const float kv = PL_LD(k, kb + d), vv = PL_LD(v, kb + d);
      for (uint a = 0u; a < QM; ++a) {
        s[a] = fma(qr[a][d], kv, s[a]);
        dp[a] = fma(dor[a][d], vv, dp[a]);
      }
    }
    float ds[QM];
    for (uint a = 0u; a < QM; ++a)
      ds[a] = (j <= row[a] && visible(row[a], j)) ? exp(s[a] - L[a]) * (dp[a] - Di[a]) : 0.0;
    for (uint d = 0u; d < HEAD_DIM; ++d) {
      const float kv = PL_LD(k, kb + d);
      for (uint a = 0u; a < QM; ++a) acc[a][d] = fma(ds[a], kv, acc[a][d]);
    }
  }
  for (uint a = 0u; a < QM; ++a) {
    if (i0 + a > ilast) break;
    const uint r = row[a] * p.n_heads + h;
    for (uint d = 0u; d < HEAD_DIM; ++d) PL_ST(dq, r * HEAD_DIM + d, p.scale * acc[a][d])
  }
}
