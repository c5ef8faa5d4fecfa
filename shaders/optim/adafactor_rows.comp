#version 450
#extension GL_GOOGLE_include_directive : require
// Adafactor (Shazeer & Stern 2018, as transformers.optimization.Adafactor without relative step / parameter
// scaling / first moment), pass 1: row statistic R[r] = b2t*R[r] + (1-b2t) * mean_c(g^2 + eps1).
layout(local_size_x_id = 0) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { OptimPush p; };
#include "common.glsl"
layout(set = 0, binding = 2) readonly buffer G { float grad[]; };
layout(set = 0, binding = 3) buffer R { float row_stat[]; };

void main() {
  const uint r = gl_GlobalInvocationID.x;
  if (r >= p.rows || step_skipped()) return;
  const float cs = clip_scale(), b2t = step_const[STEP_CONST_BETA2_T];
  float s = 0.0;
  for (uint c = 0u; c < p.cols; ++c) {
    const float g = grad[r * p.cols + c] * cs;
    s += g * g + p.eps;
  }
  row_stat[r] = b2t * row_stat[r] + (1.0 - b2t) * (s / float(p.cols));
}
