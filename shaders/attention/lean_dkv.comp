#version 450
#extension GL_GOOGLE_include_directive : require
// Lean variant backward, pass 2 (parallel over keys): one invocation per (key j, kv head g) loops over the
// query heads of its group and the queries i >= j that see key j, recomputing P_ij from the saved lse, and
// accumulates dV_j = sum P_ij dout_i and dK_j = scale * sum P_ij (dout_i . v_j - D_i) q_i in registers. Each
// output row has one owner, so the sums over the group's heads need no atomics and are deterministic.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const uint HEAD_DIM = 64;

#include "shaders/common/attention_push.h"
layout(push_constant) uniform Push { AttentionPush p; };
layout(set = 0, binding = 0) readonly buffer QBuf { float q[]; };
layout(set = 0, binding = 1) readonly buffer KBuf { float k[]; };
layout(set = 0, binding = 2) readonly buffer VBuf { float v[]; };
layout(set = 0, binding = 3) readonly buffer SegBuf { int seg[]; };
layout(set = 0, binding = 4) readonly buffer LseBuf { float lse[]; };
layout(set = 0, binding = 5) readonly buffer DOBuf { float dout[]; };
layout(set = 0, binding = 6) readonly buffer DBuf { float Dsum[]; };
layout(set = 0, binding = 7) writeonly buffer DKBuf { float dk[]; };
layout(set = 0, binding = 8) writeonly buffer DVBuf { float dv[]; };
#include "mask.glsl"

void main() {
  const uint idx = gl_GlobalInvocationID.x;
  if (idx >= p.T * p.n_kv_heads) return;
  const uint j = idx / p.n_kv_heads, g = idx % p.n_kv_heads;
  const uint group = p.n_heads / p.n_kv_heads;
  const uint qstride = p.n_heads * HEAD_DIM;

  float kr[HEAD_DIM];
  float vr[HEAD_DIM];
  float dkacc[HEAD_DIM];
  float dvacc[HEAD_DIM];
  for (uint d = 0u; d < HEAD_DIM; ++d) {
    kr[d] = p.scale * k[idx * HEAD_DIM + d];
    vr[d] = v[idx * HEAD_DIM + d];
    dkacc[d] = 0.0;
    dvacc[d] = 0.0;
  }
  for (uint i = j; i < p.T; ++i) {
    if (!visible(i, j)) continue;
    for (uint h = g * group; h < (g + 1u) * group; ++h) {
      const uint qb = i * qstride + h * HEAD_DIM;
      float s = 0.0, dp = 0.0;
      for (uint d = 0u; d < HEAD_DIM; ++d) {
        s = fma(q[qb + d], kr[d], s);
        dp = fma(dout[qb + d], vr[d], dp);
      }
      const uint r = i * p.n_heads + h;
      const float pr = exp(s - lse[r]);
      const float ds = pr * (dp - Dsum[r]);
      for (uint d = 0u; d < HEAD_DIM; ++d) {
        dvacc[d] = fma(pr, dout[qb + d], dvacc[d]);
        dkacc[d] = fma(ds, q[qb + d], dkacc[d]);
      }
    }
  }
  for (uint d = 0u; d < HEAD_DIM; ++d) {
    dk[idx * HEAD_DIM + d] = p.scale * dkacc[d];
    dv[idx * HEAD_DIM + d] = dvacc[d];
  }
}
