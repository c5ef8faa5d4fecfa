#version 450
#extension GL_GOOGLE_include_directive : require
// SGD with momentum as torch.optim.SGD: g += wd * p; buf = (step == 1) ? g : momentum * buf + (1 - dampening) * g;
// g = nesterov ? g + momentum * buf : buf; p -= lr * g. (momentum 0: plain SGD, buf untouched.)
layout(local_size_x_id = 0) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { OptimPush p; };
#include "common.glsl"
layout(set = 0, binding = 2) buffer P { float param[]; };
layout(set = 0, binding = 3) readonly buffer G { float grad[]; };
layout(set = 0, binding = 4) buffer B { float buf[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n || step_skipped()) return;
  precise float g = grad[i] * clip_scale() + p.weight_decay * param[i];
  if (p.beta1 != 0.0) {
    precise float b = step_const[STEP_CONST_FIRST_STEP] != 0.0 ? g : p.beta1 * buf[i] + (1.0 - p.beta2) * g;
    buf[i] = b;
    g = (p.flags & 1u) != 0u ? g + p.beta1 * b : b;
  }
  param[i] = param[i] - lr() * g;
}
