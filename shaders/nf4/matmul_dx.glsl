// dX[M,K] = alpha * dY[M,N] * dequant(W)[N,K] — the input gradient through the frozen NF4 weight, without
// materialising W. Each invocation owns TM rows x 8 consecutive k (one code word per row of W when K % 8 == 0)
// and walks n; weights are decoded once per n and reused for the TM rows of dY. Binding 0 is dY, 5 is dX.
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
layout(constant_id = 2) const uint TM = 4;

#include "shaders/common/nf4_push.h"
layout(push_constant) uniform Push { Nf4MatmulPush p; };
layout(set = 0, binding = 0) readonly buffer DYBuf { X_T dy[]; };
layout(set = 0, binding = 5) buffer DXBuf { Y_T dx[]; };
#include "nf4_weight.glsl"

void main() {
  const uint row0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
  const uint k0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * 8u;
  if (row0 >= p.M || k0 >= p.K) return;
  uint dyrow[TM];
  for (uint i = 0u; i < TM; ++i) dyrow[i] = min(row0 + i, p.M - 1u) * p.N;
  float acc[TM][8];
  for (uint i = 0u; i < TM; ++i)
    for (uint t = 0u; t < 8u; ++t) acc[i][t] = 0.0;

  const bool aligned = (p.K & 7u) == 0u;
  for (uint n = 0u; n < p.N; ++n) {
    float w[8];
    if (aligned) {
      nf4_weights8(n * p.K + k0, w);
    } else {
      for (uint t = 0u; t < 8u; ++t) w[t] = k0 + t < p.K ? nf4_weight(n * p.K + k0 + t) : 0.0;
    }
    for (uint i = 0u; i < TM; ++i) {
      const float g = float(dy[dyrow[i] + n]);
      for (uint t = 0u; t < 8u; ++t) acc[i][t] = fma(g, w[t], acc[i][t]);
    }
  }
  for (uint i = 0u; i < TM; ++i) {
    const uint r = row0 + i;
    if (r >= p.M) break;
    for (uint t = 0u; t < 8u; ++t) {
      const uint k = k0 + t;
      if (k >= p.K) break;
      const uint idx = r * p.K + k;
      float v = p.alpha * acc[i][t];
      if (p.accumulate != 0u) v += float(dx[idx]);
      dx[idx] = Y_T(v);
    }
  }
}
