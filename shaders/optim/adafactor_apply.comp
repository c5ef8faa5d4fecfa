#version 450
#extension GL_GOOGLE_include_directive : require
// Adafactor pass 4: u /= max(1, rms(u) / clip_threshold); p = p - lr*wd*p - lr*u.
layout(local_size_x_id = 0) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { OptimPush p; };
#include "common.glsl"
layout(set = 0, binding = 2) readonly buffer G { float grad[]; };
layout(set = 0, binding = 3) readonly buffer R { float row_stat[]; };
layout(set = 0, binding = 4) readonly buffer C { float col_stat[]; };
layout(set = 0, binding = 5) readonly buffer S { float scratch[]; };
layout(set = 0, binding = 6) buffer P { float param[]; };
#include "adafactor_common.glsl"

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n || step_skipped()) return;
  const uint r = i / p.cols, c = i % p.cols;
  const float u = adafactor_u(r, c, scratch[0], clip_scale()) / max(1.0, scratch[1] / p.clip_threshold);
  param[i] = param[i] - lr() * p.weight_decay * param[i] - lr() * u;
}
