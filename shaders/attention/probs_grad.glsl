// Simple variant backward, step 1: for a tile of TM queries x TN keys of head h, recompute the probabilities
// from the saved lse, P = exp(scale q.k - lse), and the score gradient dS = P * (dout.v - D_i) with
// D_i = dout_i . out_i (computed here per row: TM*head_dim extra work against 2*TM*TN*head_dim). Writes the whole
// [head_count, T, T] P and dS scratch of the chunk, zeros where the key is invisible, for rowmat (dQ) and colmat (dK, dV).
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
layout(constant_id = 2) const uint TM = 4;
layout(constant_id = 3) const uint TN = 4;

#include "shaders/common/attention_push.h"
#include "shaders/common/storage.glsl"
layout(push_constant) uniform Push { AttentionPush p; };
PL_TENSOR(0, 4, readonly, q)
PL_TENSOR(1, 5, readonly, k)
PL_TENSOR(2, 6, readonly, v)
PL_TENSOR(3, 7, readonly, o)
PL_TENSOR(4, 8, readonly, dout)
layout(set = 0, binding = 5) readonly buffer LseBuf { float lse[]; };
layout(set = 0, binding = 6) readonly buffer SegBuf { int seg[]; };
layout(set = 0, binding = 7) writeonly buffer PBuf { float P[]; };
layout(set = 0, binding = 8) writeonly buffer DSBuf { float dS[]; };
#include "mask.glsl"

void main() {
  const uint hc = gl_WorkGroupID.z, h = p.head_base + hc;  // place in the chunk, head
  const uint row0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
  const uint col0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TN;
  if (row0 >= p.T || col0 >= p.T) return;
  if (col0 > min(row0 + TM - 1u, p.T - 1u)) {  // wholly above the diagonal: zeros
    for (uint a = 0u; a < TM && row0 + a < p.T; ++a)
      for (uint b = 0u; b < TN && col0 + b < p.T; ++b) {
        const uint idx = (hc * p.T + row0 + a) * p.T + col0 + b;
        P[idx] = 0.0;
        dS[idx] = 0.0;
      }
    return;
  }
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint D = p.head_dim;

  uint qrow[TM];
  uint krow[TN];
  for (uint a = 0u; a < TM; ++a) qrow[a] = (min(row0 + a, p.T - 1u) * p.n_heads + h) * D;
  for (uint b = 0u; b < TN; ++b) krow[b] = (min(col0 + b, p.T - 1u) * p.n_kv_heads + g) * D;
  float s[TM][TN];
  float dp[TM][TN];
  float Di[TM];
  for (uint a = 0u; a < TM; ++a) {
    Di[a] = 0.0;
    for (uint b = 0u; b < TN; ++b) {
      s[a][b] = 0.0;
      dp[a][b] = 0.0;
    }
  }
  for (uint d = 0u; d < D; ++d) {
    float qv[TM];
    float dov[TM];
    float kv[TN];
    float vv[TN];
    for (uint a = 0u; a < TM; ++a) {
      qv[a] = PL_LD(q, qrow[a] + d);
      dov[a] = PL_LD(dout, qrow[a] + d);
      Di[a] = fma(dov[a], PL_LD(o, qrow[a] + d), Di[a]);
    }
    for (uint b = 0u; b < TN; ++b) {
      kv[b] = PL_LD(k, krow[b] + d);
      vv[b] = PL_LD(v, krow[b] + d);
    }
    for (uint a = 0u; a < TM; ++a)
      for (uint b = 0u; b < TN; ++b) {
        s[a][b] = fma(qv[a], kv[b], s[a][b]);
        dp[a][b] = fma(dov[a], vv[b], dp[a][b]);
      }
  }
  for (uint a = 0u; a < TM; ++a) {
    const uint i = row0 + a;
    if (i >= p.T) break;
    const float L = lse[i * p.n_heads + h];
    for (uint b = 0u; b < TN; ++b) {
      const uint j = col0 + b;
      if (j >= p.T) break;
      const float pr = visible(i, j) ? exp(p.scale * s[a][b] - L) : 0.0;
      const uint idx = (hc * p.T + i) * p.T + j;
      P[idx] = pr;
      dS[idx] = pr * (dp[a][b] - Di[a]);
    }
  }
}
