#version 450
#extension GL_GOOGLE_include_directive : require
// AdamW exactly as torch.optim.AdamW (foreach=False): p *= 1 - lr*wd; m = lerp(m, g, 1-b1);
// v = b2*v + (1-b2)*g*g; p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). g is pre-scaled by the clip scale.
layout(local_size_x_id = 0) in;
#include "shaders/common/optim_push.h"
layout(push_constant) uniform Push { OptimPush p; };
#include "common.glsl"
layout(set = 0, binding = 2) buffer P { float param[]; };
layout(set = 0, binding = 3) readonly buffer G { float grad[]; };
layout(set = 0, binding = 4) buffer M { float m[]; };
layout(set = 0, binding = 5) buffer V { float v[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n || step_skipped()) return;
  const float g = grad[i] * clip_scale();
  precise float w = param[i] * (1.0 - lr() * p.weight_decay);
  precise float mi = m[i] + (1.0 - p.beta1) * (g - m[i]);
  precise float vi = v[i] * p.beta2 + (1.0 - p.beta2) * g * g;
  precise float denom = sqrt(vi) / step_const[STEP_CONST_BIAS_CORRECTION2_SQRT] + p.eps;
  param[i] = w - (lr() / step_const[STEP_CONST_BIAS_CORRECTION1]) * (mi / denom);
  m[i] = mi;
  v[i] = vi;
}
