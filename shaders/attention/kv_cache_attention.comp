#version 450
#extension GL_GOOGLE_include_directive : require
// out[t] = softmax_j(scale q[t].k_cache[j]) v_cache[j] over j <= positions[t]: one invocation per (query, head),
// an online softmax over the cached keys one at a time with the query and accumulator rows in registers (HEAD_DIM
// is a specialization constant). The key count is read from `positions`, so a decode step recorded once serves
// every position. Loop checks per invocation: (keys + 1) + keys (2 HEAD_DIM + 2) + 2 (HEAD_DIM + 1), guarded on the
// host for keys = capacity (host/ops/kv_cache.cpp).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HEAD_DIM = 64;
#include "shaders/common/kv_cache_push.h"
layout(push_constant) uniform Push { KvCachePush p; };
layout(set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(set = 0, binding = 1) readonly buffer KC { float kc[]; };
layout(set = 0, binding = 2) readonly buffer VC { float vc[]; };
layout(set = 0, binding = 3) readonly buffer Pos { int pos[]; };
layout(set = 0, binding = 4) writeonly buffer O { float o[]; };

void main() {
  const uint idx = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (idx >= p.T * p.n_heads) return;
  const uint t = idx / p.n_heads, h = idx % p.n_heads;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint kstride = p.n_kv_heads * HEAD_DIM;
  const uint last = uint(clamp(pos[t], 0, int(p.capacity) - 1));
  const uint qb = idx * HEAD_DIM;

  float qr[HEAD_DIM];
  float acc[HEAD_DIM];
  for (uint d = 0u; d < HEAD_DIM; ++d) {
    qr[d] = p.scale * q[qb + d];
    acc[d] = 0.0;
  }
  // Key 0 is always visible, so m starts finite and no exp() sees an infinity.
  float m = 0.0, l = 0.0;
  for (uint j = 0u; j <= last; ++j) {
    const uint kb = j * kstride + g * HEAD_DIM;
    float s = 0.0;
    for (uint d = 0u; d < HEAD_DIM; ++d) s = fma(qr[d], kc[kb + d], s);
    if (j == 0u) m = s;
    const float mn = max(m, s);
    const float corr = exp(m - mn), pj = exp(s - mn);
    m = mn;
    l = l * corr + pj;
    for (uint d = 0u; d < HEAD_DIM; ++d) acc[d] = fma(pj, vc[kb + d], acc[d] * corr);
  }
  const float inv = 1.0 / l;
  for (uint d = 0u; d < HEAD_DIM; ++d) o[qb + d] = acc[d] * inv;
}
