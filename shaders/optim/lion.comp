#version 450
#extension GL_GOOGLE_include_directive : require
// Lion (Chen et al. 2023): p *= 1 - lr*wd; p -= lr * sign(b1*m + (1-b1)*g); m = b2*m + (1-b2)*g.
layout(local_size_x_id = 0) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { OptimPush p; };
#include "common.glsl"
layout(set = 0, binding = 2) buffer P { float param[]; };
layout(set = 0, binding = 3) readonly buffer G { float grad[]; };
layout(set = 0, binding = 4) buffer M { float m[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n || step_skipped()) return;
  const float g = grad[i] * clip_scale();
  precise float c = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  precise float w = param[i] * (1.0 - lr() * p.weight_decay);
  param[i] = w - lr() * sign(c);
  precise float mi = p.beta2 * m[i] + (1.0 - p.beta2) * g;
  m[i] = mi;
}
