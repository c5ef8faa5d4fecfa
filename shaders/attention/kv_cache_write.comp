#version 450
#extension GL_GOOGLE_include_directive : require
// k_cache[positions[t]] = k[t], v_cache[positions[t]] = v[t]: one invocation per element of a k row and of a v
// row. A position outside the cache is clamped (the host guarantees it is not).
layout(local_size_x_id = 0) in;
#include "shaders/common/kv_cache_push.h"
layout(push_constant) uniform Push { KvCachePush p; };
layout(set = 0, binding = 0) readonly buffer K { float k[]; };
layout(set = 0, binding = 1) readonly buffer V { float v[]; };
layout(set = 0, binding = 2) readonly buffer Pos { int pos[]; };
layout(set = 0, binding = 3) writeonly buffer KC { float kc[]; };
layout(set = 0, binding = 4) writeonly buffer VC { float vc[]; };

void main() {
  const uint row = p.n_kv_heads * p.head_dim;
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.T * row) return;
  const uint t = i / row, e = i % row;
  const uint dst = uint(clamp(pos[t], 0, int(p.capacity) - 1)) * row + e;
  kc[dst] = k[i];
  vc[dst] = v[i];
}
