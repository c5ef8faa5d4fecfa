#version 450
#extension GL_GOOGLE_include_directive : require
// Lean variant backward, pass 1 (parallel over query rows): one invocation per (query i, head h) computes
// D_i = dout_i . out_i (saved for pass 2), then recomputes each visible probability from the saved lse and
// accumulates dQ_i = scale * sum_j P_ij (dout_i . v_j - D_i) k_j in registers. Must run before lean_dkv.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const uint HEAD_DIM = 64;

#include "shaders/common/attention_push.h"
layout(push_constant) uniform Push { AttentionPush p; };
layout(set = 0, binding = 0) readonly buffer QBuf { float q[]; };
layout(set = 0, binding = 1) readonly buffer KBuf { float k[]; };
layout(set = 0, binding = 2) readonly buffer VBuf { float v[]; };
layout(set = 0, binding = 3) readonly buffer SegBuf { int seg[]; };
layout(set = 0, binding = 4) readonly buffer OBuf { float o[]; };
layout(set = 0, binding = 5) readonly buffer LseBuf { float lse[]; };
layout(set = 0, binding = 6) readonly buffer DOBuf { float dout[]; };
layout(set = 0, binding = 7) writeonly buffer DBuf { float Dsum[]; };
layout(set = 0, binding = 8) writeonly buffer DQBuf { float dq[]; };
#include "mask.glsl"

void main() {
  const uint idx = gl_GlobalInvocationID.x;
  if (idx >= p.T * p.n_heads) return;
  const uint i = idx / p.n_heads, h = idx % p.n_heads;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint kstride = p.n_kv_heads * HEAD_DIM;

  float qr[HEAD_DIM];
  float dor[HEAD_DIM];
  float acc[HEAD_DIM];
  float Di = 0.0;
  for (uint d = 0u; d < HEAD_DIM; ++d) {
    qr[d] = p.scale * q[idx * HEAD_DIM + d];
    dor[d] = dout[idx * HEAD_DIM + d];
    Di = fma(dor[d], o[idx * HEAD_DIM + d], Di);
    acc[d] = 0.0;
  }
  Dsum[idx] = Di;
  const float L = lse[idx];
  for (uint j = 0u; j <= i; ++j) {
    if (!visible(i, j)) continue;
    const uint kb = j * kstride + g * HEAD_DIM;
    float s = 0.0, dp = 0.0;
    for (uint d = 0u; d < HEAD_DIM; ++d) {
      s = fma(qr[d], k[kb + d], s);
      dp = fma(dor[d], v[kb + d], dp);
    }
    const float ds = exp(s - L) * (dp - Di);
    for (uint d = 0u; d < HEAD_DIM; ++d) acc[d] = fma(ds, k[kb + d], acc[d]);
  }
  for (uint d = 0u; d < HEAD_DIM; ++d) dq[idx * HEAD_DIM + d] = p.scale * acc[d];
}
