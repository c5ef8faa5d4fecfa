#version 450
#extension GL_GOOGLE_include_directive : require
// Pass 1 of the global gradient norm: each invocation sums the squares of one chunk of one tensor (in order)
// into partial[chunk_base + chunk] and flags NaN/Inf. Deterministic: no atomics, fixed chunking.
layout(local_size_x_id = 0) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { GradNormPush p; };
layout(set = 0, binding = 0) readonly buffer G { float g[]; };
layout(set = 0, binding = 1) writeonly buffer Partial { vec2 partial[]; };  // (sum of squares, non-finite flag)

void main() {
  const uint c = gl_GlobalInvocationID.x;
  const uint begin = c * p.chunk_size;
  if (begin >= p.n) return;
  const uint end = min(p.n, begin + p.chunk_size);
  float ss = 0.0, bad = 0.0;
  for (uint i = begin; i < end; ++i) {
    const float v = g[i];
    if ((floatBitsToUint(v) & 0x7f800000u) == 0x7f800000u) bad = 1.0;  // robust to relaxed NaN handling
    ss = fma(v, v, ss);
  }
  partial[p.chunk_base + c] = vec2(ss, bad);
}
