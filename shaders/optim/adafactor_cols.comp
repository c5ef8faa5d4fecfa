#version 450
#extension GL_GOOGLE_include_directive : require
// Adafactor pass 2: column statistic C[c] = b2t*C[c] + (1-b2t) * mean_r(g^2 + eps1).
layout(local_size_x_id = 0) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { OptimPush p; };
#include "common.glsl"
layout(set = 0, binding = 2) readonly buffer G { float grad[]; };
layout(set = 0, binding = 3) buffer C { float col_stat[]; };

void main() {
  const uint c = gl_GlobalInvocationID.x;
  if (c >= p.cols || step_skipped()) return;
  const float cs = clip_scale(), b2t = step_const[STEP_CONST_BETA2_T];
  float s = 0.0;
  for (uint r = 0u; r < p.rows; ++r) {
    const float g = grad[r * p.cols + c] * cs;
    s += g * g + p.eps;
  }
  col_stat[c] = b2t * col_stat[c] + (1.0 - b2t) * (s / float(p.rows));
}
