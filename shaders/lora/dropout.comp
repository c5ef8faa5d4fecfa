#version 450
#extension GL_GOOGLE_include_directive : require
// LoRA input dropout, forward (out = mask * in / (1-p)) or backward-accumulate (out (+)= mask * in / (1-p)).
layout(local_size_x_id = 0) in;
#include "shaders/common/lora_push.h"
#include "shaders/common/philox.h"
layout(push_constant) uniform Push { DropoutPush p; };
layout(set = 0, binding = 0) readonly buffer In { float in_[]; };
layout(set = 0, binding = 1) buffer Out { float out_[]; };
layout(set = 0, binding = 2) readonly buffer Key { uint key[LORA_KEY_WORDS]; };

void main() {
  const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= p.n) return;
  const bool keep = dropout_keep(uvec4(key[0], key[1], key[2], key[3]), p.stream, i, p.p);
  const float v = keep ? in_[i] * p.scale : 0.0;
  out_[i] = (p.flags & 1u) != 0u ? out_[i] + v : v;
}
