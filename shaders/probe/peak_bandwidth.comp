#version 450
#extension GL_GOOGLE_include_directive : require
// Peak streaming bandwidth: dst = src * a, vec4 per invocation, grid-stride. Bytes = 2 * n * 16.
layout(local_size_x_id = 0) in;
#include "shaders/common/probe_push.h"
layout(push_constant) uniform Push { ProbePush p; };
layout(set = 0, binding = 0) readonly buffer Src { vec4 src[]; };
layout(set = 0, binding = 1) writeonly buffer Dst { vec4 dst[]; };

void main() {
  const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) dst[i] = src[i] * p.a;
}
