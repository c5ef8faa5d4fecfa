#version 450
#extension GL_GOOGLE_include_directive : require
// Pass 2: one invocation walks the tensor table in order, sums the partials, and writes the global norm, the
// clipping scale, the skip flag and the first bad tensor (the host reads it only when the step was skipped).
layout(local_size_x = 1) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { GradNormPush p; };
layout(set = 0, binding = 0) readonly buffer Partial { vec2 partial[]; };
layout(set = 0, binding = 1) readonly buffer Table { uvec2 table[]; };  // per tensor: (chunk_base, chunks)
layout(set = 0, binding = 2) writeonly buffer Stats { uint stats[]; };

void main() {
  float total = 0.0;
  uint first_bad = 0xffffffffu;
  for (uint t = 0u; t < p.tensors; ++t) {
    float ts = 0.0;
    bool bad = false;
    for (uint c = 0u; c < table[t].y; ++c) {
      const vec2 v = partial[table[t].x + c];
      ts += v.x;
      bad = bad || v.y != 0.0;
    }
    total += ts;
    if (bad && first_bad == 0xffffffffu) first_bad = t;
  }
  const float norm = sqrt(total);
  const float scale = p.max_norm > 0.0 ? min(1.0, p.max_norm / (norm + 1e-6)) : 1.0;
  stats[GRAD_STATS_NORM] = floatBitsToUint(norm);
  stats[GRAD_STATS_CLIP_SCALE] = floatBitsToUint(scale);
  stats[GRAD_STATS_SKIP] = first_bad != 0xffffffffu ? 1u : 0u;
  stats[GRAD_STATS_FIRST_BAD] = first_bad;
}
