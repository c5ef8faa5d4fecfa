#version 450
#extension GL_GOOGLE_include_directive : require
// After the last chunk: lse per row, and the mean loss over rows whose label is not ignore_index. A single
// invocation sums rows in order (deterministic); the host splits the rows into ranges, one dispatch each, where
// the device caps loop iterations.
// result = (mean loss, valid count, loss sum, 0). With no valid row the loss is 0 and the count 0 (no NaN).
layout(local_size_x = 1) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { CrossEntropyPush p; };
layout(set = 0, binding = 0) readonly buffer Stats { vec4 stats[]; };
layout(set = 0, binding = 1) readonly buffer Labels { int labels[]; };
layout(set = 0, binding = 2) writeonly buffer Lse { float lse[]; };
layout(set = 0, binding = 3) buffer Result { vec4 result[]; };

void main() {
  // Token ranges after the first continue the running total and count: same order, same sum as one pass.
  const bool first = (p.flags & CE_FIRST_CHUNK) != 0u;
  float total = first ? 0.0 : result[0].z;
  uint count = first ? 0u : uint(result[0].y);
  for (uint r = p.begin; r < p.end; ++r) {
    const vec4 s = stats[r];
    const float l = s.x + log(s.y);
    lse[r] = l;
    if (labels[r] != p.ignore_index) {
      total += l - s.z;
      count += 1u;
    }
  }
  const bool last = (p.flags & CE_LAST_RANGE) != 0u;
  result[0] = vec4(last && count > 0u ? total / float(count) : 0.0, float(count), total, 0.0);
}
