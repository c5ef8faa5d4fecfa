#version 450
#extension GL_GOOGLE_include_directive : require
// h = silu(g) * u, silu(g) = g * sigmoid(g).
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { ElementwisePush p; };
layout(set = 0, binding = 0) readonly buffer G { float g[]; };
layout(set = 0, binding = 1) readonly buffer U { float u[]; };
layout(set = 0, binding = 2) writeonly buffer H { float h[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  const float sg = 1.0 / (1.0 + exp(-g[i]));
  h[i] = g[i] * sg * u[i];
}
