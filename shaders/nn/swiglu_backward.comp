#version 450
#extension GL_GOOGLE_include_directive : require
// dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))), du = dh * silu(g).
layout(local_size_x_id = 0) in;
#include "shaders/common/nn_push.h"
layout(push_constant) uniform Push { ElementwisePush p; };
layout(set = 0, binding = 0) readonly buffer G { float g[]; };
layout(set = 0, binding = 1) readonly buffer U { float u[]; };
layout(set = 0, binding = 2) readonly buffer DH { float dh[]; };
layout(set = 0, binding = 3) writeonly buffer DG { float dg[]; };
layout(set = 0, binding = 4) writeonly buffer DU { float du[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  const float sg = 1.0 / (1.0 + exp(-g[i]));
  dg[i] = dh[i] * u[i] * sg * (1.0 + g[i] * (1.0 - sg));
  du[i] = dh[i] * g[i] * sg;
}
