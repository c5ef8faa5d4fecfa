#version 450
#extension GL_GOOGLE_include_directive : require
// W_f32[e] = NF4_CODEBOOK[code(e)] * absmax(e / 64), exactly as bitsandbytes' kDequantizeBlockwise computes it
// (one fp32 multiply), for merging adapters into the base and for tests. One invocation per element.
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
#include "shaders/common/nf4_push.h"
layout(push_constant) uniform Push { Nf4MatmulPush p; };  // N*K = element count; M, alpha, accumulate unused
layout(set = 0, binding = 0) readonly buffer Unused { float unused_[]; };
layout(set = 0, binding = 5) buffer Out { float w_out[]; };
#include "nf4_weight.glsl"

void main() {
  const uint e = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (e >= p.N * p.K) return;
  w_out[e] = nf4_weight(e);
}
