#version 450
#extension GL_GOOGLE_include_directive : require
// After the last chunk: lse per row, and the mean loss over rows whose label is not ignore_index. A single
// invocation sums rows in order (deterministic; rows = tokens of one micro-batch, a few thousand at most).
// result = (mean loss, valid count, loss sum, 0). With no valid row the loss is 0 and the count 0 (no NaN).
layout(local_size_x = 1) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { CrossEntropyPush p; };
layout(set = 0, binding = 0) readonly buffer Stats { vec4 stats[]; };
layout(set = 0, binding = 1) readonly buffer Labels { int labels[]; };
layout(set = 0, binding = 2) writeonly buffer Lse { float lse[]; };
layout(set = 0, binding = 3) writeonly buffer Result { vec4 result[]; };

void main() {
  float total = 0.0;
  uint count = 0u;
  for (uint r = 0u; r < p.rows; ++r) {
    const vec4 s = stats[r];
    const float l = s.x + log(s.y);
    lse[r] = l;
    if (labels[r] != p.ignore_index) {
      total += l - s.z;
      count += 1u;
    }
  }
  result[0] = vec4(count > 0u ? total / float(count) : 0.0, float(count), total, 0.0);
}
