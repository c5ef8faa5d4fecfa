#version 450
#extension GL_GOOGLE_include_directive : require
// y = a + alpha * b (y may be a: the residual add in place).
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { ElementwisePush p; };
layout(set = 0, binding = 0) readonly buffer B { float b[]; };
layout(set = 0, binding = 1) buffer Y { float y[]; };
layout(set = 0, binding = 2) readonly buffer A { float a[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  y[i] = a[i] + p.alpha * b[i];
}
